//! `GET /v1/events?limit=100` on an account with 100,000 events against one with 100 (seeded with
//! BatchWriteItem, last of all: see `main`); and the CPU the API spends on one such page against a
//! raw Query of it.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::StreamExt;
use paygate::http::router;
use paygate::{Event, EventType, Mode, Principal};
use paygate_cli::stack::Stack;
use tower::ServiceExt;

use crate::measure::{median, ms, process_cpu};
use crate::report::{Row, Target};

pub const LARGE: usize = 100_000;
pub const SMALL: usize = 100;
const REQUESTS: usize = 600;
const BLOCK: usize = 50;
/// Pages whose CPU is measured, of each kind.
const CPU_PAGES: u32 = 500;

/// Writes `n` events for `p` with BatchWriteItem, in the exact item shape `EventStore` writes.
async fn seed(stack: &Stack, p: &Principal, n: usize) -> anyhow::Result<()> {
    let store = stack.events();
    let types = [EventType::PaymentSucceeded, EventType::PaymentFailed, EventType::RefundSucceeded, EventType::PayoutCompleted];
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let data = serde_json::json!({"id": format!("pay_{i:08}"), "object": "payment", "amount": 1000 + i % 5000, "currency": "ghs",
            "customer": {"phone": "+233200000000", "name": "Ama Mensah"}, "metadata": {"order": format!("ord_{i}")}});
        let serde_json::Value::Object(object) = data else { unreachable!() };
        let event = Event::new(types[i % types.len()], object, Default::default());
        items.push(store.new_item(p, &event).await?);
    }
    let client = stack.clients.dynamodb.clone();
    let table = store.table.clone();
    let batches: Vec<Vec<_>> = items.chunks(25).map(<[_]>::to_vec).collect();
    let mut writes = futures::stream::iter(batches.into_iter().map(|batch| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            let mut pending: Vec<WriteRequest> = batch
                .into_iter()
                .map(|item| WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().expect("item")).build())
                .collect();
            while !pending.is_empty() {
                let out = client.batch_write_item().request_items(&table, pending).send().await?;
                pending = out.unprocessed_items.and_then(|mut u| u.remove(&table)).unwrap_or_default();
            }
            Ok::<_, anyhow::Error>(())
        }
    }))
    .buffer_unordered(8);
    while let Some(r) = writes.next().await {
        r?;
    }
    Ok(())
}

pub async fn run(stack: Stack) -> anyhow::Result<Vec<Row>> {
    let (small, large) = (stack.keys().create_account().await?, stack.keys().create_account().await?);
    let principal = |a: &paygate::store::api_keys::NewAccount| Principal { account: a.account_id.clone(), mode: Mode::Test };
    let started = Instant::now();
    seed(&stack, &principal(&small), SMALL).await?;
    seed(&stack, &principal(&large), LARGE).await?;
    println!("  seeded {SMALL} + {LARGE} events in {:.0} s", started.elapsed().as_secs_f64());

    // Latency over HTTP, as `paygate dev` serves it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/v1/events?limit=100", listener.local_addr()?);
    let functions = stack.functions();
    tokio::spawn(async move { paygate_cli::gateway::serve(listener, functions, std::future::pending()).await });
    let http = reqwest::Client::new();
    let page = |key: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let start = Instant::now();
            let r = http.get(&base).bearer_auth(key).send().await.expect("GET");
            assert_eq!(r.status(), 200);
            let body: serde_json::Value = r.json().await.expect("body");
            assert_eq!(body["data"].as_array().map(Vec::len), Some(100));
            start.elapsed()
        }
    };
    let (small_key, large_key) = (small.test_key.expose().to_owned(), large.test_key.expose().to_owned());
    for _ in 0..BLOCK {
        page(small_key.clone()).await;
        page(large_key.clone()).await;
    }
    let (mut on_small, mut on_large): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
    while on_small.len() < REQUESTS {
        for _ in 0..BLOCK {
            on_small.push(page(small_key.clone()).await);
        }
        for _ in 0..BLOCK {
            on_large.push(page(large_key.clone()).await);
        }
    }

    // CPU per page in this process: the Lambda's router (auth from its warm cache, the Query, the
    // page's JSON), against the raw Query alone with the same client.
    let app = router(std::sync::Arc::new(stack.api()), None);
    let request =
        || http::Request::get("/v1/events?limit=100").header("authorization", format!("Bearer {small_key}")).body(axum::body::Body::empty()).expect("request");
    let handler = || async {
        let response = app.clone().oneshot(request()).await.expect("infallible");
        assert_eq!(response.status(), 200);
        axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    };
    let client = stack.clients.dynamodb.clone();
    let raw = || async {
        let out = client
            .query()
            .table_name(&stack.config.events_table)
            .key_condition_expression("pk = :k")
            .expression_attribute_values(":k", AttributeValue::S(principal(&small).partition()))
            .scan_index_forward(false)
            .limit(101)
            .send()
            .await
            .expect("Query");
        assert_eq!(out.items.map(|i| i.len()), Some(100));
    };
    for _ in 0..50 {
        handler().await;
        raw().await;
    }
    let start = process_cpu();
    for _ in 0..CPU_PAGES {
        handler().await;
    }
    let handler_cpu = (process_cpu() - start) / CPU_PAGES;
    let start = process_cpu();
    for _ in 0..CPU_PAGES {
        raw().await;
    }
    let raw_cpu = (process_cpu() - start) / CPU_PAGES;

    Ok(vec![
        Row::new(
            "list page of 100, 100k-event account",
            ms(median(&on_large)),
            "ms",
            Some(("100-event account", ms(median(&on_small)))),
            Target::RatioAtMost(1.2),
            format!("{REQUESTS} pages of each over HTTP, alternating blocks of {BLOCK}, after seeding with BatchWriteItem"),
        ),
        Row::new(
            "API CPU per 100-event page",
            ms(handler_cpu),
            "ms",
            Some(("raw Query of the page", ms(raw_cpu))),
            Target::AtMost(1.2),
            format!("CPU time of this process over {CPU_PAGES} pages through the Lambda's router, in process (no HTTP), against the same Query sent raw"),
        ),
    ])
}
