//! `GET /dashboard` and `/dashboard/{proxy+}` behind API Gateway, outside any key check: the
//! dashboard's static page, which then calls the public API with the key its user pastes. Wiring only.

use lambda_http::Error;
use paygate::http::lambda_service;

// One invocation at a time per instance, on a vCPU or less: one thread runs it all, and no worker
// threads are started at a cold start (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    lambda_http::run(lambda_service(paygate_dashboard::router())).await
}
