//! The ApiKeys table: keys stored only as their SHA-256 hashes (`pk`), with their id, account,
//! mode, kind, permissions and lifetime. The sparse index `ByAccount` (`account_pk` =
//! `{account}#{mode}`, sorted by `key_id`) lists an account's keys; a revoked key leaves it.
//!
//! Keys written before key ids existed have neither `key_id` nor `account_pk`: the first time one
//! is read ([`ApiKeyStore::find`], every authentication that misses the cache) it is given both.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use crate::model::api_key::{Grant, KeyKind, Permissions};
use crate::model::ids::{AccountId, ApiKey, ApiKeyId, Mode, Principal, Timestamp};
use crate::store::{HashKey, StoreError, conditional, key_item, transact_write};

/// The index of an account's keys.
pub const BY_ACCOUNT: &str = "ByAccount";
/// The most restricted keys one account may have in one mode at once.
pub const MAX_RESTRICTED_KEYS: usize = 50;

/// The ApiKeys table's item: keyed by the key's hash; the key itself is never stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ApiKeyItem {
    pk: String,
    /// Absent on keys written before ids existed (given one when next read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_id: Option<ApiKeyId>,
    /// `{account}#{mode}` while the key is not revoked: `ByAccount`'s partition key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_pk: Option<String>,
    account_id: AccountId,
    mode: Mode,
    created_at: Timestamp,
    revoked: bool,
    /// The last four characters, to name the key in messages.
    hint: String,
    #[serde(default = "secret")]
    kind: KeyKind,
    /// A restricted key's permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    permissions: Option<Permissions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// When a rolled key stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    /// Midnight (UTC) of the last day the key was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used: Option<Timestamp>,
}

fn secret() -> KeyKind {
    KeyKind::Secret
}

/// What the ApiKeys table says of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub id: ApiKeyId,
    /// The hash the key is stored under.
    pub hash: String,
    /// Whose key it is, and the mode it was stored with.
    pub principal: Principal,
    pub grant: Grant,
    pub name: Option<String>,
    /// Its last four characters.
    pub hint: String,
    pub created: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used: Option<Timestamp>,
    pub revoked: bool,
}

impl StoredKey {
    pub fn kind(&self) -> KeyKind {
        self.grant.kind()
    }

    /// `sk_test_…abcd`.
    pub fn redacted(&self) -> String {
        ApiKey::redacted(self.kind(), self.principal.mode, &self.hint)
    }

    /// Whether it has expired by `now` (a rolled key past its `expires_at`).
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether it works at `now`.
    pub fn active(&self, now: Timestamp) -> bool {
        !self.revoked && !self.expired(now)
    }

    fn from_item(item: ApiKeyItem, id: ApiKeyId) -> Self {
        let grant = match item.kind {
            KeyKind::Secret => Grant::Secret,
            KeyKind::Restricted => Grant::Restricted(item.permissions.unwrap_or_default()),
        };
        StoredKey {
            id,
            hash: item.pk,
            principal: Principal { account: item.account_id, mode: item.mode },
            grant,
            name: item.name,
            hint: item.hint,
            created: item.created_at,
            expires_at: item.expires_at,
            last_used: item.last_used,
            revoked: item.revoked,
        }
    }
}

/// A new key, shown once, and what is stored of it.
#[derive(Debug)]
pub struct IssuedKey {
    pub key: ApiKey,
    pub stored: StoredKey,
}

/// A new account's keys, shown once.
#[derive(Debug)]
pub struct NewAccount {
    pub account_id: AccountId,
    pub test_key: ApiKey,
    pub live_key: ApiKey,
}

/// What [`ApiKeyStore::create_restricted`] did.
#[derive(Debug)]
pub enum Created {
    Issued(IssuedKey),
    /// The account has [`MAX_RESTRICTED_KEYS`] restricted keys in this mode already.
    LimitReached(usize),
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

    /// Stores `key` (a secret key, or a restricted key without permissions) for `account`.
    pub async fn add_key(&self, account: &AccountId, key: &ApiKey) -> Result<StoredKey, StoreError> {
        let item = new_item(account, key, None, None);
        self.insert(&item).await?;
        Ok(stored(item))
    }

