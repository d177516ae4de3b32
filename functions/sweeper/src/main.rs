//! The scheduled sweeper (EventBridge, every minute): re-enqueues pending deliveries that nothing
//! touched in time. Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::wiring::Deps;

// One invocation at a time per instance, on a vCPU or less: one thread runs it all, and no worker
// threads are started at a cold start (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let sweeper = Deps::from_env().await.sweeper();
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| {
        let sweeper = &sweeper;
        async move { Ok::<_, Error>(serde_json::json!({ "enqueued": sweeper.sweep().await? })) }
    }))
    .await
}
