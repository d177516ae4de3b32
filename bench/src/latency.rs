//! `paygate trigger` → receiver: an event published as `trigger` publishes it (ringing the pollers'
//! doorbell), carried by the local pollers `paygate dev` runs (stream → fan-out → queue → delivery) to a receiver that verifies it,
//! against one raw PutItem on the same DynamoDB Local; and what those pollers cost when idle, against
//! the same servers with no poller running.

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use paygate::store::endpoints::Created;
use paygate::webhook::deliver::RetrySchedule;
use paygate::webhook::endpoints::{EnabledEvents, new_endpoint};
use paygate::{AccountId, EventType, Mode, Principal};
use paygate_cli::commands::publish_fixture;
use paygate_cli::stack::Stack;
use tokio::sync::mpsc;

use crate::measure::{Receiver, cpu_of, median, ms, process_cpu};
use crate::report::{Row, Target};

const SAMPLES: usize = 40;
/// Idle time measured, with and without the pollers.
const IDLE: Duration = Duration::from_secs(6);

/// This process's and each local server's CPU over `IDLE`, as percentages of one core: (total,
/// "this process x %, dynamodb y %, sqs z %").
async fn idle_cpu(servers: &[(&'static str, u32)]) -> (f64, String) {
    let sample = || {
        let mut v = vec![("this process", process_cpu())];
        v.extend(servers.iter().map(|(name, pid)| (*name, cpu_of(*pid).unwrap_or_default())));
        v
    };
    let before = sample();
    tokio::time::sleep(IDLE).await;
    let used: Vec<(&str, f64)> =
        sample().iter().zip(&before).map(|((name, after), (_, before))| (*name, 100.0 * (*after - *before).as_secs_f64() / IDLE.as_secs_f64())).collect();
    let total = used.iter().map(|(_, p)| p).sum();
    (total, used.iter().map(|(n, p)| format!("{n} {p:.1} %")).collect::<Vec<_>>().join(", "))
}

/// The pids `scripts/local.sh` recorded for the servers this benchmark uses.
fn server_pids() -> Vec<(&'static str, u32)> {
    let run = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/run"));
    ["dynamodb-bench", "sqs"].into_iter().filter_map(|n| Some((n, std::fs::read_to_string(run.join(format!("{n}.pid"))).ok()?.trim().parse().ok()?))).collect()
}

pub async fn run(stack: Stack) -> anyhow::Result<Vec<Row>> {
    let servers = server_pids();

    let p = Principal { account: AccountId::generate(), mode: Mode::Test };
    let (seen, mut delivered) = mpsc::unbounded_channel();
    let receiver = Receiver::bind().await?;
    let ep = new_endpoint(Mode::Test, receiver.url.parse()?, EnabledEvents::All, None);
    receiver.serve(ep.secret.expose().to_owned(), Duration::ZERO, seen);
    anyhow::ensure!(stack.endpoints().create(&p, &ep).await? == Created::Created, "could not create the endpoint");
    // A fresh table: read its stream from the start, as `paygate dev` does for its new tables.
    let pollers = paygate_cli::pollers::start(&stack, stack.deliverer(RetrySchedule::default()), true).await?;
    let publisher = stack.publisher();

    // Until one event arrives: the pollers are reading.
    let first = publish_fixture(&publisher, &p, EventType::PaymentSucceeded, Default::default()).await?;
    tokio::time::timeout(Duration::from_secs(60), async { while delivered.recv().await.as_deref() != Some(first.id.to_string().as_str()) {} }).await?;

    let (dynamodb, table) = (stack.clients.dynamodb.clone(), stack.config.webhook_endpoints_table.clone());
    let (mut latencies, mut puts) = (Vec::new(), Vec::new());
    for i in 0..SAMPLES {
        // A different phase of the pollers' loops each time.
        tokio::time::sleep(Duration::from_millis(50 + (i as u64 * 37) % 200)).await;
        let start = Instant::now();
        let event = publish_fixture(&publisher, &p, EventType::PaymentSucceeded, Default::default()).await?;
        let id = event.id.to_string();
        tokio::time::timeout(Duration::from_secs(60), async { while delivered.recv().await.as_deref() != Some(id.as_str()) {} }).await?;
        latencies.push(start.elapsed());

        let start = Instant::now();
        dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(format!("bench#{}", p.account)))
            .item("id", AttributeValue::S(format!("put#{i}")))
            .item("payload", AttributeValue::S("x".repeat(400)))
            .send()
            .await?;
        puts.push(start.elapsed());
    }
    // Quiet again, with the pollers running.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle_with, with) = idle_cpu(&servers).await;
    // The same servers with no poller (measured after, so a server that has just started up is
    // not counted in the baseline).
    drop(pollers);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle_without, without) = idle_cpu(&servers).await;
    Ok(vec![
        Row::new(
            "trigger → receiver p50, `paygate dev` pollers",
            ms(median(&latencies)),
            "ms",
            Some(("one raw PutItem", ms(median(&puts)))),
            Target::AtMost(40.0),
            format!("{SAMPLES} events, each after a pause of 50-250 ms so the pollers are caught at every point of their loops"),
        ),
        Row::new(
            "CPU at idle, pollers running (% of one core)",
            idle_with,
            "%",
            Some(("no poller", idle_without)),
            Target::AboveBaselineAtMost(2.0),
            format!("over {} s each; with the pollers: {with}; without: {without}", IDLE.as_secs()),
        ),
    ])
}
