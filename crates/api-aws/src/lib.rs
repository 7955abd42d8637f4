#![forbid(unsafe_code)]
//! AWS rest-json dialect: GameSparks 2021-08-17.
