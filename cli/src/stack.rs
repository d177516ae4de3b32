//! The local stack: the servers (through `scripts/local.sh`, the one place that installs and starts
//! them), their tables and queues, and the demo account.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use paygate::auth::ApiKeyStore;
use paygate::aws::{Clients, Target};
use paygate::config::Config;
use paygate::local::{Provisioned, default_name, provision};
use paygate::store::EventStore;

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
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .args(&self.started)
            .stdin(Stdio::null())
            .status();
        self.started.clear();
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Clients, configuration and the functions' dependencies for one target.
#[derive(Debug, Clone)]
pub struct Stack {
    pub clients: Clients,
    pub config: Config,
}

impl Stack {
    pub async fn new(target: &Target) -> Self {
        let config = if *target == Target::Aws { Config::from_env() } else { Config::local() };
        Stack { clients: Clients::new(target).await, config }
    }

    /// Creates the template's tables and queues on the local servers (idempotent).
    pub async fn provision(&self) -> Result<Provisioned, String> {
        provision(&self.clients, &default_name).await.map_err(|e| e.to_string())
    }

    pub fn events(&self) -> EventStore {
        EventStore::new(self.clients.dynamodb.clone(), &self.config.events_table, self.config.event_retention)
    }

    pub fn keys(&self) -> ApiKeyStore {
        ApiKeyStore::new(self.clients.dynamodb.clone(), &self.config.api_keys_table)
    }

    pub fn functions(&self) -> Functions {
        Functions { events: self.events(), keys: self.keys() }
    }
}
