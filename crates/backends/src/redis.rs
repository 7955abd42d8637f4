//! Redis client connections (DCS ListClients / HangUpClients).
