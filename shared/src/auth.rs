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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{ApiError, Code};
use crate::model::ids::{ApiKey, Principal, Timestamp, unix_now};
use crate::store::api_keys::{ApiKeyStore, StoredKey};

/// The most keys a function remembers (valid, and refused, each); past it, it forgets them all
/// and starts again.
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

/// Authenticates requests for one function, remembering valid keys (see the module docs).
#[derive(Debug)]
pub struct Authenticator {
    keys: ApiKeyStore,
    ttl: Duration,
    /// Valid keys by hash, with when they were read.
    valid: Mutex<HashMap<String, (Caller, Instant)>>,
    /// Refused keys by hash: the refusal, and when.
    refused: Mutex<HashMap<String, (ApiError, Instant)>>,
    /// When this instance last tried to record a key's day of use, by hash.
    touched: Mutex<HashMap<String, Instant>>,
}

impl Authenticator {
    /// `ttl` is capped at [`MAX_KEY_CACHE`].
    pub fn new(keys: ApiKeyStore, ttl: Duration) -> Self {
        Authenticator {
            keys,
            ttl: ttl.min(MAX_KEY_CACHE),
            valid: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// How long a valid key is remembered: the bound on how long a revoked key still works here.
    pub fn cache_bound(&self) -> Duration {
        self.ttl
    }

    /// The caller of a key this instance already knows is valid (no read): `None` for any other
    /// header, malformed ones included.
    pub fn known(&self, authorization: Option<&str>) -> Option<Caller> {
        let key = parse_authorization(authorization).ok()?;
        self.remembered(&key.hash()).filter(|c| c.active(now()))
    }

    /// Who the `Authorization` header's value speaks for, or the error to answer.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        Ok(self.caller(authorization).await?.principal.clone())
    }

    /// The key the `Authorization` header's value is, as stored, or the error to answer.
    pub async fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let key = parse_authorization(authorization)?;
        let hash = key.hash();
        if let Some(caller) = self.remembered(&hash) {
            return match usable(&key, &caller) {
                Ok(()) => Ok(caller),
                Err(e) => Err(self.refuse(hash, e)),
            };
        }
        if let Some(refusal) = self.refusal(&hash) {
            return Err(refusal);
        }
        let mut stored = match self.keys.find(&key).await? {
            Some(stored) => stored,
            None => return Err(self.refuse(hash, auth_error(Code::ApiKeyInvalid, format!("Invalid API Key provided: {key}")))),
        };
        if let Err(e) = usable(&key, &stored) {
            return Err(self.refuse(hash, e));
        }
        self.touch_if_due(&mut stored).await;
        let caller = Arc::new(stored);
        if !self.ttl.is_zero() {
            let mut valid = self.valid.lock().unwrap_or_else(|e| e.into_inner());
            if valid.len() >= MAX_CACHED_KEYS {
                valid.clear();
            }
            valid.insert(hash, (caller.clone(), Instant::now()));
        }
        Ok(caller)
    }

    /// Forgets what this instance knows of the key stored under `hash` (after rolling or revoking
    /// it here): the next request with it reads the table.
    pub fn forget(&self, hash: &str) {
        self.valid.lock().unwrap_or_else(|e| e.into_inner()).remove(hash);
    }

    /// Records today as the key's last day of use when the stored day is older, and this
    /// instance has not tried within [`TOUCH_EVERY`]. A failure is logged, never answered.
    async fn touch_if_due(&self, stored: &mut StoredKey) {
        let today = Timestamp(unix_now() / 86_400 * 86_400);
        if stored.last_used.is_some_and(|d| d >= today) {
            return;
        }
        {
            let mut touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
            if touched.get(&stored.hash).is_some_and(|at| at.elapsed() < TOUCH_EVERY) {
                return;
            }
            if touched.len() >= MAX_CACHED_KEYS {
                touched.clear();
            }
            touched.insert(stored.hash.clone(), Instant::now());
        }
        match self.keys.touch(stored, today).await {
            Ok(()) => stored.last_used = Some(today),
            Err(e) => tracing::warn!(error = %e, key_id = %stored.id, "could not record the key's day of use"),
        }
    }

    fn refuse(&self, hash: String, e: ApiError) -> ApiError {
        self.valid.lock().unwrap_or_else(|e| e.into_inner()).remove(&hash);
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if refused.len() >= MAX_CACHED_KEYS {
            refused.clear();
        }
        refused.insert(hash, (e.clone(), Instant::now()));
        e
    }

    fn refusal(&self, hash: &str) -> Option<ApiError> {
        let refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused.get(hash).filter(|(_, at)| at.elapsed() < REFUSED_FOR).map(|(e, _)| e.clone())
    }

    fn remembered(&self, hash: &str) -> Option<Caller> {
        let valid = self.valid.lock().unwrap_or_else(|e| e.into_inner());
        valid.get(hash).filter(|(_, read_at)| read_at.elapsed() < self.ttl).map(|(p, _)| p.clone())
    }
}

fn now() -> Timestamp {
    Timestamp(unix_now())
}

/// Whether the stored `key` may be used now.
fn usable(key: &ApiKey, stored: &StoredKey) -> Result<(), ApiError> {
    if stored.revoked || stored.expired(now()) {
        return Err(auth_error(Code::ApiKeyExpired, format!("Expired API Key provided: {key}")));
    }
    // Cannot happen for keys we issued (kind and mode are part of the hashed key); refuse anyway.
    if stored.principal.mode != key.mode() || stored.kind() != key.kind() {
        return Err(auth_error(Code::ApiKeyInvalid, format!("Invalid API Key provided: {key}")));
    }
    Ok(())
}

/// Who the `Authorization` header's value speaks for, read from the table (no cache): a 401, or
/// the store's failure (a 500 or 429).
pub async fn authenticate(keys: &ApiKeyStore, authorization: Option<&str>) -> Result<Principal, ApiError> {
    let key = parse_authorization(authorization)?;
    let stored = keys.find(&key).await?.ok_or_else(|| auth_error(Code::ApiKeyInvalid, format!("Invalid API Key provided: {key}")))?;
    usable(&key, &stored)?;
    Ok(stored.principal)
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
