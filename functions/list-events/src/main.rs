//! `GET /v1/events` behind API Gateway (HTTP API, payload 2.0). Wiring only.

use std::convert::Infallible;

use lambda_http::{Error, Request, service_fn};
use paygate::api::list_events_handler;
use paygate::wiring::Deps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let store = Deps::from_env().await.events();
    lambda_http::run(service_fn(|req: Request| {
        let store = &store;
        async move { Ok::<_, Infallible>(list_events_handler(store, req).await) }
    }))
    .await
}
