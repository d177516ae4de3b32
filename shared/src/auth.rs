//! Authentication, in every HTTP function (there is no separate authorizer): the `Authorization`
//! header → the caller's key ([`Caller`]: its account, mode and what it may do), or a Stripe-style
//! 401. Keys are stored only as SHA-256 hashes (`store::api_keys`). A warm function remembers the
//! keys it found valid for `PAYGATE_KEY_CACHE_SECONDS` (default and most 60), so a request is one
//! invocation and, warm, no read of the ApiKeys table; a revoked key is refused within that bound,
//! and a rolled key from its `expires_at` on (checked on every request, cached or not, once this
//! instance has read it since the roll). Unknown and revoked keys are remembered as refused for
//! [`REFUSED_FOR`], so a client (or an attacker) repeating a bad key costs no read of the table per
//! request; a malformed key is refused before any read. A store that fails or hangs (the SDK's
//! timeouts end it within seconds) answers a Stripe-style 500 `api_error`.
//!
//! The day a key was last used is written when a read of the key finds it older than today: at
//! most once a day per key, and from one instance at most once an hour ([`TOUCH_EVERY`]).

use std::sync::Arc;
use std::time::Duration;

use crate::cache::TtlCache;
use crate::error::{ApiError, Code};
use crate::model::ids::{ApiKey, Principal, Timestamp, unix_now};
use crate::store::api_keys::{ApiKeyStore, StoredKey};

/// The most keys a function remembers (valid, refused and touched, each); past it, it forgets
/// them and starts again.
const MAX_CACHED_KEYS: usize = 10_000;
/// How long a refused key (unknown or revoked) is refused without reading the table again: keys
/// are random, so one unknown now does not come to exist, and a revoked key stays revoked.
pub const REFUSED_FOR: Duration = Duration::from_secs(60);
/// The longest `PAYGATE_KEY_CACHE_SECONDS` may be: the bound on how long a revoked key works.
pub const MAX_KEY_CACHE: Duration = Duration::from_secs(60);
/// How often one instance tries at most to record the day a key was last used.
pub const TOUCH_EVERY: Duration = Duration::from_secs(3600);

/// Who is calling: the key's stored record (account, mode, kind, permissions).
pub type Caller = Arc<StoredKey>;

/// A key as a request presents it: parsed from the `Authorization` header and hashed, once.
#[derive(Debug)]
pub struct Presented {
    key: ApiKey,
    hash: String,
}

impl Presented {
    /// `Bearer sk_…`, or the 401 a malformed or missing header gets.
    pub fn from_header(authorization: Option<&str>) -> Result<Self, ApiError> {
        let key = parse_authorization(authorization)?;
        Ok(Presented { hash: key.hash(), key })
    }
}

/// Authenticates requests for one function, remembering valid keys (see the module docs).
#[derive(Debug)]
pub struct Authenticator {
    keys: ApiKeyStore,
    /// Valid keys by hash, for the key cache bound.
    valid: TtlCache<String, Caller>,
    /// Refused keys by hash: the refusal, for [`REFUSED_FOR`].
    refused: TtlCache<String, ApiError>,
    /// Keys whose day of use this instance tried to record, for [`TOUCH_EVERY`].
    touched: TtlCache<String, ()>,
}

impl Authenticator {
    /// `ttl` is capped at [`MAX_KEY_CACHE`].
    pub fn new(keys: ApiKeyStore, ttl: Duration) -> Self {
        Authenticator {
            keys,
            valid: TtlCache::new(ttl.min(MAX_KEY_CACHE), MAX_CACHED_KEYS),
            refused: TtlCache::new(REFUSED_FOR, MAX_CACHED_KEYS),
            touched: TtlCache::new(TOUCH_EVERY, MAX_CACHED_KEYS),
        }
    }

    /// How long a valid key is remembered: the bound on how long a revoked key still works here.
    pub fn cache_bound(&self) -> Duration {
        self.valid.ttl()
    }

    /// The caller of a key this instance already knows is valid (no read).
    pub fn known(&self, presented: &Presented) -> Option<Caller> {
        self.valid.get(&presented.hash).filter(|c| c.active(Timestamp::now()))
    }

