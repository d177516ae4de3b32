//! The Events table's stream (INSERT) → one SQS message per (event, subscribed endpoint). Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::wiring::Deps;

// One invocation at a time per instance, on a vCPU or less: one thread runs it all, and no worker
// threads are started at a cold start (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let fanout = Deps::from_env().await.fanout();
    lambda_runtime::run(service_fn(|event: LambdaEvent<aws_lambda_events::dynamodb::Event>| {
        let fanout = &fanout;
        async move { Ok::<_, Error>(fanout.handle(event.payload).await) }
    }))
    .await
}
