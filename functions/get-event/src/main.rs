//! `GET /v1/events/{id}` behind API Gateway (HTTP API, payload 2.0). Wiring only.

use std::convert::Infallible;

use lambda_http::{Error, Request, service_fn};
use paygate::api::get_event;
use paygate::aws::{Clients, Target};
use paygate::config::Config;
use paygate::store::EventStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let config = Config::from_env();
    let clients = Clients::new(&Target::Aws).await;
    let store = EventStore::new(clients.dynamodb, config.events_table, config.event_retention);
    lambda_http::run(service_fn(|req: Request| {
        let store = &store;
        async move { Ok::<_, Infallible>(get_event(store, req).await) }
    }))
    .await
}
