//! SQS batches → signed webhook POSTs with retries and backoff. Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::webhook::breaker::BreakerConfig;
use paygate::webhook::deliver::RetrySchedule;
use paygate::wiring::Deps;

// One invocation at a time per instance, on a vCPU or less: one thread runs it all, and no worker
// threads are started at a cold start (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let mut deliverer = Deps::from_env().await.deliverer(RetrySchedule::from_env()?);
    deliverer.breaker = BreakerConfig::from_env()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| {
        let deliverer = &deliverer;
        async move { Ok::<_, Error>(deliverer.handle(event.payload).await) }
    }))
    .await
}
