//! The local stack: the servers (through `scripts/local.sh`, the one place that installs and starts
//! them), their tables and queues, and every function's dependencies built from one configuration.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use paygate::auth::ApiKeyStore;
use paygate::aws::{Clients, Target};
use paygate::config::Config;
use paygate::local::provision;
use paygate::store::EventStore;
use paygate::webhook::api::WebhookApi;
use paygate::webhook::deliver::{Deliverer, RetrySchedule, http_client};
use paygate::webhook::deliveries::DeliveryStore;
use paygate::webhook::endpoints::EndpointStore;
use paygate::webhook::fanout::Fanout;
use paygate::webhook::idempotency::IdempotencyStore;
use paygate::webhook::ssrf::UrlPolicy;

use crate::gateway::Functions;

/// `scripts/local.sh` of this checkout.
pub fn script() -> PathBuf {
    let from_cwd = PathBuf::from("scripts/local.sh");
    if from_cwd.is_file() {
        return from_cwd;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/local.sh"))
}

/// The servers this process started; stopped again when dropped.
#[derive(Debug)]
pub struct Servers {
    started: Vec<String>,
}

impl Servers {
    /// Installs what is missing and starts what is not running already.
    pub fn start() -> Result<Self, String> {
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
        if !out.status.success() {
            return Err(format!("{} start failed ({})", script().display(), out.status));
        }
        let started = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
        Ok(Servers { started })
    }

    pub fn stop(&mut self) {
        if self.started.is_empty() {
            return;
        }
        let _ = Command::new("bash").arg(script()).arg("stop").args(&self.started).stdin(Stdio::null()).status();
        self.started.clear();
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Clients and configuration for one target, and the functions' dependencies built from them.
#[derive(Debug, Clone)]
pub struct Stack {
    pub clients: Clients,
    pub config: Config,
    /// Private and loopback webhook URLs are allowed only for local development.
    pub policy: UrlPolicy,
}

impl Stack {
    /// Real AWS, configured from the environment (table names, queue URLs).
    pub async fn aws() -> Self {
        Stack { clients: Clients::new(&Target::Aws).await, config: Config::from_env(), policy: UrlPolicy::from_env() }
    }

    /// For developer commands: AWS when the environment names it, the local servers otherwise.
    pub async fn from_env() -> Result<Self, String> {
        match Target::from_env() {
            Target::Aws => Ok(Self::aws().await),
            _ => Self::local_from_env().await,
        }
    }

    /// The local servers, with private resource names when `PAYGATE_LOCAL_SUFFIX` is set (tests
    /// that run the binaries side by side with others).
    pub async fn local_from_env() -> Result<Self, String> {
        let suffix = std::env::var("PAYGATE_LOCAL_SUFFIX").ok().filter(|s| !s.is_empty());
        Self::local(suffix.as_deref()).await
    }

    /// The local servers, with the template's tables and queues created (idempotent) under the
    /// default names, or under private names ending in `-{suffix}`.
    pub async fn local(suffix: Option<&str>) -> Result<Self, String> {
        let mut config = match suffix {
            Some(s) => Config::local_with_suffix(s),
            None => Config::local(),
        };
        let clients = Clients::new(&Target::local()).await;
        let names = config.clone();
        let provisioned = provision(&clients, &|id| names.name_of(id)).await.map_err(|e| {
            format!("cannot create the local tables and queues ({e}); are the local servers up? (`make servers`)")
        })?;
        config.delivery_queue_url = provisioned.queue_urls.get("DeliveryQueue").cloned().unwrap_or_default();
        config.delivery_dlq_url = provisioned.queue_urls.get("DeliveryDeadLetterQueue").cloned().unwrap_or_default();
        Ok(Stack { clients, config, policy: UrlPolicy::LOCAL_DEV })
    }

    pub fn events(&self) -> EventStore {
        EventStore::new(self.clients.dynamodb.clone(), &self.config.events_table, self.config.event_retention)
    }

    pub fn keys(&self) -> ApiKeyStore {
        ApiKeyStore::new(self.clients.dynamodb.clone(), &self.config.api_keys_table)
    }

    pub fn endpoints(&self) -> EndpointStore {
        EndpointStore::new(self.clients.dynamodb.clone(), &self.config.webhook_endpoints_table)
    }

    pub fn deliveries(&self) -> DeliveryStore {
        DeliveryStore::new(self.clients.dynamodb.clone(), &self.config.deliveries_table, &self.config.events_table)
    }

    pub fn fanout(&self) -> Fanout {
        Fanout {
            endpoints: self.endpoints(),
            deliveries: self.deliveries(),
            sqs: self.clients.sqs.clone(),
            queue_url: self.config.delivery_queue_url.clone(),
        }
    }

    pub fn deliverer(&self, schedule: RetrySchedule) -> Deliverer {
        Deliverer {
            events: self.events(),
            endpoints: self.endpoints(),
            deliveries: self.deliveries(),
            sqs: self.clients.sqs.clone(),
            queue_url: self.config.delivery_queue_url.clone(),
            dlq_url: self.config.delivery_dlq_url.clone(),
            http: http_client(self.policy),
            schedule,
            policy: self.policy,
        }
    }

    pub fn webhook_api(&self) -> WebhookApi {
        WebhookApi {
            endpoints: self.endpoints(),
            idempotency: IdempotencyStore::new(self.clients.dynamodb.clone(), &self.config.webhook_endpoints_table),
            deliveries: self.deliveries(),
            events: self.events(),
            fanout: self.fanout(),
            policy: self.policy,
        }
    }

    pub fn functions(&self) -> Functions {
        Functions { events: self.events(), keys: self.keys(), webhooks: self.webhook_api() }
    }
}
