//! The workspace's integration tests, one binary with a module per suite (as zero2prod and svix
//! do): the AWS SDK and the test support are linked once, not once per suite. Each suite runs
//! against the real local servers (`make test` starts them), on tables and accounts of its own.
//!
//! `cargo test -p integration-tests --test it events_api::` runs one suite.

mod api_keys;
mod capacity;
mod delivery_state;
mod events_api;
mod faults;
mod isolation;
mod regressions;
mod samples;
mod sqs;
mod store;
mod template_routes;
mod tls;
mod webhooks;
