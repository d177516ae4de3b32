//! Event ingestion for other services: invoked with `{account_id, mode, type, data, request}`,
//! returns the stored event. Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::aws::{Clients, Target};
use paygate::config::Config;
use paygate::ingest::handle;
use paygate::store::EventStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let config = Config::from_env();
    let clients = Clients::new(&Target::Aws).await;
    let store = EventStore::new(clients.dynamodb, config.events_table, config.event_retention);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let store = &store;
        async move { handle(store, event.payload).await.map_err(Error::from) }
    }))
    .await
}
