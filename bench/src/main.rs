//! `make bench` (through `scripts/bench.sh`, which builds the release binaries and arm64 zips it
//! reads): every row of the performance table, each against a baseline taken in this run, printed
//! as one table and written to `target/bench/`. Runs on a DynamoDB Local of its own, fresh for each
//! run (`PAYGATE_BENCH_DYNAMODB_URL`, which the script starts and stops: a server that has served
//! the tests for hours is slower), and the local SQS server. The large account is seeded last:
//! DynamoDB Local slows down 30-60× for stream-enabled tables created after it has stored ~100k
//! stream records.
//!
//!     scripts/bench.sh                       # everything
//!     scripts/bench.sh api delivery          # only some groups: api limits list delivery latency isolation cold size
//!     scripts/capacity.sh                    # make capacity: paygate-bench capacity (bench/src/capacity)

mod api;
mod cold;
mod delivery;
mod isolation;
mod latency;
mod limits;
mod list;
mod measure;
mod report;
mod size;

use paygate::aws::Target;
use paygate_cli::stack::Stack;

const GROUPS: &[&str] = &["api", "limits", "delivery", "latency", "isolation", "cold", "size", "list"];

/// The local servers, with the benchmark's own DynamoDB Local.
fn target() -> Target {
    let Target::Local { sqs, .. } = Target::local() else { unreachable!("Target::local is local") };
    let dynamodb = std::env::var("PAYGATE_BENCH_DYNAMODB_URL").unwrap_or_else(|_| "http://127.0.0.1:8011".to_owned());
    Target::Local { dynamodb, sqs }
}

/// A private set of tables and queues, without per-account rate limits (the benchmarks send one
/// account's requests as fast as they go; the `api` group measures the limiter's cost by itself).
async fn stack() -> anyhow::Result<Stack> {
    let mut stack = Stack::local_on(&target(), Some(&format!("bench{}", ulid::Ulid::generate().to_string().to_lowercase()))).await?;
    stack.deps.config.rate_limits = paygate::http::rate_limit::RateLimits { live: 0, test: 0, ..Default::default() };
    Ok(stack)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let asked: Vec<String> = std::env::args().skip(1).collect();
    if asked.first().map(String::as_str) == Some("capacity") {
        return capacity().await;
    }
    if let Some(unknown) = asked.iter().find(|a| !GROUPS.contains(&a.as_str())) {
        anyhow::bail!("unknown group {unknown:?}; the groups are {}", GROUPS.join(", "));
    }
    let wanted = |g: &str| asked.is_empty() || asked.iter().any(|a| a == g);
    let mut rows = Vec::new();
    for group in GROUPS.iter().filter(|g| wanted(g)) {
        println!("{group}…");
        let started = std::time::Instant::now();
        rows.extend(match *group {
            "api" => api::run(stack().await?).await?,
            "limits" => limits::run(stack().await?).await?,
            "delivery" => delivery::run(stack().await?).await?,
            "latency" => latency::run(stack().await?).await?,
            "isolation" => isolation::run(stack().await?).await?,
            "cold" => cold::run(stack().await?).await?,
            "size" => size::run()?,
            "list" => list::run(stack().await?).await?,
            _ => unreachable!("checked above"),
        });
        println!("  {group}: {:.0} s", started.elapsed().as_secs_f64());
    }
    report::publish(&rows, &measure::target_dir().join("bench"))
}

/// `make capacity`: the workload with each endpoint count on a fresh stack, then the report,
/// printed and written to `target/capacity/` and the README.
async fn capacity() -> anyhow::Result<()> {
    use paygate_bench::capacity;
    let mut runs = Vec::new();
    for n in capacity::ENDPOINT_COUNTS {
        println!("capacity: one merchant, {n} endpoints, {} events…", capacity::EVENTS);
        runs.push(capacity::workload::measure(stack().await?, Some(stack().await?), n, capacity::EVENTS).await?);
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let report = capacity::report(&runs, &std::fs::read_to_string(root.join("template.yaml"))?)?;
    println!("{}", capacity::markdown(&report));
    capacity::publish(&report, &measure::target_dir().join("capacity"), &root.join("README.md"))
}
