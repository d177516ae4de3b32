//! The Events table's stream (INSERT) → one SQS message per (event, subscribed endpoint). Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::aws::{Clients, Target};
use paygate::config::Config;
use paygate::webhook::deliveries::DeliveryStore;
use paygate::webhook::endpoints::EndpointStore;
use paygate::webhook::fanout::Fanout;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let config = Config::from_env();
    let clients = Clients::new(&Target::Aws).await;
    let fanout = Fanout {
        endpoints: EndpointStore::new(clients.dynamodb.clone(), &config.webhook_endpoints_table),
        deliveries: DeliveryStore::new(clients.dynamodb, &config.deliveries_table, &config.events_table),
        sqs: clients.sqs,
        queue_url: config.delivery_queue_url,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<aws_lambda_events::dynamodb::Event>| {
        let fanout = &fanout;
        async move { Ok::<_, Error>(fanout.handle(event.payload).await) }
    }))
    .await
}
