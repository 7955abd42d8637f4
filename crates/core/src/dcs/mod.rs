//! DCS: Redis instances, their nodes, and client-session jobs.
