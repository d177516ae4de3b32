//! Webhooks: signatures, SSRF rules, fan-out, delivery and the rules of endpoint health (the
//! endpoint and its health are `model`'s).

pub mod breaker;
pub mod decision;
pub mod deliver;
pub mod fanout;
pub mod recover;
pub mod redrive;
pub mod signature;
pub mod ssrf;
pub mod stats;
pub mod sweeper;
pub mod throttle;

/// The endpoint model under its old path, for the crates that use the library.
pub use crate::model::endpoint as endpoints;
pub use signature::{DEFAULT_TOLERANCE_SECS, construct_event, verify_standard};
