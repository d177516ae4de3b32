//! HTTP API Lambda authorizer: `Authorization: Bearer sk_…` → account and mode. Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::auth::authorize;
use paygate::wiring::Deps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let keys = Deps::from_env().await.keys();
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        let keys = &keys;
        async move { Ok::<_, Error>(authorize(keys, &event.payload).await) }
    }))
    .await
}
