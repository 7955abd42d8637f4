//! GameSparks: games, stages, tags, and the players connected to a stage's runtime.
