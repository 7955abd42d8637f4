//! DCDB: sharded MySQL/MariaDB instances, their shards, and kill-session tasks.
