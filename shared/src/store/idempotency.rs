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

use crate::model::ids::{Principal, unix_now};
use crate::store::{IdKey, StoreError, key_item};

pub const WINDOW_SECS: u64 = 24 * 3600;
/// How long a claim may stay "in progress": longer than any API function runs (their timeouts
/// are under a minute), so a claim this old belongs to a call that crashed, and the key may be
/// claimed again instead of answering 409 until the record expires.
pub const CLAIM_TIMEOUT_SECS: u64 = 300;
pub const MAX_KEY_LEN: usize = 255;

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

/// An idempotency key: 1 to [`MAX_KEY_LEN`] printable ASCII characters (the `Idempotency-Key`
/// header, parsed by `http::idempotency`, which refuses anything else with a 400: an ignored key
/// would let a retry create a duplicate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `bytes` as a key, if they are one.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let ok = !bytes.is_empty() && bytes.len() <= MAX_KEY_LEN && bytes.iter().all(|b| (0x20..0x7f).contains(b));
        ok.then(|| IdempotencyKey(String::from_utf8_lossy(bytes).into_owned()))
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
    /// Seen before with other parameters.
    Mismatch(IdempotencyKey),
    /// Its first request is still running (or crashed less than [`CLAIM_TIMEOUT_SECS`] ago).
    InProgress,
    /// Its first request failed on our side and released it while this one looked: try again.
    Released,
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
    pub async fn claim(&self, principal: &Principal, key: Option<&IdempotencyKey>, fingerprint: &str) -> Result<Claim, StoreError> {
        self.claim_at(principal, key, fingerprint, unix_now()).await
    }

    /// [`IdempotencyStore::claim`] at `now` (unix seconds). A key is free when it was never used,
    /// when its record expired, or when its request has been "in progress" for longer than
    /// [`CLAIM_TIMEOUT_SECS`] (it crashed before it could finish or release the key).
    pub async fn claim_at(&self, principal: &Principal, key: Option<&IdempotencyKey>, fingerprint: &str, now: u64) -> Result<Claim, StoreError> {
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
            .set_item(Some(serde_dynamo::to_item(record)?))
            .condition_expression("attribute_not_exists(id) OR expires_at < :now OR (attribute_not_exists(#s) AND claimed_at < :stale)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":stale", AttributeValue::N(now.saturating_sub(CLAIM_TIMEOUT_SECS).to_string()))
            .send()
            .await;
        match put.map_err(StoreError::from) {
            Ok(_) => return Ok(Claim::Fresh(key.to_owned())),
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
        let out = self.client.get_item().table_name(&self.table).set_key(Some(Self::key(principal, key))).consistent_read(true).send().await?;
        // Released between our put and get: the first request failed on our side.
        let Some(item) = out.item else { return Ok(Claim::Released) };
        let existing: Record = serde_dynamo::from_item(item)?;
        if existing.fingerprint != fingerprint {
            return Ok(Claim::Mismatch(key.to_owned()));
        }
        Ok(match (existing.status, existing.body) {
            (Some(status), Some(body)) => Claim::Replay(status, serde_json::from_str(&body).unwrap_or(Value::Null)),
            _ => Claim::InProgress,
        })
    }

    /// Stores the response of a fresh request, or releases the key when we failed (5xx).
    pub async fn finish(&self, principal: &Principal, key: &IdempotencyKey, status: u16, body: &Value) -> Result<(), StoreError> {
        let k = Self::key(principal, key);
        // Not run (refused before the handler began: 401, 403, 429) or failed on our side: the key
        // is free again, as Stripe saves no result for a request that did not execute.
        if status >= 500 || matches!(status, 401 | 403 | 429) {
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
