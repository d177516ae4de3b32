//! What every benchmark measures with: percentiles, CPU time (ours and another process's), a
//! counter of DynamoDB requests on the wire, and webhook receivers that verify signatures.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use paygate::webhook::signature::SIGNATURE_HEADER;
use paygate::webhook::{DEFAULT_TOLERANCE_SECS, construct_event};
use paygate_cli::stack::Stack;
use tokio::sync::mpsc;

/// Cargo's target directory: `CARGO_TARGET_DIR`, else this workspace's `target/`.
pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"), Into::into)
}

/// Publishes a `payment.succeeded` event with this `data.object`, as ingest does.
pub async fn publish_payment(stack: &Stack, p: &paygate::Principal, object: serde_json::Value) -> anyhow::Result<paygate::Event> {
    use paygate::ingest::{DataObject, IngestData, IngestRequest};
    let input = IngestRequest {
        account_id: p.account.clone(),
        mode: p.mode,
        event_type: paygate::EventType::PaymentSucceeded,
        data: IngestData { object: DataObject::parse(object).map_err(anyhow::Error::msg)? },
        request: Default::default(),
        idempotency_key: None,
    };
    Ok(stack.publisher().publish(input).await?)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p` quantile (0..=1) of `samples`, nearest rank.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut v = samples.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

pub fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 0.5)
}

/// CPU time this process has used so far, every thread.
pub fn process_cpu() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time (user + system) another process has used so far, from `/proc/{pid}/stat`.
pub fn cpu_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) end at its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// Peak resident memory of a running process (`VmHWM`), in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

/// DynamoDB requests sent, by operation (from `X-Amz-Target`), retries included.
#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<Mutex<BTreeMap<String, u32>>>);

impl Calls {
    /// Makes the stack's DynamoDB client count what it sends. Stores built afterwards share it.
    pub fn install(stack: &mut Stack) -> Calls {
        let calls = Calls::default();
        paygate_bench::intercept(stack, calls.clone());
        calls
    }

    /// What was counted since the last take, and zero again.
    pub fn take(&self) -> BTreeMap<String, u32> {
        std::mem::take(&mut *self.0.lock().expect("counter lock"))
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "BenchCallCounter"
    }

    fn read_before_transmit(&self, context: &BeforeTransmitInterceptorContextRef<'_>, _: &RuntimeComponents, _: &mut ConfigBag) -> Result<(), BoxError> {
        let operation = context.request().headers().get("x-amz-target").and_then(|t| t.split('.').nth(1)).unwrap_or("unknown").to_owned();
        *self.0.lock().expect("counter lock").entry(operation).or_default() += 1;
        Ok(())
    }
}

/// "GetItem×3, TransactWriteItems×1".
pub fn describe(calls: &BTreeMap<String, u32>, per: u32) -> String {
    calls.iter().map(|(op, n)| format!("{op}×{:.1}", f64::from(*n) / f64::from(per.max(1)))).collect::<Vec<_>>().join(", ")
}

/// A webhook receiver on 127.0.0.1, bound before its endpoint exists (the endpoint needs its URL;
/// it needs the endpoint's secret).
pub struct Receiver {
    listener: tokio::net::TcpListener,
    pub url: String,
}

struct Verifier {
    secret: String,
    delay: Duration,
    seen: mpsc::UnboundedSender<String>,
}

async fn webhooks(State(r): State<Arc<Verifier>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Ok(event) = construct_event(&body, signature, &r.secret, DEFAULT_TOLERANCE_SECS) else {
        return StatusCode::BAD_REQUEST;
    };
    let _ = r.seen.send(event.id.to_string());
    tokio::time::sleep(r.delay).await;
    StatusCode::OK
}

impl Receiver {
    pub async fn bind() -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/webhooks", listener.local_addr()?);
        Ok(Receiver { listener, url })
    }

    /// Verifies each delivery's signature with `secret`, reports the event id on `seen`, and
    /// answers 200 after `delay`.
    pub fn serve(self, secret: String, delay: Duration, seen: mpsc::UnboundedSender<String>) {
        let app = axum::Router::new().route("/webhooks", axum::routing::post(webhooks)).with_state(Arc::new(Verifier { secret, delay, seen }));
        tokio::spawn(async move { axum::serve(self.listener, app).await });
    }
}

/// A webhook receiver on 127.0.0.1 that answers 500 to its first `failures` requests and 200 after
/// that, without checking signatures, and remembers when each event's requests arrived.
pub struct FailingReceiver {
    pub url: String,
    arrivals: Arc<Mutex<Vec<(String, u64)>>>,
}

#[derive(Clone)]
struct Failing {
    left: Arc<Mutex<u64>>,
    arrivals: Arc<Mutex<Vec<(String, u64)>>>,
}

async fn failing(State(f): State<Failing>, body: Bytes) -> StatusCode {
    let id = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["id"].as_str().map(str::to_owned)).unwrap_or_default();
    f.arrivals.lock().expect("arrivals lock").push((id, paygate::ids::unix_now_ms()));
    let mut left = f.left.lock().expect("counter lock");
    if *left > 0 {
        *left -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

impl FailingReceiver {
    pub async fn start(failures: u64) -> anyhow::Result<FailingReceiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/webhooks", listener.local_addr()?);
        let state = Failing { left: Arc::new(Mutex::new(failures)), arrivals: Arc::default() };
        let arrivals = state.arrivals.clone();
        let app = axum::Router::new().route("/webhooks", axum::routing::post(failing)).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(FailingReceiver { url, arrivals })
    }

    /// Unix milliseconds when the `nth` (1-based) request for `event` arrived.
    pub fn arrival_ms(&self, event: paygate::EventId, nth: usize) -> Option<u64> {
        let id = event.to_string();
        self.arrivals.lock().expect("arrivals lock").iter().filter(|(e, _)| *e == id).nth(nth - 1).map(|(_, at)| *at)
    }
}
