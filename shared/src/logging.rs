//! JSON logs for every function (`tracing`); level from `RUST_LOG` (`info`, `paygate=debug,warn`…)
//! or `AWS_LAMBDA_LOG_LEVEL`. Directives name targets and levels only (`filter::Targets`): no
//! regular-expression engine in the Lambdas.

use tracing_subscriber::filter::{LevelFilter, Targets};

/// The filter for `RUST_LOG`, else for Lambda's `AWS_LAMBDA_LOG_LEVEL` (its `FATAL` is `error`),
/// else `info`. A value that does not parse is `info`.
fn filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> Targets {
    let spec = match (rust_log.filter(|s| !s.trim().is_empty()), lambda_level) {
        (Some(s), _) => s.to_owned(),
        (None, Some(l)) if l.eq_ignore_ascii_case("fatal") => "error".to_owned(),
        (None, Some(l)) => l.to_lowercase(),
        (None, None) => "info".to_owned(),
    };
    spec.parse().unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO))
}

/// Installs the JSON log subscriber once; later calls do nothing.
pub fn init() {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref(), std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref());
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let format = tracing_subscriber::fmt::layer()
        .json()
        // The current span's fields: the Lambda request id, and event and endpoint ids where there are.
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = tracing_subscriber::registry().with(format).with(filter).try_init();
}

#[cfg(test)]
mod tests {
    use super::filter;
    use tracing_subscriber::filter::LevelFilter;

    #[test]
    fn levels_come_from_rust_log_then_lambda() {
        assert_eq!(filter(None, None).default_level(), Some(LevelFilter::INFO));
        assert_eq!(filter(Some("warn"), Some("DEBUG")).default_level(), Some(LevelFilter::WARN));
        assert_eq!(filter(None, Some("DEBUG")).default_level(), Some(LevelFilter::DEBUG));
        assert_eq!(filter(None, Some("FATAL")).default_level(), Some(LevelFilter::ERROR));
        assert_eq!(filter(Some("paygate=loud"), None).default_level(), Some(LevelFilter::INFO), "an unknown level");
        let targets = filter(Some("paygate=debug,warn"), None);
        assert!(targets.would_enable("paygate::webhook", &tracing::Level::DEBUG));
        assert!(!targets.would_enable("hyper", &tracing::Level::INFO));
    }
}
