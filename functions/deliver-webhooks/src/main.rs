//! SQS batches → signed webhook POSTs with retries and backoff. Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::webhook::deliver::RetrySchedule;
use paygate::wiring::Deps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let deliverer = Deps::from_env().await.deliverer(RetrySchedule::from_env()?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| {
        let deliverer = &deliverer;
        async move { Ok::<_, Error>(deliverer.handle(event.payload).await) }
    }))
    .await
}
