//! Event ingestion for other services: invoked with `{account_id, mode, type, data, request}`,
//! returns the stored event. Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::ingest::handle;
use paygate::wiring::Deps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let store = Deps::from_env().await.events();
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let store = &store;
        async move { handle(store, event.payload).await.map_err(Error::from) }
    }))
    .await
}
