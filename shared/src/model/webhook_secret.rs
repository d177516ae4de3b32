//! An endpoint's signing secret, parsed once (signing with it is `webhook::signature`'s).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// Not a `whsec_` + base64 secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is whsec_ followed by base64")]
pub struct BadSecret;

/// An endpoint's signing secret: `whsec_` + base64 of 32 random bytes. Never printed. Read back
/// from the table through [`WebhookSecret::parse`], so a corrupt stored secret is an error, never an
/// empty signing key.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl<'de> serde::Deserialize<'de> for WebhookSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WebhookSecret::parse(&<String as serde::Deserialize>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl WebhookSecret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        WebhookSecret(format!("{}{}", Self::PREFIX, STANDARD.encode(bytes)))
    }

    /// Accepts any `whsec_…` string whose rest is base64 (what Standard Webhooks libraries need).
    pub fn parse(s: &str) -> Result<Self, BadSecret> {
        let rest = s.strip_prefix(Self::PREFIX).ok_or(BadSecret)?;
        match STANDARD.decode(rest) {
            Ok(b) if !b.is_empty() => Ok(WebhookSecret(s.to_owned())),
            _ => Err(BadSecret),
        }
    }

    /// The whole secret, for its owner's eyes only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key of the Standard Webhooks scheme: the base64 after `whsec_`, decoded.
    pub fn standard_key(&self) -> Vec<u8> {
        STANDARD.decode(&self.0[Self::PREFIX.len()..]).unwrap_or_default()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_…)")
    }
}
