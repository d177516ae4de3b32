//! Real webhook receivers on 127.0.0.1 that verify both signature schemes, answer as scripted and
//! count what they got (and how many requests were in flight at once).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use paygate::webhook::signature::{SIGNATURE_HEADER, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
use paygate::webhook::{DEFAULT_TOLERANCE_SECS, construct_event, verify_standard};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    /// Wait, then answer 200.
    Slow(Duration),
    /// This status with a body of this many bytes.
    Big(u16, usize),
    /// 429 with `Retry-After` of this many seconds.
    TooMany(u64),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Vec<u8>,
    pub event: Option<paygate::Event>,
    /// Both schemes verified with the receiver's secret(s).
    pub verified: bool,
    /// How many `v1=` signatures the Stripe-style header carried.
    pub v1_count: usize,
    /// Unix milliseconds when it arrived.
    pub at_ms: u64,
    /// The status it was answered with.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    secrets: Vec<String>,
    script: VecDeque<Answer>,
    received: Vec<Received>,
}

#[derive(Clone, Default)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    /// Requests begun (answered or not).
    started: Arc<AtomicUsize>,
    pub url: String,
}

impl Receiver {
    /// Starts a receiver; `script` answers the first requests, 200 after that.
    pub async fn start(script: Vec<Answer>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver { url: format!("http://{}/webhooks", listener.local_addr().unwrap()), ..Receiver::default() };
        r.inner.lock().unwrap().script = script.into();
        let app = axum::Router::new().route("/webhooks", axum::routing::post(handle)).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    /// The secrets a delivery must verify with (every one of them, in both schemes).
    pub fn expect_secrets(&self, secrets: &[&str]) {
        self.inner.lock().unwrap().secrets = secrets.iter().map(|s| s.to_string()).collect();
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Answers 200 from now on (the scripted answers not given yet are dropped).
    pub fn recover(&self) {
        self.inner.lock().unwrap().script.clear();
    }

    /// Counts the most requests in flight at once from now on.
    pub fn reset_max_in_flight(&self) {
        self.max_in_flight.store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Requests begun so far, answered or not (a receiver that never answers counts its attempts).
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until `n` requests have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        crate::eventually(Duration::from_secs(30), || async { Some(self.received()).filter(|r| r.len() >= n) }).await.unwrap_or_else(|| self.received())
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// One request in flight, until its handler ends or is dropped (the client went away: a
/// withdrawn attempt).
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let at_ms = paygate::ids::unix_now_ms();
    r.started.fetch_add(1, Ordering::SeqCst);
    let now = r.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let in_flight = InFlight(r.in_flight.clone());
    r.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let (secrets, answer) = {
        let mut inner = r.inner.lock().unwrap();
        (inner.secrets.clone(), inner.script.pop_front().unwrap_or(Answer::Status(200)))
    };
    let sig = header(&headers, SIGNATURE_HEADER);
    let verified = !secrets.is_empty()
        && header(&headers, "content-type") == "application/json"
        && secrets.iter().all(|s| {
            construct_event(&body, sig, s, DEFAULT_TOLERANCE_SECS).is_ok()
                && verify_standard(
                    &body,
                    header(&headers, WEBHOOK_ID),
                    header(&headers, WEBHOOK_TIMESTAMP),
                    header(&headers, WEBHOOK_SIGNATURE),
                    s,
                    DEFAULT_TOLERANCE_SECS,
                )
                .is_ok()
        });
    let event = serde_json::from_slice(&body).ok();
    if let Answer::Slow(d) = &answer {
        tokio::time::sleep(*d).await;
    }
    let status = match answer {
        Answer::Status(s) | Answer::Big(s, _) => s,
        Answer::Slow(_) => 200,
        Answer::TooMany(_) => 429,
    };
    r.inner.lock().unwrap().received.push(Received { body: body.to_vec(), event, verified, v1_count: sig.matches("v1=").count(), at_ms, status });
    drop(in_flight);
    match answer {
        Answer::Status(s) => (StatusCode::from_u16(s).unwrap(), "answered").into_response(),
        Answer::Slow(_) => (StatusCode::OK, "slow").into_response(),
        Answer::Big(s, n) => (StatusCode::from_u16(s).unwrap(), vec![b'x'; n]).into_response(),
        Answer::TooMany(secs) => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], "slow down").into_response(),
    }
}
