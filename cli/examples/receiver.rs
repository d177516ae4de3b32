//! A webhook receiver, as the API reference's "Handling Events" shows it: verify the signature with
//! `construct_event`, handle each event once (deliveries can repeat), answer 200 quickly.
//!
//!     cargo run -q -p paygate-cli --example receiver -- whsec_…   # listens on 127.0.0.1:4242/webhooks

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use paygate::webhook::signature::SIGNATURE_HEADER;
use paygate::webhook::{DEFAULT_TOLERANCE_SECS, construct_event};
use paygate::{Event, EventType};

struct Receiver {
    secret: String,
    /// Ids of the events handled already (a real receiver keeps these in its database).
    processed: Mutex<HashSet<String>>,
}

async fn webhooks(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let event = match construct_event(&body, signature, &r.secret, DEFAULT_TOLERANCE_SECS) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Webhook signature verification failed: {e}");
            return (StatusCode::BAD_REQUEST, "Invalid signature");
        }
    };
    println!("{} {} signature verified", event.id, event.event_type);
    // 1. Handle events idempotently: the same event may arrive more than once.
    if !r.processed.lock().unwrap().insert(event.id.to_string()) {
        println!("{} {} already processed; skipped", event.id, event.event_type);
        return (StatusCode::OK, "duplicate");
    }
    // 2. Return 200 quickly: hand the work to a task.
    tokio::spawn(handle(event));
    (StatusCode::OK, "received")
}

/// A string field as text (no JSON quotes); `?` when absent.
fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or("?")
}

async fn handle(event: Event) {
    let object = &event.data.object;
    match event.event_type {
        EventType::PaymentSucceeded => println!("{} payment {} of {} {} succeeded", event.id, text(&object["id"]), object["amount"], text(&object["currency"])),
        EventType::PaymentFailed => println!("{} payment {} failed", event.id, text(&object["id"])),
        EventType::SubscriptionCreated => println!("{} new subscription {}", event.id, text(&object["id"])),
        EventType::SubscriptionCanceled => println!("{} subscription {} canceled", event.id, text(&object["id"])),
        other => println!("{} unhandled event type: {other}", event.id),
    }
}

#[tokio::main]
async fn main() {
    let secret = std::env::args().nth(1).or_else(|| std::env::var("PAYGATE_WEBHOOK_SECRET").ok()).filter(|s| !s.trim().is_empty()).unwrap_or_else(|| {
        eprintln!("usage: receiver whsec_… (the secret `paygate listen` printed), or set PAYGATE_WEBHOOK_SECRET");
        std::process::exit(2)
    });
    let addr = std::env::var("RECEIVER_ADDR").unwrap_or_else(|_| "127.0.0.1:4242".to_owned());
    let state = Arc::new(Receiver { secret, processed: Mutex::new(HashSet::new()) });
    let app = axum::Router::new().route("/webhooks", axum::routing::post(webhooks)).with_state(state);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("Receiving webhooks on http://{addr}/webhooks");
    axum::serve(listener, app).await.expect("serve");
}
