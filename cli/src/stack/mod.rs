//! The local stack: the servers (through `scripts/local.sh`, the one place that installs and starts
//! them), their tables and queues, and every function's dependencies built from one configuration.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use paygate::aws::{Clients, Target};
use paygate::config::Config;
use paygate::webhook::ssrf::UrlPolicy;
use paygate::wiring::Deps;
use provision::provision;

use crate::gateway::Functions;

pub mod provision;

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
    pub fn start() -> anyhow::Result<Self> {
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run {}", script().display()))?;
        if !out.status.success() {
            return Err(anyhow::anyhow!("{} start failed ({})", script().display(), out.status));
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

/// The functions' dependencies ([`Deps`]) for one target; `Deref`s to them.
#[derive(Debug, Clone)]
pub struct Stack {
    pub deps: Deps,
}

impl std::ops::Deref for Stack {
    type Target = Deps;
    fn deref(&self) -> &Deps {
        &self.deps
    }
}

impl std::ops::DerefMut for Stack {
    fn deref_mut(&mut self) -> &mut Deps {
        &mut self.deps
    }
}

impl Stack {
    /// Real AWS, configured from the environment (table names, queue URLs).
    pub async fn aws() -> Self {
        Stack { deps: Deps::from_env().await }
    }

    /// For developer commands: AWS when the environment names it, the local servers otherwise.
    pub async fn from_env() -> anyhow::Result<Self> {
        match Target::from_env() {
            Target::Aws => Ok(Self::aws().await),
            _ => Self::local_from_env().await,
        }
    }

    /// The local servers, with private resource names when `PAYGATE_LOCAL_SUFFIX` is set (tests
    /// that run the binaries side by side with others).
    pub async fn local_from_env() -> anyhow::Result<Self> {
        let suffix = std::env::var("PAYGATE_LOCAL_SUFFIX").ok().filter(|s| !s.is_empty());
        Self::local(suffix.as_deref()).await
    }

    /// The local servers, with the template's tables and queues created (idempotent) under the
    /// default names, or under private names ending in `-{suffix}`.
    pub async fn local(suffix: Option<&str>) -> anyhow::Result<Self> {
        Self::local_on(&Target::local(), suffix).await
    }

    /// [`Stack::local`] on servers at other addresses (tests put fault proxies in front of them).
    /// `PAYGATE_REDRIVE_AFTER_SECONDS`, `PAYGATE_RATE_LIMIT_LIVE`/`_TEST` and
    /// `PAYGATE_ALLOW_PRIVATE_WEBHOOK_URLS=false` apply here too.
    pub async fn local_on(target: &Target, suffix: Option<&str>) -> anyhow::Result<Self> {
        let mut config = match suffix {
            Some(s) => Config::local_with_suffix(s),
            None => Config::local(),
        };
        let env = Config::from_env();
        config.redrive_after = env.redrive_after;
        config.rate_limits = env.rate_limits;
        let clients = Clients::new(target).await;
        let mut stack = Stack { deps: Deps { clients, config, policy: UrlPolicy::local_from_env() } };
        let provisioned = stack.provision().await?;
        stack.config.delivery_queue_url = provisioned.queue_urls.get("DeliveryQueue").cloned().unwrap_or_default();
        stack.config.delivery_dlq_url = provisioned.queue_urls.get("DeliveryDeadLetterQueue").cloned().unwrap_or_default();
        stack.config.slow_delivery_queue_url = provisioned.queue_urls.get("SlowDeliveryQueue").cloned().unwrap_or_default();
        stack.config.fanout_failure_queue_url = provisioned.queue_urls.get("FanoutFailureQueue").cloned().unwrap_or_default();
        Ok(stack)
    }

    /// Creates the template's tables and queues under this stack's names, where missing (idempotent).
    pub async fn provision(&self) -> anyhow::Result<provision::Provisioned> {
        let names = &self.config;
        provision(&self.clients, &|id| names.name_of(id)).await.map_err(|e| {
            anyhow::anyhow!("cannot create the local tables and queues ({e})\nhint: are the local servers up? `make servers` starts them (`make dev` does too)")
        })
    }

    /// The stack `make deploy-local` deployed on the AWS emulator: its endpoint, table names and
    /// queue URLs as the deploy read them from the stack's resources (`.tools/deploy-local/env`).
    pub async fn deployed_local() -> anyhow::Result<Self> {
        let path = script().parent().and_then(Path::parent).map(|root| root.join(".tools/deploy-local/env")).unwrap_or_default();
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}: run `make deploy-local` first", path.display()))?;
        let vars = parse_exports(&text);
        let endpoint = vars.get("AWS_ENDPOINT_URL").cloned().with_context(|| format!("{}: no AWS_ENDPOINT_URL", path.display()))?;
        let config = Config::from_lookup(|k| vars.get(k).cloned());
        let policy = UrlPolicy::deployed(vars.get("PAYGATE_ALLOW_PRIVATE_WEBHOOK_URLS").map(String::as_str));
        let credential = |k: &str| vars.get(k).cloned().with_context(|| format!("{}: no {k}", path.display()));
        let target = Target::Emulator { endpoint, access_key_id: credential("AWS_ACCESS_KEY_ID")?, secret_access_key: credential("AWS_SECRET_ACCESS_KEY")? };
        let clients = Clients::new(&target).await;
        Ok(Stack { deps: Deps { clients, config, policy } })
    }

    pub fn functions(&self) -> Functions {
        Functions { api: std::sync::Arc::new(self.api()) }
    }
}

/// `export A=1 B=2  # comment` lines → their assignments.
fn parse_exports(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .flat_map(|l| l.split('#').next().unwrap_or_default().split_whitespace())
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn exports_are_read_as_the_shell_would() {
        let vars = super::parse_exports("export A=1\nexport B=2 C=http://x:1/y  # why\n# export D=4\nE=5\n");
        assert_eq!(vars.len(), 3);
        assert_eq!(vars["C"], "http://x:1/y");
    }
}
