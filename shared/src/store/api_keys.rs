//! The ApiKeys table: keys stored only as their SHA-256 hashes (`pk`), with account, mode and
//! whether they are revoked.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{AccountId, ApiKey, Mode, Principal, Timestamp, unix_now};
use crate::store::{HashKey, StoreError, key_item};

/// The ApiKeys table's item: keyed by the key's hash; the key itself is never stored.
#[derive(Debug, Serialize, Deserialize)]
struct ApiKeyItem {
    pk: String,
    account_id: AccountId,
    mode: Mode,
    created_at: Timestamp,
    revoked: bool,
    /// The last four characters, to name the key in messages.
    hint: String,
}

/// A new account's keys, shown once.
#[derive(Debug)]
pub struct NewAccount {
    pub account_id: AccountId,
    pub test_key: ApiKey,
    pub live_key: ApiKey,
}

impl NewAccount {
    /// `{"account_id","test_key","live_key"}` with the whole keys: for their owner's eyes only.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "account_id": self.account_id,
            "test_key": self.test_key.expose(),
            "live_key": self.live_key.expose(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeyStore {
    client: Client,
    table: String,
}

impl ApiKeyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        ApiKeyStore { client, table: table.into() }
    }

    /// A new account with one test and one live key.
    pub async fn create_account(&self) -> Result<NewAccount, StoreError> {
        let account_id = AccountId::generate();
        let test_key = ApiKey::generate(Mode::Test);
        let live_key = ApiKey::generate(Mode::Live);
        self.add_key(&account_id, &test_key).await?;
        self.add_key(&account_id, &live_key).await?;
        Ok(NewAccount { account_id, test_key, live_key })
    }

    pub async fn add_key(&self, account: &AccountId, key: &ApiKey) -> Result<(), StoreError> {
        let item = ApiKeyItem {
            pk: key.hash(),
            account_id: account.clone(),
            mode: key.mode(),
            created_at: Timestamp(unix_now()),
            revoked: false,
            hint: key.hint().to_owned(),
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await?;
        Ok(())
    }

    pub async fn revoke(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&HashKey { pk: key.hash() })))
            .update_expression("SET revoked = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await?;
        Ok(())
    }

    /// The stored key with this key's hash, if any.
    pub async fn find(&self, key: &ApiKey) -> Result<Option<StoredKey>, StoreError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(key_item(&HashKey { pk: key.hash() }))).send().await?;
        let Some(item) = out.item else { return Ok(None) };
        let item: ApiKeyItem = serde_dynamo::from_item(item)?;
        Ok(Some(StoredKey { principal: Principal { account: item.account_id, mode: item.mode }, revoked: item.revoked }))
    }
}

/// What the ApiKeys table says of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Whose key it is, and the mode it was stored with.
    pub principal: Principal,
    pub revoked: bool,
}
