//! The scheduled sweeper (EventBridge, every minute): for most of that minute, enqueues every
//! pending delivery whose time has come (retries, and whatever the stream or the queue lost). Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::time::Duration;

use paygate::webhook::sweeper::RUN_FOR;
use paygate::wiring::Deps;

// One invocation at a time per instance, on a vCPU or less: one thread runs it all, and no worker
// threads are started at a cold start (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let sweeper = Deps::from_env().await.sweeper();
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let sweeper = &sweeper;
        async move {
            // Until RUN_FOR has passed, or 5 s before the invocation's deadline if that is sooner.
            let left = event.context.deadline().duration_since(std::time::SystemTime::now()).unwrap_or_default();
            let until = tokio::time::Instant::now() + RUN_FOR.min(left.saturating_sub(Duration::from_secs(5)));
            Ok::<_, Error>(serde_json::json!({ "enqueued": sweeper.run_until(until).await? }))
        }
    }))
    .await
}
