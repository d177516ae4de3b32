//! The account, key, event and endpoint that the sample Lambda events in `events/` name, seeded so
//! that the samples find them (`paygate samples seed`, and the samples test).

use std::time::Duration;

use anyhow::Context;
use paygate::store::{EventStore, StoreError};
use paygate::webhook::endpoints::{EnabledEvents, Endpoint, new_endpoint};
use paygate::{AccountId, ApiKey, Event, EventId, EventType, Mode, Principal};
use serde_json::json;

use crate::stack::Stack;

pub const ACCOUNT: &str = "acct_sample0001";
pub const KEY: &str = "sk_test_sampleKey000000000000001";
pub const EVENT: &str = "evt_01M86Q64X5F9SJQX46N8MH7WTH";
pub const ENDPOINT: &str = "we_01M86Q64Q75548AGQCZMZ8CETQ";

fn ignore_conflict(r: Result<(), StoreError>) -> anyhow::Result<()> {
    match r {
        Ok(()) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Seeds the samples' account (with its test key), payment.succeeded event and endpoint (to
/// `endpoint_url`); what exists already is left as it is. Returns the principal and the endpoint.
pub async fn seed(stack: &Stack, endpoint_url: &str) -> anyhow::Result<(Principal, Endpoint)> {
    let account: AccountId = ACCOUNT.parse()?;
    let p = Principal { account: account.clone(), mode: Mode::Test };
    ignore_conflict(stack.keys().add_key(&account, &KEY.parse::<ApiKey>()?).await.map(drop))?;
    let mut endpoint = new_endpoint(Mode::Test, endpoint_url.parse()?, EnabledEvents::All, Some("samples".into()));
    endpoint.id = ENDPOINT.parse()?;
    // Not created when it exists already (or the account has the most endpoints it may have).
    stack.endpoints().create(&p, &endpoint).await?;
    let endpoint = stack.endpoints().get(&p, &endpoint.id).await?.context("no sample endpoint")?;
    let object = json!({
        "id": "pay_xyz789", "object": "payment", "amount": 5000, "currency": "GHS", "status": "succeeded",
        "payment_method": "mobile_money", "provider": "mtn", "phone": "024****567"
    });
    let id: EventId = EVENT.parse()?;
    let mut event = Event::with_id(id, EventType::PaymentSucceeded, object.as_object().cloned().unwrap_or_default(), Default::default());
    // Published as `ingest` publishes: with the pending delivery to the sample endpoint.
    event.pending_webhooks = 1;
    let states = stack.deliveries().opening(&p, id, std::slice::from_ref(&endpoint.id))?;
    // A retention long enough that the samples' fixed date never expires.
    let store = EventStore::new(stack.clients.dynamodb.clone(), &stack.config.events_table, Duration::from_secs(100 * 365 * 86_400));
    ignore_conflict(store.put_new_with(&p, &event, states).await)?;
    Ok((p, endpoint))
}
