//! Configuration from the environment, read once in each function's `main`.

use std::time::Duration;

/// Names of the DynamoDB tables and the delivery queue. In AWS, `template.yaml` passes the
/// generated names in; locally the defaults below are what `paygate dev` and the tests create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub events_table: String,
    pub webhook_endpoints_table: String,
    pub api_keys_table: String,
    pub deliveries_table: String,
    pub delivery_queue: String,
    pub delivery_dlq: String,
    /// URLs of the two queues (`PAYGATE_DELIVERY_QUEUE_URL`, `PAYGATE_DELIVERY_DLQ_URL`); the local
    /// set-up fills them in when it creates the queues.
    pub delivery_queue_url: String,
    pub delivery_dlq_url: String,
    /// The slow lane (`SlowDeliveryQueue`, `PAYGATE_SLOW_DELIVERY_QUEUE_URL`): where the deliverer
    /// moves deliveries to slow endpoints, so that their long attempts hold its batches only.
    pub slow_delivery_queue: String,
    pub slow_delivery_queue_url: String,
    /// The queue where stream records the fan-out cannot read are parked
    /// (`PAYGATE_FANOUT_FAILURE_QUEUE_URL`; deployed, the stream mapping's on-failure destination).
    pub fanout_failure_queue: String,
    pub fanout_failure_queue_url: String,
    /// Producers' queue and its dead-letter queue (the ingest function's SQS way in; created locally
    /// with the others, published from only in AWS).
    pub ingest_queue: String,
    pub ingest_dlq: String,
    /// How long events are kept (DynamoDB TTL on `expires_at`).
    pub event_retention: Duration,
    /// How long a pending delivery may go untouched past its next attempt before the sweeper
    /// enqueues it again (`PAYGATE_REDRIVE_AFTER_SECONDS`, default 300).
    pub redrive_after: Duration,
    /// How long a warm function trusts a key it found valid before reading the ApiKeys table again
    /// (`PAYGATE_KEY_CACHE_SECONDS`, default and most 60; 0 reads it on every request): the bound
    /// on how long a revoked key keeps working.
    pub key_cache: Duration,
    /// `ByDue` shards (`PAYGATE_DUE_SHARDS`, default [`crate::store::deliveries::DUE_SHARDS`]; the
    /// template's `DueShards`): raise with the platform's deliveries/s, never lower.
    pub due_shards: u32,
    /// Each account's requests a second (`PAYGATE_RATE_LIMIT_LIVE`, `PAYGATE_RATE_LIMIT_TEST`;
    /// the template's `RateLimitLive` and `RateLimitTest`).
    pub rate_limits: crate::http::rate_limit::RateLimits,
}

/// Environment variable and local default of each table and queue, by the logical id it has in
/// `template.yaml`. The local set-up creates each resource under its default name.
pub const RESOURCES: &[(&str, &str, &str)] = &[
    ("EventsTable", "PAYGATE_EVENTS_TABLE", "paygate-events"),
    ("WebhookEndpointsTable", "PAYGATE_WEBHOOK_ENDPOINTS_TABLE", "paygate-webhook-endpoints"),
    ("ApiKeysTable", "PAYGATE_API_KEYS_TABLE", "paygate-api-keys"),
    ("DeliveriesTable", "PAYGATE_DELIVERIES_TABLE", "paygate-deliveries"),
    ("DeliveryQueue", "PAYGATE_DELIVERY_QUEUE", "paygate-delivery"),
    ("DeliveryDeadLetterQueue", "PAYGATE_DELIVERY_DLQ", "paygate-delivery-dlq"),
    ("SlowDeliveryQueue", "PAYGATE_SLOW_DELIVERY_QUEUE", "paygate-delivery-slow"),
    ("FanoutFailureQueue", "PAYGATE_FANOUT_FAILURE_QUEUE", "paygate-fanout-failures"),
    ("PayGateIngestQueue", "PAYGATE_INGEST_QUEUE", "paygate-ingest"),
    ("IngestDeadLetterQueue", "PAYGATE_INGEST_DLQ", "paygate-ingest-dlq"),
];

/// The default of `PAYGATE_REDRIVE_AFTER_SECONDS`.
pub const DEFAULT_REDRIVE_AFTER_SECS: u64 = 300;
/// The default of `PAYGATE_KEY_CACHE_SECONDS`.
pub const DEFAULT_KEY_CACHE_SECS: u64 = 60;

impl Config {
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The local defaults, whatever the environment says.
    pub fn local() -> Self {
        Self::from_lookup(|_| None)
    }

