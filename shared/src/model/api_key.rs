//! An API key (the secret string, stored only as its hash) and what it may do. A secret key (`sk_…`) may do everything; a restricted key (`rk_…`)
//! has one [`Access`] per resource ([`Permissions`]); managing keys (`/v1/api_keys`) takes a
//! secret key. Every route of the API names what it [`Needs`] (`http::table`), and the caller's
//! key is checked against it before the handler runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::Invalid;
use crate::model::ids::{MalformedId, Mode, is_token, random_alnum};

/// A key's kind: its prefix (`sk_` or `rk_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Secret,
    Restricted,
}

impl KeyKind {
    /// `sk` or `rk`.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "sk",
            KeyKind::Restricted => "rk",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Restricted => "restricted",
        }
    }
}

/// What the API lets a key do with a resource, ordered: `write` includes `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    #[default]
    None,
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The resources a restricted key is given access to, by name as the API spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `GET /v1/events…`: read only (events are published by the platform).
    Events,
    /// `/v1/webhook_endpoints…` and an event's deliveries.
    WebhookEndpoints,
    /// `/v1/api_keys…`: secret keys only.
    ApiKeys,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Events => "events",
            Resource::WebhookEndpoints => "webhook_endpoints",
            Resource::ApiKeys => "api_keys",
        }
    }

    /// The access a restricted key may be given to it, least first.
    pub fn grantable(self) -> &'static [Access] {
        match self {
            Resource::Events => &[Access::None, Access::Read],
            Resource::WebhookEndpoints => &[Access::None, Access::Read, Access::Write],
            Resource::ApiKeys => &[Access::None],
        }
    }
}

/// A restricted key's access to each resource it can be given access to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Permissions {
    #[serde(default)]
    pub events: Access,
    #[serde(default)]
    pub webhook_endpoints: Access,
}

impl Permissions {
    /// The resources a restricted key can be given access to.
    pub const RESOURCES: [Resource; 2] = [Resource::Events, Resource::WebhookEndpoints];

    pub fn get(&self, resource: Resource) -> Access {
        match resource {
            Resource::Events => self.events,
            Resource::WebhookEndpoints => self.webhook_endpoints,
            Resource::ApiKeys => Access::None,
        }
    }

    /// Sets `resource` (by its API name) to `access` (by its API name), when that can be given.
    pub fn set(&mut self, resource: &str, access: &str) -> Result<(), Invalid> {
        let param = format!("permissions[{}]", resource.chars().take(64).collect::<String>());
        let Some(r) = Self::RESOURCES.into_iter().find(|r| r.as_str() == resource) else {
            let names: Vec<&str> = Self::RESOURCES.iter().map(|r| r.as_str()).collect();
            return Err(Invalid::parameter(param.clone(), format!("Unknown permission {param}: a restricted key has {}.", names.join(" and "))));
        };
        let grantable = r.grantable();
        let Some(a) = grantable.iter().copied().find(|a| a.as_str() == access) else {
            let names: Vec<&str> = grantable.iter().map(|a| a.as_str()).collect();
            return Err(Invalid::parameter(param.clone(), format!("{param} must be one of {}.", names.join(", "))));
        };
        match r {
            Resource::Events => self.events = a,
            Resource::WebhookEndpoints => self.webhook_endpoints = a,
            Resource::ApiKeys => {}
        }
        Ok(())
    }
}

/// What a key may do: everything, or what its permissions say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    Secret,
    Restricted(Permissions),
}

impl Grant {
    pub fn kind(&self) -> KeyKind {
        match self {
            Grant::Secret => KeyKind::Secret,
            Grant::Restricted(_) => KeyKind::Restricted,
        }
    }

    /// A restricted key's permissions; `None` for a secret key, which may do everything.
    pub fn permissions(&self) -> Option<Permissions> {
        match self {
            Grant::Secret => None,
            Grant::Restricted(p) => Some(*p),
        }
    }

    pub fn allows(&self, needs: Needs) -> bool {
        match self {
            Grant::Secret => true,
            Grant::Restricted(p) => needs.resource != Resource::ApiKeys && p.get(needs.resource) >= needs.access,
        }
    }
}

/// What a route needs of the caller's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Needs {
    pub resource: Resource,
    pub access: Access,
}

impl Needs {
    pub const fn read(resource: Resource) -> Self {
        Needs { resource, access: Access::Read }
    }

    pub const fn write(resource: Resource) -> Self {
        Needs { resource, access: Access::Write }
    }
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.resource {
            Resource::ApiKeys => f.write_str("a secret key"),
            r => write!(f, "{}: {}", r.as_str(), self.access),
        }
    }
}

