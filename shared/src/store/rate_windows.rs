//! The per-account request counts that function instances share (`http::rate_limit`'s
//! `SharedWindows`): one item per account, mode and second in the WebhookEndpoints table
//! (`{account}#{mode}#rate`, sort key the unix second), which an instance adds its count to every
//! tenth of the limit, and which expires a minute later (TTL).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::model::ids::Principal;
use crate::store::{IdKey, StoreError, key_item};

/// How long a second's count is kept.
const KEEP_SECS: u64 = 60;

#[derive(Debug, Clone)]
pub struct RateWindowStore {
    client: Client,
    table: String,
}

impl RateWindowStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        RateWindowStore { client, table: table.into() }
    }

    /// Adds `n` requests to `principal`'s count of the unix second `second`; the count of every
    /// instance together, after the addition.
    pub async fn add(&self, principal: &Principal, second: u64, n: u32) -> Result<u64, StoreError> {
        let key = IdKey { pk: format!("{}#rate", principal.partition()), id: second.to_string() };
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&key)))
            .update_expression("ADD hits :n SET expires_at = :e")
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .expression_attribute_values(":e", AttributeValue::N((second + KEEP_SECS).to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await?;
        out.attributes
            .and_then(|a| a.get("hits").and_then(|h| h.as_n().ok()).and_then(|n| n.parse().ok()))
            .ok_or_else(|| StoreError::Malformed("a rate window without hits".into()))
    }
}
