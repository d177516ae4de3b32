//! Webhook signatures. Every delivery carries two schemes, so receivers can verify with Stripe-style
//! code or any Standard Webhooks library:
//!
//! - `x-paygate-signature: t=<unix>,v1=<hex HMAC-SHA256(key = the whole secret string, msg = "<t>.<body>")>`
//!   (one `v1=` per active secret during rotation);
//! - `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256(key = base64-decoded
//!   secret without `whsec_`, msg = "<id>.<t>.<body>")>` (space-separated during rotation).
//!
//! Checks are constant-time (`Mac::verify_slice`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::model::event::Event;
use crate::model::ids::unix_now;

type HmacSha256 = Hmac<Sha256>;

pub const SIGNATURE_HEADER: &str = "x-paygate-signature";
pub const WEBHOOK_ID: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// Default tolerance between the signed timestamp and the receiver's clock, both ways.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

pub use crate::model::webhook_secret::WebhookSecret;

impl From<crate::model::webhook_secret::BadSecret> for SignatureError {
    fn from(_: crate::model::webhook_secret::BadSecret) -> Self {
        SignatureError::BadSecret
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        m.update(p);
    }
    m
}

/// The headers of one delivery: `(name, value)` pairs.
pub fn sign(secrets: &[&WebhookSecret], event_id: &str, timestamp: u64, body: &[u8]) -> Vec<(&'static str, String)> {
    let t = timestamp.to_string();
    let v1: Vec<String> = secrets
        .iter()
        .map(|s| {
            let m = mac(s.expose().as_bytes(), &[t.as_bytes(), b".", body]);
            format!("v1={}", hex::encode(m.finalize().into_bytes()))
        })
        .collect();
    let standard: Vec<String> = secrets
        .iter()
        .map(|s| {
            let m = mac(&s.standard_key(), &[event_id.as_bytes(), b".", t.as_bytes(), b".", body]);
            format!("v1,{}", STANDARD.encode(m.finalize().into_bytes()))
        })
        .collect();
    vec![
        (SIGNATURE_HEADER, format!("t={t},{}", v1.join(","))),
        (WEBHOOK_ID, event_id.to_owned()),
        (WEBHOOK_TIMESTAMP, t),
        (WEBHOOK_SIGNATURE, standard.join(" ")),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed")]
    MalformedHeader,
    #[error("no signature matches the payload")]
    NoMatch,
    #[error("the timestamp is outside the tolerance")]
    TimestampOutsideTolerance,
    #[error("the secret is not a whsec_ secret")]
    BadSecret,
    #[error("no endpoint secret: an empty secret verifies nothing")]
    NoSecret,
    #[error("the payload is not an event: {0}")]
    BadPayload(String),
}

/// The timestamp within `tolerance_secs` of `now`; a tolerance of 0 turns the check off, as in
/// Stripe's libraries and our Node and Python ones (one meaning everywhere).
fn check_time(t: u64, tolerance_secs: u64, now: u64) -> Result<(), SignatureError> {
    if tolerance_secs > 0 && t.abs_diff(now) > tolerance_secs {
        return Err(SignatureError::TimestampOutsideTolerance);
    }
    Ok(())
}

/// Verifies `x-paygate-signature` against `secret` at time `now` (unix seconds).
pub fn verify_header_at(payload: &[u8], header: &str, secret: &str, tolerance_secs: u64, now: u64) -> Result<(), SignatureError> {
    // A receiver whose secret is unset must refuse, not check an HMAC under an empty key.
    if secret.trim().is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let mut timestamp: Option<u64> = None;
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.split_once('=').ok_or(SignatureError::MalformedHeader)?;
        match k {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::MalformedHeader);
                }
                timestamp = Some(v.parse().map_err(|_| SignatureError::MalformedHeader)?);
            }
            "v1" => {
                // A value that is not hex cannot match; skip it rather than reject the header.
                if let Ok(bytes) = hex::decode(v) {
                    candidates.push(bytes);
                }
            }
            _ => {} // other schemes, ignored as Stripe does
        }
    }
    let t = timestamp.ok_or(SignatureError::MalformedHeader)?;
    if candidates.is_empty() {
        return Err(SignatureError::NoMatch);
    }
    // The payload is hashed once; each candidate is checked in constant time on a copy.
    let expected = mac(secret.as_bytes(), &[t.to_string().as_bytes(), b".", payload]);
    let matched = candidates.iter().any(|c| expected.clone().verify_slice(c).is_ok());
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    check_time(t, tolerance_secs, now)
}

/// The reference's `Webhook.constructEvent`: verifies the signature, then parses the event.
pub fn construct_event(payload: &[u8], signature_header: &str, secret: &str, tolerance_secs: u64) -> Result<Event, SignatureError> {
    verify_header_at(payload, signature_header, secret, tolerance_secs, unix_now())?;
    serde_json::from_slice(payload).map_err(|e| SignatureError::BadPayload(e.to_string()))
}

