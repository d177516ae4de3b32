//! Webhooks: endpoints, signatures, SSRF rules, fan-out, delivery and endpoint health.

pub mod breaker;
pub mod decision;
pub mod deliver;
pub mod endpoints;
pub mod fanout;
pub mod recover;
pub mod redrive;
pub mod signature;
pub mod ssrf;
pub mod stats;
pub mod sweeper;
pub mod throttle;

pub use signature::{DEFAULT_TOLERANCE_SECS, construct_event, verify_standard};
