//! `/v1/api_keys`: an account's keys in one mode (secret keys only may call these routes):
//! list them, create a restricted key, roll a key (the old one works until `expires_in` has
//! passed) and revoke a restricted or rolled key at once. A new key is in the answer once
//! (`secret`), and never again: an `Idempotency-Key` replay answers it without `secret`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, Code};
use crate::http::Api;
use crate::http::extract::{Form, PathId, Query};
use crate::http::objects::ListObject;
use crate::model::api_key::{KeyKind, Permissions};
use crate::model::ids::{ApiKeyId, Principal, Timestamp};
use crate::model::list::Page;
use crate::store::api_keys::{Created, IssuedKey, MAX_RESTRICTED_KEYS, StoredKey};

/// The longest `expires_in` of a roll: 7 days.
pub const MAX_EXPIRES_IN: u32 = 7 * 86_400;
/// The longest name of a key.
pub const MAX_NAME_CHARS: usize = 100;

/// The `api_key` object.
#[derive(Debug, Serialize)]
pub struct ApiKeyObject {
    pub id: ApiKeyId,
    pub object: &'static str,
    #[serde(rename = "type")]
    pub kind: KeyKind,
    pub name: Option<String>,
    /// `sk_test_…abcd`.
    pub hint: String,
    /// A restricted key's permissions; `null` for a secret key, which may do everything.
    pub permissions: Option<Permissions>,
    pub created: Timestamp,
    /// When a rolled key stops working; `null` until it is rolled.
    pub expires_at: Option<Timestamp>,
    /// Midnight (UTC) of the last day the key was used.
    pub last_used: Option<Timestamp>,
    pub livemode: bool,
    /// The whole key: only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&StoredKey> for ApiKeyObject {
    fn from(k: &StoredKey) -> Self {
        ApiKeyObject {
            id: k.id,
            object: "api_key",
            kind: k.kind(),
            name: k.name.clone(),
            hint: k.redacted(),
            permissions: k.grant.permissions(),
            created: k.created,
            expires_at: k.expires_at,
            last_used: k.last_used,
            livemode: k.principal.mode == crate::model::ids::Mode::Live,
            secret: None,
        }
    }
}

impl From<&IssuedKey> for ApiKeyObject {
    fn from(issued: &IssuedKey) -> Self {
        ApiKeyObject { secret: Some(issued.key.expose().to_owned()), ..ApiKeyObject::from(&issued.stored) }
    }
}

/// A response that holds a new key: the idempotency layer stores it without `secret`.
#[derive(Debug, Clone, Copy)]
pub struct ShownOnce;

fn shown_once(issued: &IssuedKey) -> Response {
    let mut response = Json(ApiKeyObject::from(issued)).into_response();
    response.extensions_mut().insert(ShownOnce);
    response
}

/// `GET /v1/api_keys`: the keys that work (secret and restricted, rolled ones until they expire),
/// newest first, a page at a time.
pub async fn list(State(api): State<Arc<Api>>, principal: Principal, Query(mut p): Query) -> Result<Response, ApiError> {
    let query = p.page::<ApiKeyId>("an API key id (key_…)")?;
    p.done()?;
    let now = Timestamp::now();
    let all: Vec<StoredKey> = api.keys.list(&principal).await?.into_iter().filter(|k| k.active(now)).collect();
    let page = Page::of(all, |k| &k.id, &query);
    let data: Vec<ApiKeyObject> = page.data.iter().map(ApiKeyObject::from).collect();
    Ok(Json(ListObject::of(&Page { data, has_more: page.has_more }, "/v1/api_keys")).into_response())
}

