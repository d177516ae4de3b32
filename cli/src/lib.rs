//! The `paygate` developer CLI: the local stack (`paygate dev`), accounts and test events.

pub mod commands;
pub mod doorbell;
pub mod fixtures;
pub mod gateway;
pub mod keys;
pub mod pollers;
pub mod samples;
pub mod stack;
