//! `GET /v1/events/{id}` through `paygate dev`'s HTTP API (the router every HTTP Lambda runs,
//! authentication included) against one raw GetItem of the same item on the same DynamoDB Local
//! with the same SDK client; and what one warm GET costs in DynamoDB requests and, deployed, in
//! Lambda invocations.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use paygate::{Mode, Principal};
use paygate_cli::stack::Stack;

use tower::ServiceExt;

use crate::measure::{Calls, describe, median, ms, process_cpu, publish_payment};
use crate::report::{Row, Target};

/// Requests of each kind, in alternating blocks of [`BLOCK`], after [`WARMUP`] of each.
const REQUESTS: usize = 2000;
const BLOCK: usize = 100;
const WARMUP: usize = 200;
/// Warm GETs whose DynamoDB requests are counted.
const COUNTED: u32 = 200;
/// Requests of each kind whose CPU time is measured.
const CPU_RUNS: u32 = 2000;
/// Limiter takes whose CPU is measured.
const LIMITER_RUNS: u32 = 200_000;

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub async fn run(mut stack: Stack) -> anyhow::Result<Vec<Row>> {
    let calls = Calls::install(&mut stack);
    let account = stack.keys().create_account().await?;
    let p = Principal { account: account.account_id.clone(), mode: Mode::Test };
    let event = publish_payment(&stack, &p, serde_json::json!({"id": "pay_bench", "object": "payment", "amount": 5000})).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1/events/{}", listener.local_addr()?, event.id);
    let functions = stack.functions();
    tokio::spawn(async move { paygate_cli::gateway::serve(listener, functions, std::future::pending()).await });
    // What an HTTP round trip on 127.0.0.1 costs by itself: a handler that answers a body of the
    // same size at once.
    let hop_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hop_url = format!("http://{}/hop", hop_listener.local_addr()?);
    let body = serde_json::to_string(&event)?;
    let hop_app = axum::Router::new().route("/hop", axum::routing::get(move || std::future::ready(body.clone())));
    tokio::spawn(async move { axum::serve(hop_listener, hop_app).await });
    let http = reqwest::Client::new();
    let key = account.test_key.expose().to_owned();
    let hop = || async {
        let start = Instant::now();
        let r = http.get(&hop_url).send().await.expect("GET");
        r.bytes().await.expect("body");
        start.elapsed()
    };
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
        hop().await;
    }
    calls.take();
    for _ in 0..COUNTED {
        api().await;
    }
    let per_get = calls.take();
    let reads = f64::from(per_get.values().sum::<u32>()) / f64::from(COUNTED);

    let (mut through_api, mut baseline, mut hops): (Vec<Duration>, Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new(), Vec::new());
    while through_api.len() < REQUESTS {
        for _ in 0..BLOCK {
            through_api.push(api().await);
        }
        for _ in 0..BLOCK {
            baseline.push(raw().await);
        }
        for _ in 0..BLOCK {
            hops.push(hop().await);
        }
    }
    // Where the difference goes: this process's CPU per GET through the router in process (no
    // HTTP), per raw GetItem, and per HTTP round trip to the trivial handler (client and server).
    let app = paygate_cli::gateway::app(stack.functions());
    let path = format!("/v1/events/{}", event.id);
    let in_process = || async {
        let request = http::Request::get(&path).header("authorization", format!("Bearer {key}")).body(axum::body::Body::empty()).expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), 200);
        axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    };
    let cpu_of = |runs: u32, start: Duration| (process_cpu() - start) / runs;
    let start = process_cpu();
    for _ in 0..CPU_RUNS {
        in_process().await;
    }
    let handler_cpu = cpu_of(CPU_RUNS, start);
    let start = process_cpu();
    for _ in 0..CPU_RUNS {
        raw().await;
    }
    let raw_cpu = cpu_of(CPU_RUNS, start);
    let start = process_cpu();
    for _ in 0..CPU_RUNS {
        hop().await;
    }
    let hop_cpu = cpu_of(CPU_RUNS, start);
    // The per-account rate limiter (`http::rate_limit`), as every request takes it: one account,
    // under its limit, with 10,000 others tracked.
    let limiter = paygate::http::rate_limit::RateLimiter::new(paygate::http::rate_limit::RateLimits { live: u32::MAX, test: u32::MAX, failed_auths: 0 });
    for _ in 0..10_000 {
        let _ = limiter.take(&paygate::Principal { account: paygate::AccountId::generate(), mode: paygate::Mode::Test }, Instant::now());
    }
    let start = process_cpu();
    for _ in 0..LIMITER_RUNS {
        assert!(limiter.take(&p, Instant::now()).is_ok());
    }
    let limiter_cpu = cpu_of(LIMITER_RUNS, start);
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))?;
    let authorizer = template.contains("Authorizers:");
    Ok(vec![
        Row::new(
            "GET /v1/events/{id} p50 through `paygate dev`",
            ms(median(&through_api)),
            "ms",
            Some(("one raw GetItem", ms(median(&baseline)))),
            Target::RatioAtMost(1.15),
            format!(
                "{REQUESTS} of each in alternating blocks of {BLOCK}, over HTTP on 127.0.0.1, after {WARMUP} warm-up requests of each; \
                 an HTTP round trip alone (a handler answering the same body at once): p50 {:.3} ms. CPU of this process per \
                 request ({CPU_RUNS} of each): the router in process (no HTTP) {:.0} µs, the raw GetItem {:.0} µs, the HTTP round \
                 trip alone (client and server) {:.0} µs",
                ms(median(&hops)),
                micros(handler_cpu),
                micros(raw_cpu),
                micros(hop_cpu)
            ),
        ),
        Row::new(
            "rate limiter CPU per request",
            micros(limiter_cpu),
            "us",
            Some(("GET through the router in process", micros(handler_cpu))),
            Target::RatioAtMost(0.02),
            format!(
                "{LIMITER_RUNS} takes of one account's token bucket with 10,000 accounts tracked; no DynamoDB request (a GET stays one read: the row below)"
            ),
        ),
        Row::new(
            "DynamoDB requests per warm GET",
            reads,
            "requests",
            None,
            Target::AtMost(1.0),
            format!("counted on the wire over {COUNTED} GETs: {}", describe(&per_get, COUNTED)),
        ),
        Row::new(
            "Lambda invocations per API call, deployed",
            if authorizer { 2.0 } else { 1.0 },
            "invocations",
            None,
            Target::AtMost(1.0),
            if authorizer {
                "template.yaml defines an authorizer, invoked uncached"
            } else {
                "template.yaml defines no authorizer: each function authenticates the key itself"
            },
        ),
    ])
}
