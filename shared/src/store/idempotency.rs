//! `Idempotency-Key` with Stripe's semantics: the same key and the same request within 24 hours
//! replay the first response; the same key with different parameters is a 400 `idempotency_error`;
//! a key whose first request is still running is a 409. Records live in the WebhookEndpoints table
//! (sort key `idem#{key}`) and expire by TTL.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Code};
use crate::ids::{Principal, unix_now};
use crate::store::{IdKey, StoreError, key_item};

pub const WINDOW_SECS: u64 = 24 * 3600;
/// How long a claim may stay "in progress": longer than any API function runs (their timeouts
/// are under a minute), so a claim this old belongs to a call that crashed, and the key may be
/// claimed again instead of answering 409 until the record expires.
pub const CLAIM_TIMEOUT_SECS: u64 = 300;
const MAX_KEY_LEN: usize = 255;

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    pk: String,
    id: String,
    fingerprint: String,
    /// None while the first request runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    expires_at: u64,
    /// When the running request claimed the key (absent in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claimed_at: Option<u64>,
}

/// An `Idempotency-Key` header: 1 to 255 printable ASCII characters. Anything else is refused with
/// a 400, never ignored (an ignored key would let a retry create a duplicate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The header's value, if the request has one.
    pub fn from_header(value: Option<&http::HeaderValue>) -> Result<Option<Self>, ApiError> {
        let Some(value) = value else { return Ok(None) };
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(ApiError::invalid(
                Code::IdempotencyKeyInvalid,
                "Idempotency-Key",
                format!("Idempotency keys are 1 to {MAX_KEY_LEN} printable ASCII characters."),
            ));
        }
        Ok(Some(IdempotencyKey(String::from_utf8_lossy(bytes).into_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to do with a request.
#[derive(Debug)]
pub enum Claim {
    /// No key: just run it.
    NoKey,
    /// First use of the key: run it, then [`IdempotencyStore::finish`].
    Fresh(IdempotencyKey),
    /// Seen before with the same parameters: answer this.
    Replay(u16, Value),
}

#[derive(Debug, Clone)]
pub struct IdempotencyStore {
    client: Client,
    table: String,
}

/// A fingerprint of what a request asks: route, path id and its parsed parameters.
pub fn fingerprint(parts: &[&str], params: &Value) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.update(params.to_string().as_bytes());
    hex::encode(h.finalize())
}

impl IdempotencyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        IdempotencyStore { client, table: table.into() }
    }

    fn key(principal: &Principal, key: &IdempotencyKey) -> HashMap<String, AttributeValue> {
        key_item(&IdKey::of(principal, format!("idem#{}", key.as_str())))
    }

    /// Claims `key` for a request with `fingerprint`.
    pub async fn claim(&self, principal: &Principal, key: Option<&IdempotencyKey>, fingerprint: &str) -> Result<Claim, ApiError> {
        self.claim_at(principal, key, fingerprint, unix_now()).await
    }

    /// [`IdempotencyStore::claim`] at `now` (unix seconds). A key is free when it was never used,
    /// when its record expired, or when its request has been "in progress" for longer than
    /// [`CLAIM_TIMEOUT_SECS`] (it crashed before it could finish or release the key).
    pub async fn claim_at(&self, principal: &Principal, key: Option<&IdempotencyKey>, fingerprint: &str, now: u64) -> Result<Claim, ApiError> {
        let Some(key) = key else { return Ok(Claim::NoKey) };
        let record = Record {
            pk: principal.partition(),
            id: format!("idem#{}", key.as_str()),
            fingerprint: fingerprint.to_owned(),
            status: None,
            body: None,
            expires_at: now + WINDOW_SECS,
            claimed_at: Some(now),
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(record).map_err(StoreError::from)?))
            .condition_expression("attribute_not_exists(id) OR expires_at < :now OR (attribute_not_exists(#s) AND claimed_at < :stale)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":stale", AttributeValue::N(now.saturating_sub(CLAIM_TIMEOUT_SECS).to_string()))
            .send()
            .await;
        match put.map_err(StoreError::from) {
            Ok(_) => return Ok(Claim::Fresh(key.to_owned())),
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(principal, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from)?;
        let Some(item) = out.item else {
            // Released between our put and get: the first request failed on our side. Try again.
            return Err(ApiError::internal());
        };
        let existing: Record = serde_dynamo::from_item(item).map_err(StoreError::from)?;
        if existing.fingerprint != fingerprint {
            return Err(ApiError::Idempotency {
                message: format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. \
                     Try using a key other than '{key}' if you meant to execute a different request."
                ),
            });
        }
        match (existing.status, existing.body) {
            (Some(status), Some(body)) => Ok(Claim::Replay(status, serde_json::from_str(&body).unwrap_or(Value::Null))),
            _ => Err(ApiError::Conflict { message: "There is currently another in-progress request using this Idempotency-Key; retry later.".to_owned() }),
        }
    }

    /// Stores the response of a fresh request, or releases the key when we failed (5xx).
    pub async fn finish(&self, principal: &Principal, key: &IdempotencyKey, status: u16, body: &Value) -> Result<(), StoreError> {
        let k = Self::key(principal, key);
        if status >= 500 {
            self.client.delete_item().table_name(&self.table).set_key(Some(k)).send().await?;
            return Ok(());
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(k))
            .update_expression("SET #s = :s, body = :b")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", AttributeValue::N(status.to_string()))
            .expression_attribute_values(":b", AttributeValue::S(body.to_string()))
            .send()
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_and_never_ignored() {
        let ok = http::HeaderValue::from_static("order-1234 retry");
        assert_eq!(IdempotencyKey::from_header(Some(&ok)).unwrap().unwrap().as_str(), "order-1234 retry");
        assert_eq!(IdempotencyKey::from_header(None).unwrap(), None);
        let non_ascii = http::HeaderValue::from_bytes("clé-ünïcode".as_bytes()).unwrap();
        let empty = http::HeaderValue::from_static("");
        let long = http::HeaderValue::from_str(&"k".repeat(256)).unwrap();
        for bad in [non_ascii, empty, long] {
            let e = IdempotencyKey::from_header(Some(&bad)).unwrap_err();
            assert_eq!(e.status(), 400);
            assert_eq!(e.body()["error"]["param"], "Idempotency-Key");
        }
    }
}
