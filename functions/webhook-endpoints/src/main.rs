//! The webhook API behind API Gateway: endpoints (create, list, retrieve, update, delete, rotate
//! the secret, resend an event) and `GET /v1/events/{id}/deliveries`. Wiring only.

use std::convert::Infallible;

use lambda_http::{Error, Request, service_fn};
use paygate::wiring::Deps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let api = Deps::from_env().await.webhook_api();
    lambda_http::run(service_fn(|req: Request| {
        let api = &api;
        async move { Ok::<_, Infallible>(api.handle(req).await) }
    }))
    .await
}
