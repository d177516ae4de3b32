//! `GET /v1/events/{id}` behind API Gateway (HTTP API, payload 2.0). Wiring only.

use std::convert::Infallible;

use lambda_http::{Error, Request, service_fn};
use paygate::api::get_event;
use paygate::wiring::Deps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let store = Deps::from_env().await.events();
    lambda_http::run(service_fn(|req: Request| {
        let store = &store;
        async move { Ok::<_, Infallible>(get_event(store, req).await) }
    }))
    .await
}
