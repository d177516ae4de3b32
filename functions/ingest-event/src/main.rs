//! Event ingestion for other services: invoked with `{account_id, mode, type, data, request}`,
//! returns the stored event. Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::wiring::Deps;

// One invocation at a time per instance, on a vCPU or less: one thread runs it all, and no worker
// threads are started at a cold start (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let publisher = Deps::from_env().await.publisher();
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let publisher = &publisher;
        async move { publisher.handle(event.payload).await.map_err(Error::from) }
    }))
    .await
}
