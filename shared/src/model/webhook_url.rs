//! A webhook URL of the right shape, parsed once (where it may point is `webhook::ssrf`'s
//! business).

use crate::model::Invalid;

/// The longest webhook URL accepted, as browsers and most servers do.
pub const MAX_URL_LEN: usize = 2048;

/// A webhook URL of the right shape: absolute http(s), at most [`MAX_URL_LEN`] long, a host, no
/// credentials. Where it may point is the network policy's business (`webhook::ssrf`: `check_url`
/// at creation, its `WebhookClient` at connect time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// The address when the host is an IP literal.
    pub fn literal_ip(&self) -> Option<std::net::IpAddr> {
        match self.0.host()? {
            url::Host::Ipv4(ip) => Some(std::net::IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(std::net::IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        }
    }
}

impl std::str::FromStr for WebhookUrl {
    type Err = Invalid;

    fn from_str(raw: &str) -> Result<Self, Invalid> {
        if raw.len() > MAX_URL_LEN {
            return Err(Invalid::parameter("url", format!("url is at most {MAX_URL_LEN} characters.")));
        }
        let url = url::Url::parse(raw.trim()).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => {
                Invalid::url("Invalid URL: a webhook URL needs a scheme and a host, such as https://example.com/webhooks.")
            }
            e => Invalid::url(format!("Invalid URL: {e}; a webhook URL looks like https://example.com/webhooks.")),
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(Invalid::url(format!(
                "Invalid URL scheme {}: a webhook URL starts with https:// (or http:// in test mode), such as https://example.com/webhooks.",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Invalid::url("Webhook URLs may not contain credentials."));
        }
        if url.host().is_none() {
            return Err(Invalid::url("The URL has no host."));
        }
        Ok(WebhookUrl(url))
    }
}

impl std::fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for WebhookUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Read back from the table through the same parse.
impl<'de> serde::Deserialize<'de> for WebhookUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}
