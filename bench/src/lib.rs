//! What the benchmark binary and the tests share: `make capacity`'s model.

pub mod capacity;
