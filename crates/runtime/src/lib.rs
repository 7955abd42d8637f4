#![forbid(unsafe_code)]
//! The GameSparks player runtime: WebSocket player connections held by this node.
