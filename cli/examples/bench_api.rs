//! Benchmark: `GET /v1/events/{id}` through `paygate dev`'s HTTP API (the router every HTTP Lambda
//! runs, with authentication as the deployed stack does it), against a baseline taken in the same
//! run: one raw GetItem of the same item on the same DynamoDB Local, with the same SDK client.
//! Blocks of each alternate, so both see the same machine. Prints p50 and p95 of both and the
//! ratio of the p50s (machines here are noisy; the ratio is what to read). Needs the local servers
//! (`make servers`).
//!
//!     cargo run --release -p paygate-cli --example bench_api

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use paygate::ingest::{DataObject, IngestData, IngestRequest};
use paygate::{EventType, Mode, Principal};
use paygate_cli::stack::Stack;

/// Requests of each kind, in blocks of [`BLOCK`], after [`WARMUP`] of each.
const REQUESTS: usize = 2000;
const BLOCK: usize = 100;
const WARMUP: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = Stack::local(Some(&format!("bench{}", ulid::Ulid::generate().to_string().to_lowercase()))).await?;
    let account = stack.keys().create_account().await?;
    let p = Principal { account: account.account_id.clone(), mode: Mode::Test };
    let input = IngestRequest {
        account_id: p.account.clone(),
        mode: p.mode,
        event_type: EventType::PaymentSucceeded,
        data: IngestData { object: DataObject::parse(serde_json::json!({"id": "pay_bench", "object": "payment", "amount": 5000})).map_err(anyhow::Error::msg)? },
        request: Default::default(),
    };
    let event = stack.publisher().publish(input).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1/events/{}", listener.local_addr()?, event.id);
    let functions = stack.functions();
    tokio::spawn(async move { paygate_cli::gateway::serve(listener, functions, std::future::pending()).await });
    let http = reqwest::Client::new();
    let key = account.test_key.expose().to_owned();
    let api = || async {
        let start = Instant::now();
        let r = http.get(&url).bearer_auth(&key).send().await.expect("GET");
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("body");
        start.elapsed()
    };
    let dynamodb = stack.clients.dynamodb.clone();
    let table = stack.config.events_table.clone();
    let raw = || async {
        let start = Instant::now();
        let out = dynamodb
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(p.partition()))
            .key("id", AttributeValue::S(event.id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem");
        assert!(out.item.is_some());
        start.elapsed()
    };

    for _ in 0..WARMUP {
        api().await;
        raw().await;
    }
    let (mut through_api, mut baseline) = (Vec::new(), Vec::new());
    while through_api.len() < REQUESTS {
        for _ in 0..BLOCK {
            through_api.push(api().await);
        }
        for _ in 0..BLOCK {
            baseline.push(raw().await);
        }
    }
    through_api.sort();
    baseline.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("GET /v1/events/{{id}}, {REQUESTS} requests each, alternating blocks of {BLOCK}:");
    println!("  baseline, one raw GetItem:   p50 {:>6.3} ms   p95 {:>6.3} ms", ms(percentile(&baseline, 0.5)), ms(percentile(&baseline, 0.95)));
    println!("  through the HTTP API:        p50 {:>6.3} ms   p95 {:>6.3} ms", ms(percentile(&through_api, 0.5)), ms(percentile(&through_api, 0.95)));
    println!("  ratio (p50): {:.2}x", percentile(&through_api, 0.5).as_secs_f64() / percentile(&baseline, 0.5).as_secs_f64());
    Ok(())
}
