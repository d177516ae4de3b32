//! Cold starts and memory: each function binary (release build of this checkout, for this
//! machine) started as Lambda starts it, against a fake Runtime API on 127.0.0.1: the time from
//! exec to its first `GET /runtime/invocation/next`, then one real invocation (against the local
//! servers), then its peak RSS. The baseline is `hello-lambda`, built in the same run with the same
//! profile.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use paygate::config::RESOURCES;
use paygate::store::endpoints::Created;
use paygate::webhook::endpoints::{EnabledEvents, new_endpoint};
use paygate::webhook::fanout::DeliveryMessage;
use paygate::{Mode, Principal};
use paygate_cli::stack::Stack;
use tokio::sync::{mpsc, oneshot};

use crate::measure::{Receiver, median, ms, peak_rss_mib, publish_payment, target_dir};
use crate::report::{Row, Target};

/// Starts of each binary, interleaved; the median of each is reported (one start varies by ±20 % here).
const RUNS: usize = 41;

/// The one invocation a fake Runtime API hands out, and what it reports back.
struct Runtime {
    event: serde_json::Value,
    first_next: Mutex<Option<oneshot::Sender<Instant>>>,
    done: Mutex<Option<oneshot::Sender<Result<serde_json::Value, String>>>>,
}

async fn next(State(rt): State<Arc<Runtime>>) -> (HeaderMap, axum::Json<serde_json::Value>) {
    let first = rt.first_next.lock().expect("lock").take();
    match first {
        Some(tx) => {
            let _ = tx.send(Instant::now());
        }
        // The second `next`: the function is warm and waiting; it is stopped before this returns.
        None => std::future::pending::<()>().await,
    }
    let mut h = HeaderMap::new();
    let deadline = (std::time::SystemTime::now() + Duration::from_secs(30)).duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    h.insert("lambda-runtime-aws-request-id", HeaderValue::from_static("bench-request-1"));
    h.insert("lambda-runtime-deadline-ms", HeaderValue::from_str(&deadline.to_string()).expect("header"));
    h.insert("lambda-runtime-invoked-function-arn", HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:bench"));
    h.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-00000000-000000000000000000000000;Sampled=0"));
    (h, axum::Json(rt.event.clone()))
}

async fn response(State(rt): State<Arc<Runtime>>, body: axum::body::Bytes) -> &'static str {
    if let Some(tx) = rt.done.lock().expect("lock").take() {
        let _ = tx.send(serde_json::from_slice(&body).map_err(|e| e.to_string()));
    }
    "{}"
}

async fn error(State(rt): State<Arc<Runtime>>, body: String) -> &'static str {
    if let Some(tx) = rt.done.lock().expect("lock").take() {
        let _ = tx.send(Err(body));
    }
    "{}"
}

/// What one cold start measured.
struct Start {
    /// exec → the first `GET /next` (the init phase).
    ready: Duration,
    /// exec → the first invocation's answer (init plus the first invocation).
    answered: Duration,
    /// Peak RSS after the first invocation, MiB.
    rss: f64,
    answer: serde_json::Value,
}

