//! The baseline of the cold-start, memory and size rows: the smallest useful lambda_runtime
//! function (it echoes its event), built in the same run with the same profile as ours.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move { Ok::<_, Error>(event.payload) })).await
}
