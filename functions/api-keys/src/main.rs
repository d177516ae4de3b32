//! `/v1/api_keys` (list, create a restricted key, roll, revoke) behind API Gateway (HTTP API,
//! payload 2.0): this function's routes of `paygate::http`'s router, the only function that may
//! write keys. Wiring only.

use std::sync::Arc;

use lambda_http::Error;
use paygate::http::{Function, lambda};
use paygate::wiring::Deps;

// One invocation at a time per instance, on a vCPU or less: one thread runs it all, and no worker
// threads are started at a cold start (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let api = Arc::new(Deps::from_env().await.api());
    lambda_http::run(lambda(api, Function::ApiKeys)).await
}
