//! `paygate`: the model and all domain logic of PayGate Events. Every function crate only wires it up.

pub mod auth;
pub mod aws;
pub mod config;
pub mod error;
pub mod event;
pub mod event_type;
pub mod http;
pub mod ids;
pub mod ingest;
pub mod list;
pub mod logging;
pub mod model;
pub mod store;
pub mod tls;
pub mod webhook;
pub mod wiring;

pub use error::ApiError;
pub use event::{Event, EventData, EventJson, EventRequest};
pub use event_type::{EventType, Family, TypeSelector};
pub use ids::{AccountId, ApiKey, EndpointId, EventId, Mode, Principal};
