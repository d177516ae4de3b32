//! JSON logs for every function (`tracing`); level from `RUST_LOG` or `AWS_LAMBDA_LOG_LEVEL`.

use tracing_subscriber::EnvFilter;

/// Installs the JSON log subscriber once; later calls do nothing.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level.to_lowercase()));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        // The current span's fields: the Lambda request id, and event and endpoint ids where there are.
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}
