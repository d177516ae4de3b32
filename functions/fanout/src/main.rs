//! The Events table's stream (INSERT) → one SQS message per (event, subscribed endpoint). Wiring only.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use paygate::wiring::Deps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    paygate::logging::init();
    let fanout = Deps::from_env().await.fanout();
    lambda_runtime::run(service_fn(|event: LambdaEvent<aws_lambda_events::dynamodb::Event>| {
        let fanout = &fanout;
        async move { Ok::<_, Error>(fanout.handle(event.payload).await) }
    }))
    .await
}
