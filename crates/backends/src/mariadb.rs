//! MariaDB/MySQL shard sessions (DCDB KillSession).
