//! `recover`: re-opening an endpoint's finally failed deliveries and queueing them again, a bounded
//! number per call ([`RECOVER_MAX`]). The route (`POST /v1/webhook_endpoints/{id}/recover`) and
//! `paygate recover` call [`reopen_failed`]; re-opening is idempotent: what it re-opened is pending,
//! no longer failed, so the same call again finds only the next ones.

use crate::model::ids::{EndpointId, EventId, Principal, Timestamp};
use crate::store::StoreError;
use crate::store::deliveries::DeliveryStore;
use crate::webhook::fanout::{DeliveryMessage, Fanout};

/// Final failures one `recover` call re-opens at most: its work is bounded whatever the backlog;
/// `has_more` says to call again.
pub const RECOVER_MAX: usize = 100;

/// What one `recover` call re-opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub endpoint: EndpointId,
    pub events: Vec<EventId>,
    pub has_more: bool,
}

/// At most [`RECOVER_MAX`] of `endpoint`'s final failures of events created at or after `since`,
/// re-opened and queued; `has_more` when there are more.
pub async fn reopen_failed(
    deliveries: &DeliveryStore,
    fanout: &Fanout,
    principal: &Principal,
    endpoint: EndpointId,
    since: Timestamp,
) -> Result<Recovery, StoreError> {
    let Some(since) = EventId::first_at_secs(since.unix_seconds()) else { return Ok(Recovery { endpoint, events: Vec::new(), has_more: false }) };
    let mut queued = Vec::new();
    let (failed, has_more) = deliveries.failed_since(principal, &endpoint, since, RECOVER_MAX).await?;
    for event_id in failed {
        // False when the event expired meanwhile, or another recover got there first.
        if deliveries.reopen(principal, event_id, &endpoint).await? {
            queued.push(event_id);
        }
    }
    schedule(fanout, principal, &endpoint, &queued).await;
    tracing::info!(endpoint_id = %endpoint, queued = queued.len(), has_more, "failed deliveries recovered");
    Ok(Recovery { endpoint, events: queued, has_more })
}

/// Enqueues re-opened deliveries. They are pending in DynamoDB already, so should SQS refuse, the
/// sweeper sends them after the grace: logged, not failed.
pub async fn schedule(fanout: &Fanout, principal: &Principal, endpoint: &EndpointId, events: &[EventId]) {
    let messages: Vec<DeliveryMessage> = events.iter().map(|e| DeliveryMessage::new(principal, *e, *endpoint)).collect();
    if let Err(e) = fanout.enqueue(&messages).await {
        tracing::warn!(error = %e, "could not enqueue re-opened deliveries; the sweeper sends them");
    }
}