/// Standard Webhooks verification of `webhook-id`, `webhook-timestamp`, `webhook-signature`.
pub fn verify_standard_at(
    payload: &[u8],
    msg_id: &str,
    timestamp: &str,
    signature: &str,
    secret: &str,
    tolerance_secs: u64,
    now: u64,
) -> Result<(), SignatureError> {
    let secret = WebhookSecret::parse(secret)?;
    let t: u64 = timestamp.parse().map_err(|_| SignatureError::MalformedHeader)?;
    let key = secret.standard_key();
    let expected = mac(&key, &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", payload]);
    let mut any = false;
    for sig in signature.split(' ').filter(|s| !s.is_empty()) {
        let (version, value) = sig.split_once(',').ok_or(SignatureError::MalformedHeader)?;
        if version != "v1" {
            continue;
        }
        any = true;
        let Ok(bytes) = STANDARD.decode(value) else { continue };
        if expected.clone().verify_slice(&bytes).is_ok() {
            return check_time(t, tolerance_secs, now);
        }
    }
    if any { Err(SignatureError::NoMatch) } else { Err(SignatureError::MalformedHeader) }
}

/// [`verify_standard_at`] now.
pub fn verify_standard(payload: &[u8], msg_id: &str, timestamp: &str, signature: &str, secret: &str, tolerance_secs: u64) -> Result<(), SignatureError> {
    verify_standard_at(payload, msg_id, timestamp, signature, secret, tolerance_secs, unix_now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(secrets: &[&WebhookSecret], t: u64, body: &[u8]) -> std::collections::HashMap<&'static str, String> {
        sign(secrets, "evt_01HM5Y8Z3K9Q2W4E6R8T0Y2V4J", t, body).into_iter().collect()
    }

    const BODY: &[u8] = br#"{"id":"evt_01HM5Y8Z3K9Q2W4E6R8T0Y2V4J","object":"event","type":"payment.succeeded","created_at":"2024-01-15T10:30:00Z","data":{"object":{"id":"pay_1"}},"pending_webhooks":1,"request":{"id":null,"idempotency_key":null}}"#;

    #[test]
    fn a_corrupt_stored_secret_does_not_deserialise() {
        let ok: WebhookSecret = serde_json::from_str(r#""whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw""#).unwrap();
        assert_eq!(ok.expose(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        for bad in [r#""""#, r#""whsec_""#, r#""whsec_!!!""#, r#""sk_test_x""#] {
            assert!(serde_json::from_str::<WebhookSecret>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_look_right_and_hide() {
        let s = WebhookSecret::generate();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(s.standard_key().len(), 32);
        assert!(!format!("{s:?}").contains(&s.expose()[6..]));
        assert_eq!(WebhookSecret::parse(s.expose()).unwrap(), s);
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("sk_test_abc").is_err());
    }

    #[test]
    fn valid_signatures_verify_and_construct_the_event() {
        let s = WebhookSecret::generate();
        let now = unix_now();
        let h = headers(&[&s], now, BODY);
        let event = construct_event(BODY, &h[SIGNATURE_HEADER], s.expose(), 300).unwrap();
        assert_eq!(event.id.to_string(), "evt_01HM5Y8Z3K9Q2W4E6R8T0Y2V4J");
        verify_standard(BODY, &h[WEBHOOK_ID], &h[WEBHOOK_TIMESTAMP], &h[WEBHOOK_SIGNATURE], s.expose(), 300).unwrap();
        assert!(!h[SIGNATURE_HEADER].contains(' '), "no spaces in x-paygate-signature");
    }

    /// Stripe's scheme (`t=…,v1=hex(HMAC-SHA256(secret, "{t}.{body}"))`, as Stripe's docs
    /// "Verify the events manually" describe it) against a value computed by another implementation:
    /// `printf '%s' '1492774577.{"id":"evt_test_webhook","object":"event"}' | openssl dgst -sha256 -hmac 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'`
    #[test]
    fn stripe_scheme_known_answer() {
        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"id":"evt_test_webhook","object":"event"}"#;
        let h = headers(&[&s], 1_492_774_577, body);
        let expected = "28abdd64c00bc8be83a3625df2dd731a915f2be549ad1b912caf4e434d7e5b0f";
        assert_eq!(h[SIGNATURE_HEADER], format!("t=1492774577,v1={expected}"));
        verify_header_at(body, &h[SIGNATURE_HEADER], s.expose(), 300, 1_492_774_600).unwrap();
    }

    /// The Standard Webhooks specification's test vector (standard-webhooks/standard-webhooks,
    /// `spec/standard-webhooks.md` and the reference libraries' tests): secret, id, timestamp and
    /// body give exactly this `webhook-signature`.
    #[test]
    fn standard_webhooks_test_vector() {
        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let h: std::collections::HashMap<_, _> = sign(&[&s], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body).into_iter().collect();
        assert_eq!(h[WEBHOOK_SIGNATURE], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        verify_standard_at(body, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &h[WEBHOOK_SIGNATURE], s.expose(), 300, 1_614_265_330).unwrap();
    }

    #[test]
    fn tampered_wrong_secret_stale_future_and_malformed_are_refused() {
        let s = WebhookSecret::generate();
        let other = WebhookSecret::generate();
        let now = unix_now();
        let h = headers(&[&s], now, BODY);
        let sig = &h[SIGNATURE_HEADER];
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(construct_event(&tampered, sig, s.expose(), 300).unwrap_err(), SignatureError::NoMatch);
        assert_eq!(construct_event(BODY, sig, other.expose(), 300).unwrap_err(), SignatureError::NoMatch);
        let stale = headers(&[&s], now - 301, BODY);
        assert_eq!(construct_event(BODY, &stale[SIGNATURE_HEADER], s.expose(), 300).unwrap_err(), SignatureError::TimestampOutsideTolerance);
        let future = headers(&[&s], now + 301, BODY);
        assert_eq!(construct_event(BODY, &future[SIGNATURE_HEADER], s.expose(), 300).unwrap_err(), SignatureError::TimestampOutsideTolerance);
        for bad in ["", "v1=abc", "t=abc,v1=00", "garbage", "t=1,t=2,v1=00"] {
            assert_eq!(construct_event(BODY, bad, s.expose(), 300).unwrap_err(), SignatureError::MalformedHeader, "{bad:?}");
        }
        assert_eq!(construct_event(BODY, &format!("t={now}"), s.expose(), 300).unwrap_err(), SignatureError::NoMatch);
        assert_eq!(construct_event(BODY, &format!("t={now},v1=zz"), s.expose(), 300).unwrap_err(), SignatureError::NoMatch);
        // Standard Webhooks, likewise.
        let (id, t, sg) = (&h[WEBHOOK_ID], &h[WEBHOOK_TIMESTAMP], &h[WEBHOOK_SIGNATURE]);
        assert_eq!(verify_standard(&tampered, id, t, sg, s.expose(), 300).unwrap_err(), SignatureError::NoMatch);
        assert_eq!(verify_standard(BODY, "evt_other", t, sg, s.expose(), 300).unwrap_err(), SignatureError::NoMatch);
        assert_eq!(verify_standard(BODY, id, t, sg, other.expose(), 300).unwrap_err(), SignatureError::NoMatch);
        assert_eq!(verify_standard(BODY, id, "x", sg, s.expose(), 300).unwrap_err(), SignatureError::MalformedHeader);
        assert_eq!(verify_standard(BODY, id, t, "nonsense", s.expose(), 300).unwrap_err(), SignatureError::MalformedHeader);
        let st = &stale[WEBHOOK_TIMESTAMP];
        assert_eq!(verify_standard(BODY, id, st, &stale[WEBHOOK_SIGNATURE], s.expose(), 300).unwrap_err(), SignatureError::TimestampOutsideTolerance);
        // Tolerance 0 turns the time check off, as in Node and Python.
        assert!(construct_event(BODY, &stale[SIGNATURE_HEADER], s.expose(), 0).is_ok());
        assert!(verify_standard(BODY, id, st, &stale[WEBHOOK_SIGNATURE], s.expose(), 0).is_ok());
    }

    /// A receiver whose secret variable is unset passes "" (or "whsec_"): a forger can sign with
    /// the empty key, and that must not verify.
    #[test]
    fn an_empty_or_missing_secret_verifies_nothing() {
        let now = unix_now();
        let forged = format!("t={now},v1={}", hex::encode(mac(b"", &[now.to_string().as_bytes(), b".", BODY]).finalize().into_bytes()));
        for empty in ["", " "] {
            assert_eq!(construct_event(BODY, &forged, empty, 300).unwrap_err(), SignatureError::NoSecret, "{empty:?}");
        }
        let id = "evt_01HM5Y8Z3K9Q2W4E6R8T0Y2V4J";
        let forged_std = format!("v1,{}", STANDARD.encode(mac(b"", &[id.as_bytes(), b".", now.to_string().as_bytes(), b".", BODY]).finalize().into_bytes()));
        for empty in ["", "whsec_"] {
            assert_eq!(verify_standard(BODY, id, &now.to_string(), &forged_std, empty, 300).unwrap_err(), SignatureError::BadSecret, "{empty:?}");
        }
    }

    #[test]
    fn several_secrets_during_rotation() {
        let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
        let now = unix_now();
        let h = headers(&[&new, &old], now, BODY);
        assert_eq!(h[SIGNATURE_HEADER].matches("v1=").count(), 2);
        for s in [&old, &new] {
            construct_event(BODY, &h[SIGNATURE_HEADER], s.expose(), 300).unwrap();
            verify_standard(BODY, &h[WEBHOOK_ID], &h[WEBHOOK_TIMESTAMP], &h[WEBHOOK_SIGNATURE], s.expose(), 300).unwrap();
        }
        assert!(construct_event(BODY, &h[SIGNATURE_HEADER], WebhookSecret::generate().expose(), 300).is_err());
    }
}