/// An API key: secret (`sk_test_…`, `sk_live_…`) or restricted (`rk_test_…`, `rk_live_…`). Never
/// printed in full: `Debug` and `Display` show only its kind, mode and last four characters, as
/// Stripe's dashboard does.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    raw: String,
    kind: KeyKind,
    mode: Mode,
}

impl ApiKey {
    const SECRET_LEN: usize = 32;

    /// A new secret key.
    pub fn generate(mode: Mode) -> Self {
        Self::generate_kind(KeyKind::Secret, mode)
    }

    pub fn generate_kind(kind: KeyKind, mode: Mode) -> Self {
        let raw = format!("{}_{}_{}", kind.prefix(), mode, random_alnum(Self::SECRET_LEN));
        ApiKey { raw, kind, mode }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The whole key, for showing once to its owner. Never log it.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// Lower-case hex SHA-256 of the whole key: what the ApiKeys table stores instead of the key.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.raw.as_bytes()))
    }

    /// The last four characters, safe to show.
    pub fn hint(&self) -> &str {
        &self.raw[self.raw.len() - 4..]
    }

    /// `sk_test_…abcd`: what the API shows of a key.
    pub fn redacted(kind: KeyKind, mode: Mode, hint: &str) -> String {
        format!("{}_{mode}_…{hint}", kind.prefix())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({self})")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}_****{}", self.kind.prefix(), self.mode, self.hint())
    }
}

impl FromStr for ApiKey {
    type Err = MalformedId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MalformedId::new("API key", "sk_…");
        let kind = if s.starts_with("sk_") {
            KeyKind::Secret
        } else if s.starts_with("rk_") {
            KeyKind::Restricted
        } else {
            return Err(err());
        };
        let (mode, secret) = if let Some(rest) = s[3..].strip_prefix("test_") {
            (Mode::Test, rest)
        } else if let Some(rest) = s[3..].strip_prefix("live_") {
            (Mode::Live, rest)
        } else {
            return Err(err());
        };
        if secret.len() < 4 || !is_token(secret, 128) {
            return Err(err());
        }
        Ok(ApiKey { raw: s.to_owned(), kind, mode })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_parse_hash_and_never_print() {
        let k = ApiKey::generate(Mode::Live);
        assert!(k.expose().starts_with("sk_live_"));
        let parsed: ApiKey = k.expose().parse().unwrap();
        assert_eq!(parsed.mode(), Mode::Live);
        assert_eq!(parsed.hash(), k.hash());
        assert_eq!(k.hash().len(), 64);
        assert!(!format!("{k} {k:?}").contains(&k.expose()[8..]));
        for bad in ["", "sk_test_", "pk_test_abcd1234", "sk_prod_abcd1234", "sk_test_ab", "sk_test_abc$1234", "rk_prod_abcd1234", "rk_"] {
            assert!(bad.parse::<ApiKey>().is_err(), "{bad:?}");
        }
        let rk = ApiKey::generate_kind(KeyKind::Restricted, Mode::Test);
        assert!(rk.expose().starts_with("rk_test_"));
        let parsed: ApiKey = rk.expose().parse().unwrap();
        assert_eq!((parsed.kind(), parsed.mode()), (KeyKind::Restricted, Mode::Test));
        assert_eq!(format!("{rk}"), format!("rk_test_****{}", rk.hint()));
        assert_eq!(ApiKey::redacted(KeyKind::Restricted, Mode::Live, "abcd"), "rk_live_…abcd");
    }

    #[test]
    fn write_includes_read_and_only_secret_keys_manage_keys() {
        let p = Permissions { events: Access::Read, webhook_endpoints: Access::Write };
        let rk = Grant::Restricted(p);
        assert!(rk.allows(Needs::read(Resource::Events)));
        assert!(rk.allows(Needs::read(Resource::WebhookEndpoints)));
        assert!(rk.allows(Needs::write(Resource::WebhookEndpoints)));
        assert!(!rk.allows(Needs::read(Resource::ApiKeys)));
        let read_only = Grant::Restricted(Permissions { events: Access::None, webhook_endpoints: Access::Read });
        assert!(!read_only.allows(Needs::read(Resource::Events)));
        assert!(!read_only.allows(Needs::write(Resource::WebhookEndpoints)));
        assert!(Grant::Secret.allows(Needs::write(Resource::ApiKeys)));
    }

    #[test]
    fn only_grantable_permissions_are_set() {
        let mut p = Permissions::default();
        p.set("webhook_endpoints", "write").unwrap();
        p.set("events", "read").unwrap();
        assert_eq!(p, Permissions { events: Access::Read, webhook_endpoints: Access::Write });
        assert_eq!(p.set("events", "write").unwrap_err().param, "permissions[events]");
        assert!(p.set("api_keys", "read").is_err());
        assert!(p.set("charges", "read").is_err());
        assert!(p.set("webhook_endpoints", "admin").is_err());
    }
}
