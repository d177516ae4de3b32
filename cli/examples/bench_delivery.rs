//! Benchmark: one SQS batch of 10 deliveries to 10 receivers that each take 300 ms, delivered as
//! `deliver-webhooks` does (concurrently), against a baseline taken in the same run: the same 10
//! deliveries one message at a time. Prints both and their ratio (machines here are noisy; the
//! ratio is what to read). Needs the local servers (`make servers`).
//!
//!     cargo run --release -p paygate-cli --example bench_delivery

use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use axum::http::StatusCode;
use paygate::webhook::deliver::RetrySchedule;
use paygate::webhook::endpoints::{EnabledEvents, new_endpoint};
use paygate::webhook::fanout::DeliveryMessage;
use paygate::ingest::{DataObject, IngestData, IngestRequest};
use paygate::{AccountId, EventType, Mode, Principal};
use paygate_cli::stack::Stack;

const RECEIVERS: usize = 10;
const RECEIVER_DELAY: Duration = Duration::from_millis(300);
const ROUNDS: usize = 3;

async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/webhooks",
        axum::routing::post(|| async {
            tokio::time::sleep(RECEIVER_DELAY).await;
            StatusCode::OK
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn message(m: &DeliveryMessage, i: usize) -> SqsMessage {
    let mut s = SqsMessage::default();
    s.message_id = Some(format!("bench-{i}"));
    s.body = Some(serde_json::to_string(m).unwrap());
    s.attributes.insert("ApproximateReceiveCount".into(), "1".into());
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = Stack::local(Some(&format!("bench{}", ulid::Ulid::generate().to_string().to_lowercase()))).await?;
    let p = Principal { account: AccountId::generate(), mode: Mode::Test };
    let mut endpoints = Vec::new();
    for _ in 0..RECEIVERS {
        let ep = new_endpoint(Mode::Test, receiver().await.parse()?, EnabledEvents::All, None);
        if stack.endpoints().create(&p, &ep).await? != paygate::store::endpoints::Created::Created {
            anyhow::bail!("the benchmark account has too many endpoints");
        }
        endpoints.push(ep);
    }
    let deliverer = stack.deliverer(RetrySchedule { live: vec![1], test: vec![1] });
    let (mut sequential, mut concurrent) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for mode in ["sequential", "concurrent"] {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let input = IngestRequest {
                account_id: p.account.clone(),
                mode: p.mode,
                event_type: EventType::PaymentSucceeded,
                data: IngestData { object: DataObject::parse(serde_json::json!({"id": "pay_bench", "object": "payment"})).map_err(anyhow::Error::msg)? },
                request: Default::default(),
            };
            let event = stack.publisher().publish(input).await?;
            let messages: Vec<SqsMessage> = endpoints
                .iter()
                .enumerate()
                .map(|(i, ep)| {
                    message(&DeliveryMessage::new(&p, event.id, ep.id), i)
                })
                .collect();
            let start = Instant::now();
            if mode == "sequential" {
                for m in messages {
                    let mut batch = SqsEvent::default();
                    batch.records = vec![m];
                    assert!(deliverer.handle(batch).await.batch_item_failures.is_empty());
                }
                sequential.push(start.elapsed());
            } else {
                let mut batch = SqsEvent::default();
                batch.records = messages;
                assert!(deliverer.handle(batch).await.batch_item_failures.is_empty());
                concurrent.push(start.elapsed());
            }
        }
    }
    let (s, c) = (median(sequential), median(concurrent));
    println!("{RECEIVERS} deliveries to receivers that each take {} ms (median of {ROUNDS} rounds):", RECEIVER_DELAY.as_millis());
    println!("  baseline, one message at a time: {:>6} ms", s.as_millis());
    println!("  one batch, concurrently:         {:>6} ms", c.as_millis());
    println!("  speed-up: {:.1}x", s.as_secs_f64() / c.as_secs_f64());
    Ok(())
}
