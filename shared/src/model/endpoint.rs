//! A webhook endpoint: what it subscribes to, which secrets sign for it, its limits. Stored by
//! `store::endpoints`; its API object is `http::objects`'.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::Invalid;
use crate::model::event_type::{EventType, TypeSelector};
use crate::model::ids::{EndpointId, Mode, Timestamp};
use crate::model::webhook_secret::WebhookSecret;
use crate::model::webhook_url::WebhookUrl;

/// The most endpoints an account may have in one mode (`store::endpoints` enforces it).
pub const MAX_ENDPOINTS: u32 = 16;
/// The highest `rate_limit` an endpoint may set (deliveries per second).
pub const MAX_RATE_LIMIT: u32 = 10_000;
/// How long the old secret keeps signing after a rotation.
pub const ROTATION_OVERLAP_SECS: u64 = 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointStatus {
    Enabled,
    Disabled,
}

impl FromStr for EndpointStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "enabled" => Ok(EndpointStatus::Enabled),
            "disabled" => Ok(EndpointStatus::Disabled),
            _ => Err(()),
        }
    }
}

/// What an endpoint subscribes to: everything (`["*"]`) or a set of types and family wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnabledEvents {
    All,
    Selected(Vec<TypeSelector>),
}

impl EnabledEvents {
    /// Parses the `enabled_events` parameter: non-empty; `*` alone or known types / `family.*`.
    pub fn parse(values: &[String]) -> Result<Self, Invalid> {
        let bad = |m: String| Invalid::parameter("enabled_events", m);
        if values.is_empty() {
            return Err(bad("enabled_events must name at least one event type, or \"*\".".into()));
        }
        if values.iter().any(|v| v == "*") {
            return if values.len() == 1 { Ok(EnabledEvents::All) } else { Err(bad("\"*\" must be the only entry of enabled_events.".into())) };
        }
        let mut selectors =
            values.iter().map(|v| v.parse::<TypeSelector>().map_err(|_| bad(format!("Invalid event type: '{v}'.")))).collect::<Result<Vec<_>, _>>()?;
        selectors.sort();
        selectors.dedup();
        Ok(EnabledEvents::Selected(selectors))
    }

    pub fn matches(&self, t: EventType) -> bool {
        match self {
            EnabledEvents::All => true,
            EnabledEvents::Selected(s) => s.iter().any(|sel| sel.matches(t)),
        }
    }

    pub fn to_strings(&self) -> Vec<String> {
        match self {
            EnabledEvents::All => vec!["*".to_owned()],
            EnabledEvents::Selected(s) => s.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub mode: Mode,
    pub url: WebhookUrl,
    pub enabled_events: EnabledEvents,
    pub description: Option<String>,
    pub status: EndpointStatus,
    pub created_at: Timestamp,
    pub secret: WebhookSecret,
    pub previous_secret: Option<(WebhookSecret, u64)>,
    /// At most this many deliveries per second, across every deliverer (`webhook::throttle`).
    pub rate_limit: Option<u32>,
    /// How many times it was written since it was created: an update writes it back only if no
    /// other write came in between (`EndpointStore::replace`).
    pub version: u64,
}

impl Endpoint {
    /// Whether this endpoint gets `event`: enabled, subscribed to its type, and older than the
    /// event (endpoints get the events made after them, as Stripe's do; ids carry their times).
    pub fn wants(&self, event: &crate::model::event::Event) -> bool {
        self.status == EndpointStatus::Enabled && self.enabled_events.matches(event.event_type) && self.id.created_ms() <= event.id.created_ms()
    }

    /// The secrets that sign a delivery now: the current one, and the previous one during its overlap.
    pub fn signing_secrets(&self, now: u64) -> Vec<&WebhookSecret> {
        let mut v = vec![&self.secret];
        if let Some((old, until)) = &self.previous_secret
            && now < *until
        {
            v.push(old);
        }
        v
    }
}

/// A new endpoint (not yet stored), without a rate limit.
pub fn new_endpoint(mode: Mode, url: WebhookUrl, enabled_events: EnabledEvents, description: Option<String>) -> Endpoint {
    Endpoint {
        id: EndpointId::generate(),
        mode,
        url,
        enabled_events,
        description,
        status: EndpointStatus::Enabled,
        created_at: Timestamp::now(),
        secret: WebhookSecret::generate(),
        previous_secret: None,
        rate_limit: None,
        version: 0,
    }
}

/// Rolls the secret; the old one keeps signing for [`ROTATION_OVERLAP_SECS`].
pub fn rotate(endpoint: &mut Endpoint, now: u64) {
    let old = std::mem::replace(&mut endpoint.secret, WebhookSecret::generate());
    endpoint.previous_secret = Some((old, now + ROTATION_OVERLAP_SECS));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event_type::Family;

    #[test]
    fn enabled_events_parse_and_match() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(EnabledEvents::parse(&s(&["*"])).unwrap(), EnabledEvents::All);
        assert!(EnabledEvents::All.matches(EventType::CustomerDeleted));
        let e = EnabledEvents::parse(&s(&["payment.*", "refund.failed", "payment.*"])).unwrap();
        assert_eq!(e, EnabledEvents::Selected(vec![TypeSelector::Exact(EventType::RefundFailed), TypeSelector::Family(Family::Payment)]));
        assert!(e.matches(EventType::PaymentCanceled) && e.matches(EventType::RefundFailed));
        assert!(!e.matches(EventType::RefundCreated));
        for bad in [&[][..], &["*", "payment.created"][..], &["payment.nope"][..], &[""][..]] {
            let err = EnabledEvents::parse(&s(bad)).unwrap_err();
            assert_eq!(err.param, "enabled_events");
        }
    }

    #[test]
    fn ids_and_rotation() {
        let id = EndpointId::generate();
        assert_eq!(id.to_string().parse::<EndpointId>().unwrap(), id);
        assert!("we_nope".parse::<EndpointId>().is_err());
        let mut ep = new_endpoint(Mode::Test, "https://example.com/h".parse().unwrap(), EnabledEvents::All, None);
        let first = ep.secret.clone();
        rotate(&mut ep, 1000);
        assert_ne!(ep.secret, first);
        assert_eq!(ep.signing_secrets(1000).len(), 2);
        assert_eq!(ep.signing_secrets(1000 + ROTATION_OVERLAP_SECS).len(), 1);
    }
}
