//! HTTP API Lambda authorizer: `Authorization: Bearer sk_…` → account and mode. Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::auth::{ApiKeyStore, authorize};
use paygate::aws::{Clients, Target};
use paygate::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let config = Config::from_env();
    let clients = Clients::new(&Target::Aws).await;
    let keys = ApiKeyStore::new(clients.dynamodb, config.api_keys_table);
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let keys = &keys;
        async move { authorize(keys, &event.payload).await.map_err(Error::from) }
    }))
    .await
}