    /// A new restricted key for `principal`, unless it has [`MAX_RESTRICTED_KEYS`] already.
    pub async fn create_restricted(&self, principal: &Principal, name: Option<String>, permissions: Permissions) -> Result<Created, StoreError> {
        let now = Timestamp::now();
        let restricted = self.list(principal).await?.iter().filter(|k| k.kind() == KeyKind::Restricted && k.active(now)).count();
        if restricted >= MAX_RESTRICTED_KEYS {
            return Ok(Created::LimitReached(MAX_RESTRICTED_KEYS));
        }
        let key = ApiKey::generate_kind(KeyKind::Restricted, principal.mode);
        let item = new_item(&principal.account, &key, name, Some(permissions));
        self.insert(&item).await?;
        Ok(Created::Issued(IssuedKey { key, stored: stored(item) }))
    }

    /// The keys of `principal` that are not revoked (expired ones included), newest first.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<StoredKey>, StoreError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self.account_query(principal, "account_pk = :a").scan_index_forward(false).set_exclusive_start_key(start).send().await?;
            for item in out.items.unwrap_or_default() {
                let item: ApiKeyItem = serde_dynamo::from_item(item)?;
                if let Some(id) = item.key_id {
                    keys.push(StoredKey::from_item(item, id));
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(keys);
            }
        }
    }

    /// The key of `principal` with this id, unless it is revoked.
    pub async fn by_id(&self, principal: &Principal, id: ApiKeyId) -> Result<Option<StoredKey>, StoreError> {
        let out = self
            .account_query(principal, "account_pk = :a AND key_id = :k")
            .expression_attribute_values(":k", AttributeValue::S(id.to_string()))
            .send()
            .await?;
        let Some(item) = out.items.unwrap_or_default().into_iter().next() else { return Ok(None) };
        let item: ApiKeyItem = serde_dynamo::from_item(item)?;
        Ok(Some(StoredKey::from_item(item, id)))
    }

    /// Replaces `old` with a new key of the same kind, permissions and name; `old` keeps working
    /// until `expires_at`. `None` when `old` was rolled or revoked meanwhile.
    pub async fn roll(&self, old: &StoredKey, expires_at: Timestamp) -> Result<Option<IssuedKey>, StoreError> {
        let key = ApiKey::generate_kind(old.kind(), old.principal.mode);
        let item = new_item(&old.principal.account, &key, old.name.clone(), old.grant.permissions());
        let put =
            Put::builder().table_name(&self.table).set_item(Some(serde_dynamo::to_item(&item)?)).condition_expression("attribute_not_exists(pk)").build()?;
        let expire = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(&HashKey { pk: old.hash.clone() })))
            .update_expression("SET expires_at = :e, rolled_to = :n")
            .condition_expression("account_pk = :a AND revoked = :f AND attribute_not_exists(expires_at)")
            .expression_attribute_values(":e", AttributeValue::S(expires_at.to_string()))
            .expression_attribute_values(":n", AttributeValue::S(item.key_id.map(|id| id.to_string()).unwrap_or_default()))
            .expression_attribute_values(":a", AttributeValue::S(old.principal.partition()))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .build()?;
        let items = vec![TransactWriteItem::builder().put(put).build(), TransactWriteItem::builder().update(expire).build()];
        if !transact_write(&self.client, items).await? {
            return Ok(None);
        }
        Ok(Some(IssuedKey { key, stored: stored(item) }))
    }

    /// Revokes `key` at once and takes it off the account's list. A secret key that has not been
    /// rolled is never revoked (the mode would be left without one): `false` then, and when it was
    /// revoked meanwhile.
    pub async fn revoke_stored(&self, key: &StoredKey) -> Result<bool, StoreError> {
        let out = self
            .update(&key.hash)
            .update_expression("SET revoked = :t REMOVE account_pk")
            .condition_expression("account_pk = :a AND (kind = :r OR attribute_exists(expires_at))")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":a", AttributeValue::S(key.principal.partition()))
            .expression_attribute_values(":r", AttributeValue::S(KeyKind::Restricted.as_str().to_owned()))
            .send()
            .await;
        conditional(out)
    }

    /// Revokes `key`, whatever it is (the operator's way out: tests and incident response).
    pub async fn revoke(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.update(&key.hash())
            .update_expression("SET revoked = :t REMOVE account_pk")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await?;
        Ok(())
    }

    /// The stored key with this key's hash, if any. A key stored before ids existed is given its
    /// id (and its place in `ByAccount`, unless revoked) here.
    pub async fn find(&self, key: &ApiKey) -> Result<Option<StoredKey>, StoreError> {
        let Some(item) = self.get(&key.hash()).await? else { return Ok(None) };
        if let Some(id) = item.key_id {
            return Ok(Some(StoredKey::from_item(item, id)));
        }
        let id = ApiKeyId::generate();
        let mut update = self
            .update(&item.pk)
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(key_id)")
            .expression_attribute_values(":k", AttributeValue::S(id.to_string()));
        update = if item.revoked {
            update.update_expression("SET key_id = :k")
        } else {
            update
                .update_expression("SET key_id = :k, account_pk = :a")
                .expression_attribute_values(":a", AttributeValue::S(Principal { account: item.account_id.clone(), mode: item.mode }.partition()))
        };
        if conditional(update.send().await)? {
            return Ok(Some(StoredKey::from_item(item, id)));
        }
        // Given an id by another reader meanwhile: read it again.
        let Some(item) = self.get(&key.hash()).await? else { return Ok(None) };
        let id = item.key_id.ok_or_else(|| StoreError::Malformed("an API key without key_id after it was given one".into()))?;
        Ok(Some(StoredKey::from_item(item, id)))
    }

    /// Records that `key` was used on the day starting at `day`: one write a day at most (the
    /// condition refuses an earlier or equal day).
    pub async fn touch(&self, key: &StoredKey, day: Timestamp) -> Result<(), StoreError> {
        let out = self
            .update(&key.hash)
            .update_expression("SET last_used = :d")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(last_used) OR last_used < :d)")
            .expression_attribute_values(":d", AttributeValue::S(day.to_string()))
            .send()
            .await;
        conditional(out).map(|_| ())
    }

    /// An UpdateItem of the key stored under `hash`.
    fn update(&self, hash: &str) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).set_key(Some(key_item(&HashKey { pk: hash.to_owned() })))
    }

    /// A Query of `principal`'s keys in `ByAccount` with `condition` (`:a` is bound to its key).
    fn account_query(&self, principal: &Principal, condition: &str) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(BY_ACCOUNT)
            .key_condition_expression(condition)
            .expression_attribute_values(":a", AttributeValue::S(principal.partition()))
    }

    /// Writes a new key's item (a hash is never reused).
    async fn insert(&self, item: &ApiKeyItem) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await?;
        Ok(())
    }

    async fn get(&self, hash: &str) -> Result<Option<ApiKeyItem>, StoreError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(key_item(&HashKey { pk: hash.to_owned() }))).send().await?;
        out.item.map(serde_dynamo::from_item).transpose().map_err(StoreError::from)
    }
}

fn new_item(account: &AccountId, key: &ApiKey, name: Option<String>, permissions: Option<Permissions>) -> ApiKeyItem {
    let permissions = match key.kind() {
        KeyKind::Secret => None,
        KeyKind::Restricted => Some(permissions.unwrap_or_default()),
    };
    ApiKeyItem {
        pk: key.hash(),
        key_id: Some(ApiKeyId::generate()),
        account_pk: Some(Principal { account: account.clone(), mode: key.mode() }.partition()),
        account_id: account.clone(),
        mode: key.mode(),
        created_at: Timestamp::now(),
        revoked: false,
        hint: key.hint().to_owned(),
        kind: key.kind(),
        permissions,
        name,
        expires_at: None,
        last_used: None,
    }
}

fn stored(item: ApiKeyItem) -> StoredKey {
    let id = item.key_id.expect("new items have ids");
    StoredKey::from_item(item, id)
}
