//! Fault injection on the real servers: the delivery invariant under outages.
//!
//! Each scenario runs the stream poller, the queue poller and the sweeper (what `paygate dev` runs)
//! on private tables and queues, talking to DynamoDB Local and the SQS server through TCP fault
//! proxies, while a producer publishes a burst of events straight to DynamoDB (another service's
//! ingest path, unaffected). Mid-burst a proxy refuses or stalls connections for 10–20 s, or a thief
//! deletes queued messages behind the system's back. Three endpoints with different filters: two
//! real receivers that verify both signatures, and one that always answers 500.
//!
//! Each scenario asserts that every subscribed (event, endpoint) pair ends delivered (or finally
//! failed, for the broken endpoint, with its attempts recorded), that no unsubscribed pair got
//! anything, that `pending_webhooks` ends exactly 0, and that at no sampled moment did an event's
//! `pending_webhooks` differ from its number of unsettled deliveries (so never 0 while one is
//! outstanding). Nothing is timed: conditions are waited on with generous bounds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::fault_proxy::{Fault, FaultProxy};
use integration_tests::receiver::{Answer, Receiver};
use integration_tests::{Api, account, eventually, publish, test_principal};
use paygate::aws::Target;
use paygate::store::deliveries::DeliveryStatus;
use paygate::store::endpoints::Created;
use paygate::webhook::deliver::{Deliverer, RetrySchedule};
use paygate::webhook::endpoints::{EnabledEvents, Endpoint, new_endpoint};
use paygate::webhook::ssrf::WebhookClient;
use paygate::{Event, EventType, Principal};
use paygate_cli::pollers::{self, Pollers};
use paygate_cli::stack::Stack;

/// The redrive grace of these tests (300 s deployed).
const GRACE: Duration = Duration::from_secs(3);
/// Events per burst, and the pause between two.
const EVENTS: usize = 48;
const SPACING: Duration = Duration::from_millis(60);
/// How long a scenario may take to settle after its fault (a ceiling, not a expectation).
const SETTLE_BOUND: Duration = Duration::from_secs(240);
const TYPES: [EventType; 4] = [EventType::PaymentSucceeded, EventType::RefundCreated, EventType::CustomerCreated, EventType::PaymentFailed];

fn deliverer(stack: &Stack) -> Deliverer {
    let mut d = stack.deliverer(RetrySchedule { live: vec![1, 1], test: vec![1, 1] });
    d.client = WebhookClient::with_timeout(stack.policy, Duration::from_secs(5));
    d
}

/// One endpoint and the receiver behind it.
struct Hook {
    endpoint: Endpoint,
    receiver: Receiver,
    /// Answers 500 to everything: its deliveries end finally failed.
    broken: bool,
}

struct Scenario {
    name: &'static str,
    /// Unfaulted: the producer's path, and the observer's.
    direct: Stack,
    /// Through the proxies: what the pollers, the deliverer and the sweeper use.
    system: Stack,
    ddb: FaultProxy,
    sqs: FaultProxy,
    principal: Principal,
    hooks: Vec<Hook>,
    _pollers: Pollers,
}