    /// Who the `Authorization` header's value speaks for, or the error to answer.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        Ok(self.caller(authorization).await?.principal.clone())
    }

    /// The key the `Authorization` header's value is, as stored, or the error to answer.
    pub async fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        self.caller_of(Presented::from_header(authorization)?).await
    }

    /// The presented key as stored, or the error to answer: from memory while this instance
    /// remembers it (valid or refused), else one read of the ApiKeys table.
    pub async fn caller_of(&self, presented: Presented) -> Result<Caller, ApiError> {
        let Presented { key, hash } = presented;
        if let Some(caller) = self.valid.get(&hash) {
            return match usable(&key, &caller) {
                Ok(()) => Ok(caller),
                Err(e) => Err(self.refuse(hash, e)),
            };
        }
        if let Some(refusal) = self.refused.get(&hash) {
            return Err(refusal);
        }
        let mut stored = match self.keys.find(&key).await? {
            Some(stored) => stored,
            None => return Err(self.refuse(hash, unknown_key(&key))),
        };
        if let Err(e) = usable(&key, &stored) {
            return Err(self.refuse(hash, e));
        }
        self.touch_if_due(&mut stored).await;
        let caller = Arc::new(stored);
        self.valid.insert(hash, caller.clone());
        Ok(caller)
    }

    /// Forgets what this instance knows of the key stored under `hash` (after rolling or revoking
    /// it here): the next request with it reads the table.
    pub fn forget(&self, hash: &str) {
        self.valid.remove(hash);
    }

    /// Records today as the key's last day of use when the stored day is older, and this
    /// instance has not tried within [`TOUCH_EVERY`]. A failure is logged, never answered.
    async fn touch_if_due(&self, stored: &mut StoredKey) {
        let today = Timestamp(unix_now() / 86_400 * 86_400);
        if stored.last_used.is_some_and(|d| d >= today) || self.touched.get(&stored.hash).is_some() {
            return;
        }
        self.touched.insert(stored.hash.clone(), ());
        match self.keys.touch(stored, today).await {
            Ok(()) => stored.last_used = Some(today),
            Err(e) => tracing::warn!(error = %e, key_id = %stored.id, "could not record the key's day of use"),
        }
    }

    fn refuse(&self, hash: String, e: ApiError) -> ApiError {
        self.valid.remove(&hash);
        self.refused.insert(hash, e.clone());
        e
    }
}

/// Whether the stored `key` may be used now.
fn usable(key: &ApiKey, stored: &StoredKey) -> Result<(), ApiError> {
    if stored.revoked || stored.expired(Timestamp::now()) {
        return Err(auth_error(Code::ApiKeyExpired, format!("Expired API Key provided: {key}")));
    }
    // Cannot happen for keys we issued (kind and mode are part of the hashed key); refuse anyway.
    if stored.principal.mode != key.mode() || stored.kind() != key.kind() {
        return Err(unknown_key(key));
    }
    Ok(())
}

/// Who the `Authorization` header's value speaks for, read from the table (no cache): a 401, or
/// the store's failure (a 500 or 429).
pub async fn authenticate(keys: &ApiKeyStore, authorization: Option<&str>) -> Result<Principal, ApiError> {
    let key = parse_authorization(authorization)?;
    let stored = keys.find(&key).await?.ok_or_else(|| unknown_key(&key))?;
    usable(&key, &stored)?;
    Ok(stored.principal)
}

/// The 401 of a key that is well formed but not ours.
fn unknown_key(key: &ApiKey) -> ApiError {
    auth_error(Code::ApiKeyInvalid, format!("Invalid API Key provided: {key}"))
}

fn auth_error(code: Code, message: String) -> ApiError {
    ApiError::Authentication { code, message }
}

/// `Bearer sk_…` (scheme case-insensitive) → the key.
pub fn parse_authorization(value: Option<&str>) -> Result<ApiKey, ApiError> {
    let missing = || {
        auth_error(
            Code::ApiKeyMissing,
            "You did not provide an API key. You need to provide your API key in the Authorization header, \
             using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
                .to_owned(),
        )
    };
    let value = value.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(missing)?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    token.trim().parse::<ApiKey>().map_err(|_| {
        auth_error(
            Code::ApiKeyInvalid,
            "Invalid API Key provided. Secret keys look like sk_test_… or sk_live_…, restricted keys rk_test_… or rk_live_….".to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::Mode;

    #[test]
    fn authorization_header_parsing() {
        let key = ApiKey::generate(Mode::Test);
        let ok = parse_authorization(Some(&format!("Bearer {}", key.expose()))).unwrap();
        assert_eq!(ok, key);
        assert!(parse_authorization(Some(&format!("bearer  {}", key.expose()))).is_ok());
        for (value, code) in [
            (None, "api_key_missing"),
            (Some(""), "api_key_missing"),
            (Some("Basic abc"), "api_key_missing"),
            (Some("Bearer"), "api_key_missing"),
            (Some("Bearer pk_test_abcd"), "api_key_invalid"),
            (Some("Bearer sk_test_"), "api_key_invalid"),
        ] {
            match parse_authorization(value) {
                Err(ApiError::Authentication { code: c, .. }) => assert_eq!(c.as_str(), code, "{value:?}"),
                other => panic!("{value:?}: {other:?}"),
            }
        }
    }
}