/// One cold start of `binary` for `event`.
async fn cold_start(binary: &Path, env: &[(String, String)], event: serde_json::Value) -> anyhow::Result<Start> {
    let (first_tx, first_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let rt = Arc::new(Runtime { event, first_next: Mutex::new(Some(first_tx)), done: Mutex::new(Some(done_tx)) });
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(rt);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("RUST_LOG", "warn")
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    let ready = tokio::time::timeout(Duration::from_secs(30), first_rx).await??;
    let answer = tokio::time::timeout(Duration::from_secs(30), done_rx).await??.map_err(|e| anyhow::anyhow!("{} failed: {e}", binary.display()))?;
    let answered = started.elapsed();
    let rss = peak_rss_mib(pid).unwrap_or(f64::NAN);
    child.kill().await?;
    server.abort();
    Ok(Start { ready: ready - started, answered, rss, answer })
}

/// `target/release/{name}`.
fn binary(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

fn get_event_request(key: &str, id: &str) -> serde_json::Value {
    let mut e: serde_json::Value = serde_json::from_str(include_str!("../../events/get-event.apigw.json")).expect("sample");
    e["rawPath"] = format!("/v1/events/{id}").into();
    e["requestContext"]["http"]["path"] = e["rawPath"].clone();
    e["pathParameters"]["id"] = id.into();
    e["headers"]["authorization"] = format!("Bearer {key}").into();
    e
}

pub async fn run(stack: Stack) -> anyhow::Result<Vec<Row>> {
    for name in ["hello-lambda", "get-event", "deliver-webhooks"] {
        anyhow::ensure!(binary(name).is_file(), "{} is missing: `scripts/bench.sh` builds it (cargo build --release)", binary(name).display());
    }
    let mut env: Vec<(String, String)> = RESOURCES.iter().map(|(logical, var, _)| ((*var).to_owned(), stack.config.name_of(logical))).collect();
    env.push(("PAYGATE_DELIVERY_QUEUE_URL".into(), stack.config.delivery_queue_url.clone()));
    env.push(("PAYGATE_DELIVERY_DLQ_URL".into(), stack.config.delivery_dlq_url.clone()));
    env.push(("PAYGATE_SLOW_DELIVERY_QUEUE_URL".into(), stack.config.slow_delivery_queue_url.clone()));
    env.push(("PAYGATE_ALLOW_PRIVATE_WEBHOOK_URLS".into(), "true".into()));
    // The SDK in the functions talks to the benchmark's DynamoDB Local.
    let paygate::aws::Target::Local { dynamodb, .. } = &stack.clients.target else { anyhow::bail!("a local stack") };
    env.push(("AWS_ENDPOINT_URL".into(), dynamodb.clone()));

    let account = stack.keys().create_account().await?;
    let p = Principal { account: account.account_id.clone(), mode: Mode::Test };
    let (seen, mut delivered) = mpsc::unbounded_channel();
    let receiver = Receiver::bind().await?;
    let ep = new_endpoint(Mode::Test, receiver.url.parse()?, EnabledEvents::All, None);
    receiver.serve(ep.secret.expose().to_owned(), Duration::ZERO, seen);
    anyhow::ensure!(stack.endpoints().create(&p, &ep).await? == Created::Created, "could not create the endpoint");

    let (mut hello, mut get_event, mut deliver) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        hello.push(cold_start(&binary("hello-lambda"), &[], serde_json::json!({"hello": "world"})).await?);

        let event = publish_payment(&stack, &p, serde_json::json!({"id": "pay_bench", "object": "payment"})).await?;
        let answer = get_event_request(account.test_key.expose(), &event.id.to_string());
        let got = cold_start(&binary("get-event"), &env, answer).await?;
        anyhow::ensure!(got.answer["statusCode"] == 200, "get-event answered {}", got.answer);
        get_event.push(got);

        let body = serde_json::to_string(&DeliveryMessage::new(&p, event.id, ep.id))?;
        let batch = serde_json::json!({"Records": [{"messageId": "bench-1", "receiptHandle": "bench", "body": body,
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs"}]});
        let got = cold_start(&binary("deliver-webhooks"), &env, batch).await?;
        anyhow::ensure!(got.answer["batchItemFailures"].as_array().is_some_and(Vec::is_empty), "deliver-webhooks answered {}", got.answer);
        anyhow::ensure!(delivered.recv().await == Some(event.id.to_string()), "the receiver did not get the event");
        deliver.push(got);
    }
    let ready = |v: &[Start]| ms(median(&v.iter().map(|s| s.ready).collect::<Vec<_>>()));
    let answered = |v: &[Start]| ms(median(&v.iter().map(|s| s.answered).collect::<Vec<_>>()));
    let rss = |v: &[Start]| {
        let mut r: Vec<f64> = v.iter().map(|s| s.rss).collect();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    let note = |v: &[Start]| {
        format!(
            "median of {RUNS} starts against a fake Runtime API, exec to the first GET /next; exec to the first invocation answered: {:.2} ms (hello-lambda {:.2} ms)",
            answered(v),
            answered(&hello)
        )
    };
    let rss_note = "VmHWM after one real invocation against the local servers".to_owned();
    Ok(vec![
        Row::new(
            "cold start to first /next, get-event",
            ready(&get_event),
            "ms",
            Some(("hello-lambda", ready(&hello))),
            Target::RatioAtMost(1.5),
            note(&get_event),
        ),
        Row::new(
            "cold start to first /next, deliver-webhooks",
            ready(&deliver),
            "ms",
            Some(("hello-lambda", ready(&hello))),
            Target::RatioAtMost(1.5),
            note(&deliver),
        ),
        Row::new(
            "peak RSS after the first invoke, get-event",
            rss(&get_event),
            "MiB",
            Some(("hello-lambda", rss(&hello))),
            Target::AtMost(32.0),
            rss_note.clone(),
        ),
        Row::new(
            "peak RSS after the first invoke, deliver-webhooks",
            rss(&deliver),
            "MiB",
            Some(("hello-lambda", rss(&hello))),
            Target::AtMost(32.0),
            rss_note,
        ),
    ])
}