async fn scenario(name: &'static str) -> Scenario {
    let Target::Local { dynamodb, sqs } = Target::local() else { unreachable!() };
    let (ddb, sqs) = (FaultProxy::start(&dynamodb).await, FaultProxy::start(&sqs).await);
    let suffix = ulid::Ulid::generate().to_string().to_lowercase();
    let mut direct = Stack::local(Some(&suffix)).await.unwrap_or_else(|e| panic!("{e}; or run the tests with `make test`"));
    // Every function has the same grace (the template's Globals): ingest writes it into new states.
    direct.config.redrive_after = GRACE;
    let mut system = Stack::local_on(&Target::Local { dynamodb: ddb.url(), sqs: sqs.url() }, Some(&suffix)).await.unwrap();
    system.config.redrive_after = GRACE;
    let a = account(&direct).await;
    let principal = test_principal(&a);
    let mut hooks = Vec::new();
    for (events, broken) in [(&["payment.*"][..], false), (&["*"][..], false), (&["refund.*"][..], true)] {
        let receiver = Receiver::start(if broken { vec![Answer::Status(500); 10_000] } else { vec![] }).await;
        let enabled = EnabledEvents::parse(&events.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap();
        let endpoint = new_endpoint(principal.mode, receiver.url.parse().unwrap(), enabled, None);
        assert_eq!(direct.endpoints().create(&principal, &endpoint).await.unwrap(), Created::Created);
        receiver.expect_secrets(&[endpoint.secret.expose()]);
        hooks.push(Hook { endpoint, receiver, broken });
    }
    let pollers = pollers::start(&system, deliverer(&system), true).await.unwrap();
    Scenario { name, direct, system, ddb, sqs, principal, hooks, _pollers: pollers }
}

/// What a scenario ended with.
#[derive(Debug, Default)]
struct Figures {
    events: usize,
    pairs: usize,
    delivered: usize,
    finally_failed: usize,
    lost: usize,
    final_pending: u64,
    samples: usize,
    violations: Vec<String>,
}

impl Scenario {
    /// Publishes the burst while `fault` runs (it starts a second into the burst), then waits until
    /// every event has settled, sampling the invariant all along.
    async fn run(&self, fault: impl std::future::Future<Output = ()>) -> Figures {
        let published: Arc<Mutex<Vec<Event>>> = Arc::default();
        let done = tokio::sync::watch::channel(false);
        let producer = async {
            for i in 0..EVENTS {
                let object = serde_json::json!({"id": format!("obj_{i}"), "object": "payment", "amount": 100 * i, "currency": "GHS"});
                let e = publish(&self.direct, &self.principal, TYPES[i % TYPES.len()], object).await;
                published.lock().unwrap().push(e);
                tokio::time::sleep(SPACING).await;
            }
        };
        let injector = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            fault.await;
        };
        let sampler = self.sample(published.clone(), done.1.clone());
        let settle = async {
            tokio::join!(producer, injector);
            let all = published.lock().unwrap().clone();
            let settled = eventually(SETTLE_BOUND, || async {
                for e in &all {
                    let now = self.direct.events().get(&self.principal, e.id).await.ok()??;
                    if now.pending_webhooks != 0 {
                        return None;
                    }
                }
                Some(())
            })
            .await;
            if settled.is_none() {
                eprintln!("{}: not every event settled within {SETTLE_BOUND:?}", self.name);
            }
            done.0.send_replace(true);
        };
        let ((), (samples, violations)) = tokio::join!(settle, sampler);
        let events = published.lock().unwrap().clone();
        let mut f = self.figures(&events).await;
        f.samples = samples;
        f.violations = violations;
        println!(
            "{}: events {}, pairs {}, delivered {}, finally failed {}, lost {}, final pending {}, invariant samples {} ({} violations)",
            self.name,
            f.events,
            f.pairs,
            f.delivered,
            f.finally_failed,
            f.lost,
            f.final_pending,
            f.samples,
            f.violations.len()
        );
        f
    }

    /// Until `done`: every event published so far, over and over. An event's count is compared with
    /// its unsettled deliveries when two reads of the count around the Query agree.
    async fn sample(&self, published: Arc<Mutex<Vec<Event>>>, mut done: tokio::sync::watch::Receiver<bool>) -> (usize, Vec<String>) {
        let (mut samples, mut violations) = (0, Vec::new());
        for _ in 0..10_000 {
            if *done.borrow_and_update() {
                break;
            }
            let events = published.lock().unwrap().clone();
            for e in &events {
                let before = self.direct.events().get(&self.principal, e.id).await.unwrap().unwrap().pending_webhooks;
                let states = self.direct.deliveries().states(&self.principal, e.id).await.unwrap();
                let after = self.direct.events().get(&self.principal, e.id).await.unwrap().unwrap().pending_webhooks;
                if before != after {
                    continue;
                }
                samples += 1;
                let open = states.iter().filter(|s| s.status == DeliveryStatus::Pending).count() as u32;
                if before != open {
                    violations.push(format!("{}: pending_webhooks {before} with {open} unsettled deliveries", e.id));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (samples, violations)
    }

    async fn figures(&self, events: &[Event]) -> Figures {
        let mut f = Figures { events: events.len(), ..Figures::default() };
        let received: Vec<HashMap<paygate::EventId, usize>> = self
            .hooks
            .iter()
            .map(|h| {
                let mut m = HashMap::new();
                for r in h.receiver.received() {
                    assert!(r.verified, "{}: every delivery verifies", self.name);
                    *m.entry(r.event.expect("an event body").id).or_default() += 1;
                }
                m
            })
            .collect();
        for e in events {
            let stored = self.direct.events().get(&self.principal, e.id).await.unwrap().unwrap();
            f.final_pending += u64::from(stored.pending_webhooks);
            for (h, got) in self.hooks.iter().zip(&received) {
                let status = self.direct.deliveries().status(&self.principal, e.id, &h.endpoint.id).await.unwrap();
                if !h.endpoint.wants(e) {
                    assert_eq!(status, None, "{}: {} is not subscribed to {}", self.name, h.endpoint.id, e.event_type);
                    assert!(!got.contains_key(&e.id), "{}: nothing unsubscribed arrives", self.name);
                    continue;
                }
                f.pairs += 1;
                match (h.broken, status) {
                    (false, Some(DeliveryStatus::Succeeded)) if got.contains_key(&e.id) => f.delivered += 1,
                    (true, Some(DeliveryStatus::Failed)) => {
                        let attempts = self.direct.deliveries().attempts(&self.principal, e.id).await.unwrap();
                        let mine = attempts.iter().filter(|a| a.endpoint_id == h.endpoint.id).count();
                        assert!(mine >= 3, "{}: a final failure follows the whole schedule ({mine} attempts)", self.name);
                        f.finally_failed += 1;
                    }
                    other => {
                        eprintln!("{}: {} → {}: {:?}, received {}", self.name, e.id, h.endpoint.id, other.1, got.get(&e.id).copied().unwrap_or(0));
                        f.lost += 1;
                    }
                }
            }
        }
        f
    }
}

fn assert_nothing_lost(f: &Figures) {
    assert_eq!(f.events, EVENTS);
    assert!(f.pairs >= EVENTS, "every event has at least the `*` endpoint");
    assert_eq!(f.lost, 0, "{f:?}");
    assert_eq!(f.delivered + f.finally_failed, f.pairs, "{f:?}");
    assert!(f.finally_failed > 0, "the broken endpoint's deliveries end finally failed");
    assert_eq!(f.final_pending, 0, "{f:?}");
    assert!(f.samples > 0, "the invariant was sampled");
    assert!(f.violations.is_empty(), "{:?}", f.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqs_refusing_connections_for_10_s_mid_burst() {
    let s = scenario("SQS refusing 10 s").await;
    let f = s.run(s.sqs.inject(Fault::Refuse, Duration::from_secs(10))).await;
    assert_nothing_lost(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqs_stalled_for_20_s_mid_burst() {
    let s = scenario("SQS stalled 20 s").await;
    let f = s.run(s.sqs.inject(Fault::Stall, Duration::from_secs(20))).await;
    assert_nothing_lost(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_refusing_connections_for_10_s_mid_burst() {
    let s = scenario("DynamoDB refusing 10 s").await;
    let f = s.run(s.ddb.inject(Fault::Refuse, Duration::from_secs(10))).await;
    assert_nothing_lost(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_stalled_for_20_s_mid_burst() {
    let s = scenario("DynamoDB stalled 20 s").await;
    let f = s.run(s.ddb.inject(Fault::Stall, Duration::from_secs(20))).await;
    assert_nothing_lost(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_resetting_connections_for_10_s_mid_burst() {
    let s = scenario("DynamoDB and SQS resetting 10 s").await;
    let both = async {
        s.ddb.set(Fault::Reset);
        s.sqs.inject(Fault::Reset, Duration::from_secs(10)).await;
        s.ddb.set(Fault::Pass);
    };
    let f = s.run(both).await;
    assert_nothing_lost(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_messages_deleted_behind_the_systems_back() {
    let s = scenario("queued messages deleted").await;
    let stolen = Arc::new(Mutex::new(0usize));
    let thief = async {
        // For 8 s, take whatever the delivery queue offers and delete it (bounded in count and time).
        let sqs = &s.direct.clients.sqs;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
        while tokio::time::Instant::now() < deadline && *stolen.lock().unwrap() < 200 {
            let got =
                sqs.receive_message().queue_url(&s.direct.config.delivery_queue_url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
            for m in got.messages() {
                sqs.delete_message().queue_url(&s.direct.config.delivery_queue_url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
                *stolen.lock().unwrap() += 1;
            }
        }
    };
    let f = s.run(thief).await;
    let stolen = *stolen.lock().unwrap();
    println!("queued messages deleted: {stolen} messages stolen");
    assert!(stolen > 0, "the thief took messages");
    assert_nothing_lost(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_delivery_queue_lost_with_its_messages_as_in_an_sqs_restart() {
    let s = scenario("SQS restarted empty").await;
    let restart = async {
        // A restarted local SQS server has forgotten its queues and their messages.
        let sqs = &s.direct.clients.sqs;
        sqs.delete_queue().queue_url(&s.direct.config.delivery_queue_url).send().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    let f = s.run(restart).await;
    assert_nothing_lost(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_answers_a_stalled_store_with_an_error_within_seconds() {
    let s = scenario("API on a stalled store").await;
    let event = publish(&s.direct, &s.principal, EventType::PaymentSucceeded, serde_json::json!({"id": "pay_1", "object": "payment"})).await;
    let api = Api::start(&s.system).await;
    let a = account(&s.direct).await;
    let key = a.test_key.expose().to_owned();
    let path = format!("/v1/events/{}", event.id);
    assert_eq!(api.get(&path, Some(&key)).await.status, 404, "a working store answers (another account's event)");
    s.ddb.set(Fault::Stall);
    // The client gives up after 20 s: a generous ceiling over the SDK's 4.5 s operation timeout.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let resp = client.get(format!("{}{path}", api.base)).bearer_auth(&key).send().await.expect("an answer, not a hang");
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    s.ddb.set(Fault::Pass);
    assert!(status == 500 || status == 503, "{status} {body}");
    assert_eq!(body["error"]["type"], "api_error", "{body}");
    assert_eq!(api.get(&path, Some(&key)).await.status, 404, "and it answers again once the store is back");
}
