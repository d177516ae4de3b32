//! The capacity workload: one merchant with N endpoints, through the real code on a private stack
//! of DynamoDB Local, with every request's units recorded by phase ([`Recorder`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use paygate::ids::Timestamp;
use paygate::ingest::Publisher;
use paygate::list::ListParams;
use paygate::store::endpoints::Created;
use paygate::store::event_list::list_events;
use paygate::webhook::deliver::RetrySchedule;
use paygate::webhook::endpoints::{EnabledEvents, Endpoint, new_endpoint};
use paygate::webhook::signature::SIGNATURE_HEADER;
use paygate::webhook::{DEFAULT_TOLERANCE_SECS, construct_event};
use paygate::{Event, EventRequest, EventType, Mode, Principal};
use paygate_cli::commands::publish_fixture;
use paygate_cli::pollers;
use paygate_cli::stack::Stack;

use super::recorder::{Recorder, Units};

/// What a phase's units are counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Event,
    Delivery,
    Request,
}

/// One phase of the workload and the units its requests took.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: &'static str,
    pub per: Per,
    pub count: usize,
    pub units: Vec<Units>,
}

/// The phases of one run, with the run's shape.
#[derive(Debug, Clone)]
pub struct Measured {
    pub endpoints: usize,
    pub events: usize,
    pub phases: Vec<Phase>,
    /// Physical table name → logical id in template.yaml.
    pub tables: Vec<(String, &'static str)>,
}

pub const PUBLISH: &str = "publish";
pub const DELIVER_OK: &str = "fan-out and a delivery answered 2xx";
pub const DELIVER_FAILING: &str = "fan-out, 3 failed attempts, the final failure";
pub const GET: &str = "GET /v1/events/{id}";
pub const LIST_ALL: &str = "GET /v1/events (limit 10)";
pub const LIST_TYPE: &str = "GET /v1/events?type= (limit 10)";
pub const LIST_FAMILY: &str = "GET /v1/events?type=family.* (limit 10)";
pub const RECOVER: &str = "recover (per re-opened delivery)";

/// A receiver on 127.0.0.1 that verifies each delivery's signature and answers `status`.
struct Receiver {
    secret: std::sync::OnceLock<String>,
    status: StatusCode,
    verified: AtomicUsize,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let secret = r.secret.get().map(String::as_str).unwrap_or_default();
    if construct_event(&body, signature, secret, DEFAULT_TOLERANCE_SECS).is_err() {
        return StatusCode::BAD_REQUEST;
    }
    r.verified.fetch_add(1, Ordering::Relaxed);
    r.status
}

/// `n` endpoints of `p` subscribed to everything, each with a receiver answering `status`.
async fn endpoints(stack: &Stack, p: &Principal, n: usize, status: StatusCode) -> anyhow::Result<Vec<Endpoint>> {
    let mut made = Vec::new();
    for _ in 0..n {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let receiver = Arc::new(Receiver { secret: Default::default(), status, verified: AtomicUsize::new(0) });
        let ep = new_endpoint(Mode::Test, format!("http://{}/webhooks", listener.local_addr()?).parse()?, EnabledEvents::All, None);
        receiver.secret.set(ep.secret.expose().to_owned()).expect("set once");
        let app = axum::Router::new().route("/webhooks", axum::routing::post(receive)).with_state(receiver);
        tokio::spawn(async move { axum::serve(listener, app).await });
        anyhow::ensure!(stack.endpoints().create(p, &ep).await? == Created::Created, "too many endpoints for one account");
        made.push(ep);
    }
    Ok(made)
}

/// A publisher as a warm Lambda holds it: the account's shard plan already cached (a cold one
/// reads it once, a GetItem, then once a minute).
async fn warm_publisher(stack: &Stack, p: &Principal) -> anyhow::Result<Publisher> {
    let publisher = stack.publisher();
    publisher.events.plan(p).await?;
    Ok(publisher)
}

async fn publish(publisher: &Publisher, p: &Principal, n: usize) -> anyhow::Result<Vec<Event>> {
    let mut events = Vec::new();
    for _ in 0..n {
        events.push(publish_fixture(publisher, p, EventType::PaymentSucceeded, EventRequest::default()).await?);
    }
    Ok(events)
}

/// Waits (bounded) until no event of `events` has a delivery pending.
async fn settled(stack: &Stack, p: &Principal, events: &[Event]) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let mut pending = 0;
        for e in events {
            pending += stack.events().get(p, e.id).await?.map_or(0, |e| e.pending_webhooks);
        }
        if pending == 0 {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{pending} deliveries still pending after 300 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the workload: on `stack` (private tables and queues), `events` events of one type for one
/// merchant with `n` endpoints answering 200, and reads; on `failing_stack`, if given (another
/// private set, so that its pollers read its events from the stream's start and nothing else), the
/// same for a merchant whose `n` endpoints answer 500 (a schedule of two 1 s retries), then a recover.
pub async fn measure(stack: Stack, failing_stack: Option<Stack>, n: usize, events: usize) -> anyhow::Result<Measured> {
    let mut stack = stack;
    // Checks go through a client without the recorder.
    let quiet = stack.clone();
    let recorder = Recorder::install(&mut stack);
    let mut phases = Vec::new();
    let mut phase = |name: &'static str, per: Per, count: usize| phases.push(Phase { name, per, count, units: recorder.take() });

    recorder.phase("setup");
    let ok = quiet.keys().create_account().await?;
    let p = Principal { account: ok.account_id.clone(), mode: Mode::Test };
    endpoints(&quiet, &p, n, StatusCode::OK).await?;
    let publisher = warm_publisher(&stack, &p).await?;
    // The readers of a warm GET and list function, likewise.
    let reader = stack.events();
    reader.plan(&p).await?;
    recorder.take();

    recorder.phase(PUBLISH);
    let published = publish(&publisher, &p, events).await?;
    phase(PUBLISH, Per::Event, events);

    let schedule = RetrySchedule { live: vec![1, 1], test: vec![1, 1] };
    if n > 0 {
        recorder.phase(DELIVER_OK);
        let running = pollers::start(&stack, stack.deliverer(schedule.clone()), true).await?;
        settled(&quiet, &p, &published).await?;
        drop(running);
        phase(DELIVER_OK, Per::Delivery, events * n);
    }

    let mut tables = names(&stack);
    if let (Some(failing_stack), true) = (failing_stack, n > 0) {
        let quiet_failing = failing_stack.clone();
        let mut failing_stack = failing_stack;
        failing_stack.deps.clients.dynamodb = stack.clients.dynamodb.clone();
        tables.extend(names(&failing_stack));
        recorder.phase("setup");
        let account = quiet_failing.keys().create_account().await?;
        let f = Principal { account: account.account_id.clone(), mode: Mode::Test };
        let failing = endpoints(&quiet_failing, &f, n, StatusCode::INTERNAL_SERVER_ERROR).await?;
        let failed = publish(&warm_publisher(&failing_stack, &f).await?, &f, events).await?;
        recorder.take();

        recorder.phase(DELIVER_FAILING);
        let running = pollers::start(&failing_stack, failing_stack.deliverer(schedule), true).await?;
        settled(&quiet_failing, &f, &failed).await?;
        drop(running);
        phase(DELIVER_FAILING, Per::Delivery, events * n);

        recorder.phase(RECOVER);
        let api = failing_stack.api();
        let mut recovered = 0;
        for ep in &failing {
            recovered += api.recover(&f, &ep.id.to_string(), Timestamp(1)).await?.events.len();
        }
        phase(RECOVER, Per::Delivery, recovered);
    }
    recorder.phase(GET);
    for e in &published {
        reader.get(&p, e.id).await?;
    }
    phase(GET, Per::Request, events);

    const PAGES: usize = 5;
    for (name, query) in [(LIST_ALL, "limit=10"), (LIST_TYPE, "limit=10&type=payment.succeeded"), (LIST_FAMILY, "limit=10&type=payment.*")] {
        recorder.phase(name);
        let params = ListParams::parse(query).map_err(|e| anyhow::anyhow!("{query}: {e}"))?;
        for _ in 0..PAGES {
            list_events(&reader, &p, &params).await?;
        }
        phase(name, Per::Request, PAGES);
    }

    Ok(Measured { endpoints: n, events, phases, tables })
}

/// Physical table name → logical id, for a stack's tables.
fn names(stack: &Stack) -> Vec<(String, &'static str)> {
    let c = &stack.config;
    vec![
        (c.events_table.clone(), "Events"),
        (c.deliveries_table.clone(), "Deliveries"),
        (c.webhook_endpoints_table.clone(), "WebhookEndpoints"),
        (c.api_keys_table.clone(), "ApiKeys"),
    ]
}
