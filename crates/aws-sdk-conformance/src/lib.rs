#![forbid(unsafe_code)]
//! Only tests live here (tests/): they drive a real sessiond through aws-sdk-gamesparks.
