//! The webhook API behind API Gateway: endpoints (create, list, retrieve, update, delete, rotate
//! the secret, resend an event) and `GET /v1/events/{id}/deliveries`. Wiring only.

use std::convert::Infallible;

use lambda_http::{Error, Request, service_fn};
use paygate::aws::{Clients, Target};
use paygate::config::Config;
use paygate::store::EventStore;
use paygate::webhook::api::WebhookApi;
use paygate::webhook::deliveries::DeliveryStore;
use paygate::webhook::endpoints::EndpointStore;
use paygate::webhook::fanout::Fanout;
use paygate::webhook::idempotency::IdempotencyStore;
use paygate::webhook::ssrf::UrlPolicy;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let config = Config::from_env();
    let clients = Clients::new(&Target::Aws).await;
    let ddb = clients.dynamodb;
    let endpoints = EndpointStore::new(ddb.clone(), &config.webhook_endpoints_table);
    let deliveries = DeliveryStore::new(ddb.clone(), &config.deliveries_table, &config.events_table);
    let api = WebhookApi {
        endpoints: endpoints.clone(),
        idempotency: IdempotencyStore::new(ddb.clone(), &config.webhook_endpoints_table),
        deliveries: deliveries.clone(),
        events: EventStore::new(ddb, &config.events_table, config.event_retention),
        fanout: Fanout { endpoints, deliveries, sqs: clients.sqs, queue_url: config.delivery_queue_url },
        policy: UrlPolicy::from_env(),
    };
    lambda_http::run(service_fn(|req: Request| {
        let api = &api;
        async move { Ok::<_, Infallible>(api.handle(req).await) }
    }))
    .await
}
