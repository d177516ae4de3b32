//! Authentication, in every HTTP function (there is no separate authorizer): the `Authorization`
//! header → a principal, or a Stripe-style 401. Keys are stored only as SHA-256 hashes
//! (`store::api_keys`). A warm function remembers the keys it found valid for
//! `PAYGATE_KEY_CACHE_SECONDS` (default 60), so a request is one invocation and, warm, no read of
//! the ApiKeys table; a revoked key is refused within that bound. Unknown and revoked keys are
//! remembered as refused for [`REFUSED_FOR`], so a client (or an attacker) repeating a bad key
//! costs no read of the table per request; a malformed key is refused before any read. A store that
//! fails or hangs (the SDK's timeouts end it within seconds) answers a Stripe-style 500 `api_error`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ApiError, Code};
use crate::ids::{ApiKey, Principal};
use crate::store::api_keys::ApiKeyStore;

/// The most keys a function remembers (valid, and refused, each); past it, it forgets them all
/// and starts again.
const MAX_CACHED_KEYS: usize = 10_000;
/// How long a refused key (unknown or revoked) is refused without reading the table again: keys
/// are random, so one unknown now does not come to exist, and a revoked key stays revoked.
pub const REFUSED_FOR: Duration = Duration::from_secs(60);

/// Authenticates requests for one function, remembering valid keys (see the module docs).
#[derive(Debug)]
pub struct Authenticator {
    keys: ApiKeyStore,
    ttl: Duration,
    /// Valid keys by hash, with when they were read.
    valid: Mutex<HashMap<String, (Principal, Instant)>>,
    /// Refused keys by hash: the refusal, and when.
    refused: Mutex<HashMap<String, (ApiError, Instant)>>,
}

impl Authenticator {
    pub fn new(keys: ApiKeyStore, ttl: Duration) -> Self {
        Authenticator { keys, ttl, valid: Mutex::new(HashMap::new()), refused: Mutex::new(HashMap::new()) }
    }

    /// The principal of a key this instance already knows is valid (no read): `None` for any other
    /// header, malformed ones included.
    pub fn known(&self, authorization: Option<&str>) -> Option<Principal> {
        self.remembered(&parse_authorization(authorization).ok()?.hash())
    }

    /// Who the `Authorization` header's value speaks for, or the error to answer.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let key = parse_authorization(authorization)?;
        let hash = key.hash();
        if let Some(principal) = self.remembered(&hash) {
            return Ok(principal);
        }
        if let Some(refusal) = self.refusal(&hash) {
            return Err(refusal);
        }
        let principal = match lookup(&self.keys, &key).await {
            Ok(p) => p,
            Err(e @ ApiError::Authentication { .. }) => {
                let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
                if refused.len() >= MAX_CACHED_KEYS {
                    refused.clear();
                }
                refused.insert(hash, (e.clone(), Instant::now()));
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if !self.ttl.is_zero() {
            let mut valid = self.valid.lock().unwrap_or_else(|e| e.into_inner());
            if valid.len() >= MAX_CACHED_KEYS {
                valid.clear();
            }
            valid.insert(hash, (principal.clone(), Instant::now()));
        }
        Ok(principal)
    }

    fn refusal(&self, hash: &str) -> Option<ApiError> {
        let refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused.get(hash).filter(|(_, at)| at.elapsed() < REFUSED_FOR).map(|(e, _)| e.clone())
    }

    fn remembered(&self, hash: &str) -> Option<Principal> {
        let valid = self.valid.lock().unwrap_or_else(|e| e.into_inner());
        valid.get(hash).filter(|(_, read_at)| read_at.elapsed() < self.ttl).map(|(p, _)| p.clone())
    }
}

/// Who the `Authorization` header's value speaks for, read from the table (no cache): a 401, or
/// the store's failure (a 500 or 429).
pub async fn authenticate(keys: &ApiKeyStore, authorization: Option<&str>) -> Result<Principal, ApiError> {
    lookup(keys, &parse_authorization(authorization)?).await
}

async fn lookup(keys: &ApiKeyStore, key: &ApiKey) -> Result<Principal, ApiError> {
    match keys.find(key).await? {
        None => Err(auth_error(Code::ApiKeyInvalid, format!("Invalid API Key provided: {key}"))),
        Some(stored) if stored.revoked => Err(auth_error(Code::ApiKeyExpired, format!("Expired API Key provided: {key}"))),
        // Cannot happen for keys we issued (the mode is part of the hashed key); refuse anyway.
        Some(stored) if stored.principal.mode != key.mode() => Err(auth_error(Code::ApiKeyInvalid, format!("Invalid API Key provided: {key}"))),
        Some(stored) => Ok(stored.principal),
    }
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
    token
        .trim()
        .parse::<ApiKey>()
        .map_err(|_| auth_error(Code::ApiKeyInvalid, "Invalid API Key provided. Secret keys look like sk_test_… or sk_live_….".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Mode;

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
