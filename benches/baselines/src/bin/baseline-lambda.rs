//! Baseline: the lambda-hello example's handler on a bare `lambda_runtime` hello, as
//! its README writes one: `#[tokio::main]` and `lambda_runtime::run`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "greeting": "hello", "echo": event.payload }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(echo)).await
}