/// `POST /v1/api_keys`: a new restricted key (`rk_…`) with `permissions[events]` (`none` or
/// `read`) and `permissions[webhook_endpoints]` (`none`, `read` or `write`), each `none` unless
/// given, and an optional `name`.
pub async fn create(State(api): State<Arc<Api>>, principal: Principal, Form(mut p): Form) -> Result<Response, ApiError> {
    let name = name(p.string("name")?)?;
    let mut permissions = Permissions::default();
    for (resource, access) in p.object("permissions")? {
        permissions.set(&resource, &access)?;
    }
    p.done()?;
    match api.keys.create_restricted(&principal, name, permissions).await? {
        Created::Issued(issued) => {
            tracing::info!(key_id = %issued.stored.id, "restricted key created");
            Ok(shown_once(&issued))
        }
        Created::LimitReached(max) => Err(ApiError::request(
            Code::ResourceLimitExceeded,
            format!("You have reached the maximum of {max} restricted keys for this account and mode (it is {MAX_RESTRICTED_KEYS}): revoke one first."),
        )),
    }
}

/// `POST /v1/api_keys/{id}/roll`: a new key in place of this one, shown once; the old key works
/// for `expires_in` more seconds (0, the default, to 7 days), the key making the call included.
pub async fn roll(State(api): State<Arc<Api>>, principal: Principal, PathId(id): PathId, Form(mut p): Form) -> Result<Response, ApiError> {
    let expires_in = p.whole_number("expires_in", 0, MAX_EXPIRES_IN)?.unwrap_or(0);
    p.done()?;
    let old = key_of(&api, &principal, &id).await?;
    if let Some(at) = old.expires_at {
        return Err(ApiError::request(
            Code::ParameterInvalid,
            format!("The API key {} was rolled already and expires at {at}: roll the key that replaced it instead.", old.id),
        ));
    }
    let expires_at = Timestamp(Timestamp::now().unix_seconds() + u64::from(expires_in));
    let issued = api.keys.roll(&old, expires_at).await?.ok_or_else(|| changed(&old))?;
    api.auth.forget(&old.hash);
    tracing::info!(old = %old.id, new = %issued.stored.id, expires_in, "API key rolled");
    Ok(shown_once(&issued))
}

/// `POST /v1/api_keys/{id}/revoke`: the key stops working at once (within the key cache bound on
/// other instances). A secret key is rolled, not revoked, unless it was rolled already: a mode
/// always keeps one secret key.
pub async fn revoke(State(api): State<Arc<Api>>, principal: Principal, PathId(id): PathId, Form(p): Form) -> Result<Json<ApiKeyObject>, ApiError> {
    p.done()?;
    let key = key_of(&api, &principal, &id).await?;
    if key.kind() == KeyKind::Secret && key.expires_at.is_none() {
        return Err(ApiError::request(
            Code::ParameterInvalid,
            format!(
                "The API key {} is this mode's secret key: roll it instead (POST /v1/api_keys/{}/roll with expires_in=0 ends it at once and shows its replacement).",
                key.id, key.id
            ),
        ));
    }
    if !api.keys.revoke_stored(&key).await? {
        return Err(changed(&key));
    }
    api.auth.forget(&key.hash);
    tracing::info!(key_id = %key.id, "API key revoked");
    Ok(Json(ApiKeyObject { expires_at: Some(Timestamp::now()), ..ApiKeyObject::from(&key) }))
}

/// The working key of `principal` with the path's id, or a 404.
async fn key_of(api: &Api, principal: &Principal, raw: &str) -> Result<StoredKey, ApiError> {
    let missing = || ApiError::not_found("API key", raw, "id");
    let id: ApiKeyId = raw.parse().map_err(|_| missing())?;
    api.keys.by_id(principal, id).await?.filter(|k| k.active(Timestamp::now())).ok_or_else(missing)
}

fn changed(key: &StoredKey) -> ApiError {
    ApiError::request(Code::ParameterInvalid, format!("The API key {} was rolled or revoked by another request meanwhile.", key.id))
}

/// A name: trimmed, at most [`MAX_NAME_CHARS`]; empty is none.
fn name(raw: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(name) = raw.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else { return Ok(None) };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid(Code::ParameterInvalid, "name", format!("name must be at most {MAX_NAME_CHARS} characters.")));
    }
    Ok(Some(name))
}
