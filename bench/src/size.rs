//! Zipped arm64 bootstraps, as Lambda receives them: `scripts/bench.sh` builds every function and
//! `hello-lambda` with `cargo lambda build --release --arm64 --output-format zip`; this reads the
//! zips it left in `target/lambda/`.

use crate::measure::target_dir;
use crate::report::{Row, Target};

pub const FUNCTIONS: &[&str] =
    &["get-event", "list-events", "webhook-endpoints", "api-keys", "ingest-event", "fanout", "deliver-webhooks", "sweeper", "dashboard"];

fn zipped_mib(name: &str) -> anyhow::Result<f64> {
    let path = target_dir().join("lambda").join(name).join("bootstrap.zip");
    let bytes = std::fs::metadata(&path).map_err(|e| anyhow::anyhow!("{}: {e} (scripts/bench.sh builds it)", path.display()))?.len();
    Ok(bytes as f64 / (1024.0 * 1024.0))
}

pub fn run() -> anyhow::Result<Vec<Row>> {
    let hello = zipped_mib("hello-lambda")?;
    FUNCTIONS
        .iter()
        .map(|f| Ok(Row::new(format!("zipped arm64 bootstrap, {f}"), zipped_mib(f)?, "MiB", Some(("hello-lambda", hello)), Target::AtMost(3.0), "")))
        .collect()
}
