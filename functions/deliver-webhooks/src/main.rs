//! SQS batches → signed webhook POSTs with retries and backoff. Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::aws::{Clients, Target};
use paygate::config::Config;
use paygate::store::EventStore;
use paygate::webhook::deliver::{Deliverer, RetrySchedule, http_client};
use paygate::webhook::deliveries::DeliveryStore;
use paygate::webhook::endpoints::EndpointStore;
use paygate::webhook::ssrf::UrlPolicy;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let config = Config::from_env();
    let clients = Clients::new(&Target::Aws).await;
    let policy = UrlPolicy::from_env();
    let deliverer = Deliverer {
        events: EventStore::new(clients.dynamodb.clone(), &config.events_table, config.event_retention),
        endpoints: EndpointStore::new(clients.dynamodb.clone(), &config.webhook_endpoints_table),
        deliveries: DeliveryStore::new(clients.dynamodb, &config.deliveries_table, &config.events_table),
        sqs: clients.sqs,
        queue_url: config.delivery_queue_url,
        dlq_url: config.delivery_dlq_url,
        http: http_client(policy),
        schedule: RetrySchedule::from_env()?,
        policy,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| {
        let deliverer = &deliverer;
        async move { Ok::<_, Error>(deliverer.handle(event.payload).await) }
    }))
    .await
}
