//! `GET /v1/events/{id}` through `paygate dev`'s HTTP API (the router every HTTP Lambda runs,
//! authentication included) against one raw GetItem of the same item on the same DynamoDB Local
//! with the same SDK client; and what one warm GET costs in DynamoDB requests and, deployed, in
//! Lambda invocations.
//!
//! The GET is sent with the HTTP client the SDK sends the GetItem with (hyper-util's pooled
//! client, which is what aws-smithy-http-client runs), so that both sides of the ratio go through
//! the same client code. Beside it, for what the hop alone costs: a handler answering at once, and
//! one doing only the raw GetItem (no router), which the second row holds our GET against; and both
//! GETs through reqwest, which measured 0.05-0.1 ms slower at p50 than hyper-util for our GET and
//! -0.03 to +0.045 ms for that handler (cause not found).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use paygate::{Mode, Principal};
use paygate_cli::stack::Stack;

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty};
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

/// What is timed, in alternating blocks: the GET through `paygate dev`, the raw GetItem, an HTTP
/// round trip alone, a handler doing only the raw GetItem, and the two HTTP ones through reqwest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Api,
    Raw,
    Hop,
    GetItemHandler,
    ApiByReqwest,
    GetItemHandlerByReqwest,
}

impl Kind {
    const ALL: [Kind; 6] = [Kind::Api, Kind::Raw, Kind::Hop, Kind::GetItemHandler, Kind::ApiByReqwest, Kind::GetItemHandlerByReqwest];
}

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
    // same size at once; and one whose answer takes the raw GetItem, without our router.
    let dynamodb = stack.clients.dynamodb.clone();
    let table = stack.config.events_table.clone();
    let (partition, id) = (p.partition(), event.id.to_string());
    let raw_get = move || {
        let request = dynamodb
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(partition.clone()))
            .key("id", AttributeValue::S(id.clone()))
            .consistent_read(true);
        async move {
            let out = request.send().await.expect("GetItem");
            assert!(out.item.is_some());
        }
    };
    let hop_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hop_base = format!("http://{}", hop_listener.local_addr()?);
    let body = serde_json::to_string(&event)?;
    let handler_get = raw_get.clone();
    let hop_app =
        axum::Router::new().route("/hop", axum::routing::get(move || std::future::ready(body.clone()))).route("/get_item", axum::routing::get(handler_get));
    tokio::spawn(async move { axum::serve(hop_listener, hop_app).await });
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let reqwest = reqwest::Client::new();
    let key = account.test_key.expose().to_owned();
    let authorization = format!("Bearer {key}");
    let (hop_url, get_item_url) = (format!("{hop_base}/hop"), format!("{hop_base}/get_item"));
    let sample = |kind: Kind| {
        let (url, auth) = match kind {
            Kind::Api | Kind::ApiByReqwest => (url.as_str(), Some(authorization.as_str())),
            Kind::Hop => (hop_url.as_str(), None),
            Kind::GetItemHandler | Kind::GetItemHandlerByReqwest => (get_item_url.as_str(), None),
            Kind::Raw => ("", None),
        };
        let (client, reqwest, raw_get) = (&client, &reqwest, &raw_get);
        async move {
            let start = Instant::now();
            match kind {
                Kind::Raw => raw_get().await,
                Kind::ApiByReqwest | Kind::GetItemHandlerByReqwest => {
                    let mut request = reqwest.get(url);
                    if let Some(value) = auth {
                        request = request.header(http::header::AUTHORIZATION, value);
                    }
                    let r = request.send().await.expect("GET");
                    assert_eq!(r.status(), 200);
                    r.bytes().await.expect("body");
                }
                _ => {
                    let mut request = http::Request::get(url);
                    if let Some(value) = auth {
                        request = request.header(http::header::AUTHORIZATION, value);
                    }
                    let r = client.request(request.body(Empty::new()).expect("request")).await.expect("GET");
                    assert_eq!(r.status(), 200);
                    r.into_body().collect().await.expect("body");
                }
            }
            start.elapsed()
        }
    };

    for _ in 0..WARMUP {
        for kind in Kind::ALL {
            sample(kind).await;
        }
    }
    calls.take();
    for _ in 0..COUNTED {
        sample(Kind::Api).await;
    }
    let per_get = calls.take();
    let reads = f64::from(per_get.values().sum::<u32>()) / f64::from(COUNTED);

    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); Kind::ALL.len()];
    while samples[0].len() < REQUESTS {
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            for _ in 0..BLOCK {
                samples[i].push(sample(kind).await);
            }
        }
    }
    let p50 = |kind: Kind| ms(median(&samples[Kind::ALL.iter().position(|k| *k == kind).expect("a kind")]));
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
        raw_get().await;
    }
    let raw_cpu = cpu_of(CPU_RUNS, start);
    let start = process_cpu();
    for _ in 0..CPU_RUNS {
        sample(Kind::Hop).await;
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
            p50(Kind::Api),
            "ms",
            Some(("one raw GetItem", p50(Kind::Raw))),
            Target::RatioAtMost(1.15),
            format!(
                "{REQUESTS} of each in alternating blocks of {BLOCK}, over HTTP on 127.0.0.1 with the SDK's own HTTP client \
                 (hyper-util), after {WARMUP} warm-up requests of each. p50 of an HTTP round trip alone (a handler answering \
                 the same body at once): {:.3} ms; of a handler doing only the raw GetItem: {:.3} ms. Through reqwest: the GET \
                 {:.3} ms, the handler doing only the raw GetItem {:.3} ms. CPU of this process per request ({CPU_RUNS} of \
                 each): the router in process (no HTTP) {:.0} µs, the raw GetItem {:.0} µs, the HTTP round trip alone (client \
                 and server) {:.0} µs",
                p50(Kind::Hop),
                p50(Kind::GetItemHandler),
                p50(Kind::ApiByReqwest),
                p50(Kind::GetItemHandlerByReqwest),
                micros(handler_cpu),
                micros(raw_cpu),
                micros(hop_cpu)
            ),
        ),
        Row::new(
            "GET /v1/events/{id} p50 through `paygate dev`, against the same hop with no router",
            p50(Kind::Api),
            "ms",
            Some(("a handler doing only the raw GetItem", p50(Kind::GetItemHandler))),
            Target::RatioAtMost(1.10),
            "the same runs as the row above: what our router, authentication included, adds to an HTTP server that does nothing \
             but the GetItem, on the same hop, client and DynamoDB Local",
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
