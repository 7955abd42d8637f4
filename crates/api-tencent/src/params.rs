//! Parameter decoding: JSON bodies and flattened query/form parameters into one typed JSON tree.
