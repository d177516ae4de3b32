//! What the benchmark binary and the tests share: `make capacity`'s model, and how a benchmark
//! watches a stack's DynamoDB requests.

pub mod capacity;

use aws_sdk_dynamodb::config::Intercept;
use paygate_cli::stack::Stack;

/// Puts `interceptor` on the stack's DynamoDB client; stores built afterwards share it.
pub fn intercept(stack: &mut Stack, interceptor: impl Intercept + 'static) {
    let config = stack.clients.dynamodb.config().to_builder().interceptor(interceptor).build();
    stack.deps.clients.dynamodb = aws_sdk_dynamodb::Client::from_conf(config);
}
