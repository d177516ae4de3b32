//! `paygate`: the model and all domain logic of PayGate Events. Every function crate only wires it up.

pub mod auth;
pub mod aws;
pub mod cache;
pub mod config;
pub mod error;
pub mod http;
pub mod ingest;
pub mod logging;
pub mod model;
pub mod store;
pub mod tls;
pub mod webhook;
pub mod wiring;

#[cfg(test)]
mod layers;

// The model's modules under their old paths too, for the crates that use the library.
pub use model::{event, event_type, ids, list};

pub use error::ApiError;
pub use event::{Event, EventData, EventJson, EventRequest};
pub use event_type::{EventType, Family, TypeSelector};
pub use ids::{AccountId, ApiKey, EndpointId, EventId, Mode, Principal};
