//! Building every function's dependencies from one configuration: the Lambdas' `main`s, the local
//! stack and the tests all wire through here.

use crate::auth::Authenticator;
use crate::aws::{Clients, Target};
use crate::config::Config;
use crate::http::Api;
use crate::ingest::Publisher;
use crate::store::EventStore;
use crate::store::api_keys::ApiKeyStore;
use crate::store::deliveries::DeliveryStore;
use crate::store::endpoints::EndpointStore;
use crate::store::health::HealthStore;
use crate::store::idempotency::IdempotencyStore;
use crate::webhook::breaker::BreakerConfig;
use crate::webhook::deliver::{Deliverer, RetrySchedule};
use crate::webhook::fanout::Fanout;
use crate::webhook::ssrf::{UrlPolicy, WebhookClient};
use crate::webhook::sweeper::Sweeper;

/// SDK clients, configuration and the webhook URL policy, built once at start-up.
#[derive(Debug, Clone)]
pub struct Deps {
    pub clients: Clients,
    pub config: Config,
    /// Private and loopback webhook URLs are allowed only for local development.
    pub policy: UrlPolicy,
}

impl Deps {
    /// In a Lambda: the usual AWS credential chain, configuration and policy from the environment.
    pub async fn from_env() -> Self {
        Deps { clients: Clients::new(&Target::Aws).await, config: Config::from_env(), policy: UrlPolicy::from_env() }
    }

    pub fn events(&self) -> EventStore {
        EventStore::new(self.clients.dynamodb.clone(), &self.config.events_table, self.config.event_retention).with_plan_cache(self.config.key_cache)
    }

    pub fn keys(&self) -> ApiKeyStore {
        ApiKeyStore::new(self.clients.dynamodb.clone(), &self.config.api_keys_table)
    }

    pub fn endpoints(&self) -> EndpointStore {
        EndpointStore::new(self.clients.dynamodb.clone(), &self.config.webhook_endpoints_table)
    }

    pub fn deliveries(&self) -> DeliveryStore {
        self.deliveries_over(self.events())
    }

    /// The delivery store over `events`: a process's stores that share one `EventStore` share
    /// its cache of shard plans.
    fn deliveries_over(&self, events: EventStore) -> DeliveryStore {
        DeliveryStore::new(self.clients.dynamodb.clone(), &self.config.deliveries_table, events, self.config.redrive_after)
            .with_due_shards(self.config.due_shards)
    }

    /// Each endpoint's delivery health (in the Deliveries table).
    pub fn health(&self) -> HealthStore {
        HealthStore::new(self.clients.dynamodb.clone(), &self.config.deliveries_table)
    }

    pub fn fanout(&self) -> Fanout {
        Fanout { deliveries: self.deliveries(), sqs: self.clients.sqs.clone(), queue_url: self.config.delivery_queue_url.clone() }
    }

    pub fn publisher(&self) -> Publisher {
        let events = self.events();
        Publisher { deliveries: self.deliveries_over(events.clone()), events, endpoints: self.endpoints() }
    }

    pub fn sweeper(&self) -> Sweeper {
        Sweeper { deliveries: self.deliveries(), fanout: self.fanout() }
    }

    /// Delivery with the given retry schedule (`RetrySchedule::from_env()` in the Lambda) and the
    /// default breaker (`BreakerConfig::from_env()` in the Lambda and `paygate dev`).
    pub fn deliverer(&self, schedule: RetrySchedule) -> Deliverer {
        Deliverer {
            endpoints: self.endpoints(),
            deliveries: self.deliveries(),
            health: self.health(),
            sqs: self.clients.sqs.clone(),
            dlq_url: self.config.delivery_dlq_url.clone(),
            slow_lane: Fanout { deliveries: self.deliveries(), sqs: self.clients.sqs.clone(), queue_url: self.config.slow_delivery_queue_url.clone() },
            client: WebhookClient::new(self.policy),
            schedule,
            breaker: BreakerConfig::default(),
            memo: Default::default(),
        }
    }

    /// What the HTTP handlers need.
    pub fn api(&self) -> Api {
        let events = self.events();
        Api {
            auth: std::sync::Arc::new(Authenticator::new(self.keys(), self.config.key_cache)),
            failed_auths: std::sync::Arc::new(crate::http::rate_limit::FailedAuths::new(self.config.rate_limits.failed_auths)),
            limiter: std::sync::Arc::new(crate::http::rate_limit::RateLimiter::new(self.config.rate_limits)),
            rate_windows: crate::store::rate_windows::RateWindowStore::new(self.clients.dynamodb.clone(), &self.config.webhook_endpoints_table),
            keys: self.keys(),
            endpoints: self.endpoints(),
            idempotency: IdempotencyStore::new(self.clients.dynamodb.clone(), &self.config.webhook_endpoints_table),
            deliveries: self.deliveries_over(events.clone()),
            health: self.health(),
            events,
            fanout: self.fanout(),
            policy: self.policy,
        }
    }
}
