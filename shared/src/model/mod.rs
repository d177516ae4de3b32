//! The model: what things are, parsed once, knowing nothing of storage or HTTP. Nothing here
//! imports from `store`, `webhook` or `http` (`shared/src/layers.rs` holds it); a value that does not
//! parse is an [`Invalid`], which `http` alone turns into a 400 (`error.rs`).

use std::borrow::Cow;

pub mod api_key;
pub mod delivery;
pub mod endpoint;
pub mod event;
pub mod event_type;
pub mod health;
pub mod ids;
pub mod list;
pub mod time;
pub mod webhook_secret;
pub mod webhook_url;

/// What kind of 400 an [`Invalid`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// `parameter_invalid`.
    Parameter,
    /// `url_invalid`.
    Url,
}

/// A value that does not parse: the parameter it came from, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub kind: InvalidKind,
    /// The parameter (`url`, `permissions[events]`).
    pub param: Cow<'static, str>,
    pub message: String,
}

impl Invalid {
    pub fn parameter(param: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Invalid { kind: InvalidKind::Parameter, param: param.into(), message: message.into() }
    }

    pub fn url(message: impl Into<String>) -> Self {
        Invalid { kind: InvalidKind::Url, param: Cow::Borrowed("url"), message: message.into() }
    }
}