    /// The local defaults, each with `-{suffix}`: a private set of tables and queues.
    pub fn local_with_suffix(suffix: &str) -> Self {
        Self::from_lookup(|var| RESOURCES.iter().find(|(_, v, _)| *v == var).map(|(_, _, default)| format!("{default}-{suffix}")))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let name = |logical: &str| {
            let (_, var, default) = RESOURCES.iter().find(|(l, _, _)| *l == logical).expect("known resource");
            get(var).filter(|v| !v.is_empty()).unwrap_or_else(|| (*default).to_owned())
        };
        let days = get("PAYGATE_EVENT_RETENTION_DAYS").and_then(|d| d.parse::<u64>().ok()).filter(|d| *d > 0).unwrap_or(30);
        let redrive_after = get("PAYGATE_REDRIVE_AFTER_SECONDS").and_then(|d| d.parse::<u64>().ok()).filter(|d| *d > 0).unwrap_or(DEFAULT_REDRIVE_AFTER_SECS);
        let due_shards = get("PAYGATE_DUE_SHARDS")
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|d| (1..=crate::store::deliveries::MAX_DUE_SHARDS).contains(d))
            .unwrap_or(crate::store::deliveries::DUE_SHARDS);
        let key_cache = get("PAYGATE_KEY_CACHE_SECONDS").and_then(|s| s.parse::<u64>().ok()).unwrap_or(DEFAULT_KEY_CACHE_SECS);
        Config {
            events_table: name("EventsTable"),
            webhook_endpoints_table: name("WebhookEndpointsTable"),
            api_keys_table: name("ApiKeysTable"),
            deliveries_table: name("DeliveriesTable"),
            delivery_queue: name("DeliveryQueue"),
            delivery_dlq: name("DeliveryDeadLetterQueue"),
            delivery_queue_url: get("PAYGATE_DELIVERY_QUEUE_URL").unwrap_or_default(),
            delivery_dlq_url: get("PAYGATE_DELIVERY_DLQ_URL").unwrap_or_default(),
            slow_delivery_queue: name("SlowDeliveryQueue"),
            slow_delivery_queue_url: get("PAYGATE_SLOW_DELIVERY_QUEUE_URL").unwrap_or_default(),
            fanout_failure_queue: name("FanoutFailureQueue"),
            fanout_failure_queue_url: get("PAYGATE_FANOUT_FAILURE_QUEUE_URL").unwrap_or_default(),
            ingest_queue: name("PayGateIngestQueue"),
            ingest_dlq: name("IngestDeadLetterQueue"),
            event_retention: Duration::from_secs(days * 86_400),
            redrive_after: Duration::from_secs(redrive_after),
            key_cache: Duration::from_secs(key_cache),
            due_shards,
            rate_limits: crate::http::rate_limit::RateLimits::from_lookup(&get).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "rate limits: the defaults apply");
                crate::http::rate_limit::RateLimits::default()
            }),
        }
    }

    /// The local name of the resource with this logical id in `template.yaml`.
    pub fn local_name(logical_id: &str) -> Option<&'static str> {
        RESOURCES.iter().find(|(l, _, _)| *l == logical_id).map(|(_, _, d)| *d)
    }

    /// The name this configuration gives the resource with this logical id.
    pub fn name_of(&self, logical_id: &str) -> String {
        match logical_id {
            "EventsTable" => self.events_table.clone(),
            "WebhookEndpointsTable" => self.webhook_endpoints_table.clone(),
            "ApiKeysTable" => self.api_keys_table.clone(),
            "DeliveriesTable" => self.deliveries_table.clone(),
            "DeliveryQueue" => self.delivery_queue.clone(),
            "DeliveryDeadLetterQueue" => self.delivery_dlq.clone(),
            "SlowDeliveryQueue" => self.slow_delivery_queue.clone(),
            "FanoutFailureQueue" => self.fanout_failure_queue.clone(),
            "PayGateIngestQueue" => self.ingest_queue.clone(),
            "IngestDeadLetterQueue" => self.ingest_dlq.clone(),
            other => other.to_lowercase(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::local();
        assert_eq!(c.events_table, "paygate-events");
        assert_eq!(c.event_retention, Duration::from_secs(30 * 86_400));
        assert_eq!(c.redrive_after, Duration::from_secs(300));
        assert_eq!(c.key_cache, Duration::from_secs(60));
        let uncached = Config::from_lookup(|k| (k == "PAYGATE_KEY_CACHE_SECONDS").then(|| "0".to_owned()));
        assert_eq!(uncached.key_cache, Duration::ZERO);
        let quick = Config::from_lookup(|k| (k == "PAYGATE_REDRIVE_AFTER_SECONDS").then(|| "3".to_owned()));
        assert_eq!(quick.redrive_after, Duration::from_secs(3));
        let c = Config::from_lookup(|k| match k {
            "PAYGATE_EVENTS_TABLE" => Some("stack-Events-1".into()),
            "PAYGATE_EVENT_RETENTION_DAYS" => Some("7".into()),
            _ => None,
        });
        assert_eq!(c.events_table, "stack-Events-1");
        assert_eq!(c.api_keys_table, "paygate-api-keys");
        let private = Config::local_with_suffix("t1");
        assert_eq!(private.events_table, "paygate-events-t1");
        assert_eq!(private.name_of("DeliveryQueue"), "paygate-delivery-t1");
        assert_eq!(c.event_retention, Duration::from_secs(7 * 86_400));
    }
}
