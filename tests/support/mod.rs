//! Shared set-up of the integration tests: clients for the real local servers, the template's
//! tables and queues, fresh accounts, the local HTTP API on a random port, and OpenAPI checks; the
//! receivers, the fault proxy and the conflict injector are `testkit`'s.

pub mod openapi;

pub use testkit::{conflicts, eventually, fault_proxy, receiver};

use futures::StreamExt;
use paygate::store::api_keys::NewAccount;
use paygate::{Event, EventId, EventRequest, EventType, Principal};
use paygate_cli::stack::Stack;

/// Clients for the local servers, with every table and queue of `template.yaml` created.
pub async fn stack() -> Stack {
    unlimited(Stack::local(None).await.unwrap_or_else(|e| panic!("{e}; or run the tests with `make test`")))
}

/// The tests' API has no per-account rate limit: many of them page through hundreds of events at
/// once for one account. `tests/it/events_api.rs` holds the limit itself, on a stack of its own.
fn unlimited(mut stack: Stack) -> Stack {
    stack.deps.config.rate_limits = paygate::http::rate_limit::RateLimits { live: 0, test: 0, ..Default::default() };
    stack
}

/// A private copy of every table and queue (names ending in a fresh suffix), for tests that run the
/// stream and queue pollers and must not see other tests' events or messages.
pub async fn isolated_stack() -> Stack {
    let suffix = ulid::Ulid::generate().to_string().to_lowercase();
    unlimited(Stack::local(Some(&suffix)).await.unwrap_or_else(|e| panic!("{e}; or run the tests with `make test`")))
}

/// Publishes an event of type `t` as `ingest-event` does (with its delivery states), a millisecond
/// after the call so that endpoints created just before get it.
pub async fn publish(stack: &Stack, p: &Principal, t: EventType, object: serde_json::Value) -> Event {
    use paygate::ingest::{DataObject, IngestData, IngestRequest};
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let input = IngestRequest {
        account_id: p.account.clone(),
        mode: p.mode,
        event_type: t,
        data: IngestData { object: DataObject::parse(object).expect("a valid data.object") },
        request: EventRequest::default(),
        idempotency_key: None,
    };
    let event = stack.publisher().publish(input).await.expect("publish");
    // As `paygate trigger` does: pollers running for this stack read the stream at once.
    paygate_cli::doorbell::ring(&stack.config.events_table);
    event
}

/// A new account with a test and a live key.
pub async fn account(stack: &Stack) -> NewAccount {
    stack.keys().create_account().await.expect("create account")
}

pub fn test_principal(a: &NewAccount) -> Principal {
    Principal { account: a.account_id.clone(), mode: a.test_key.mode() }
}

pub fn live_principal(a: &NewAccount) -> Principal {
    Principal { account: a.account_id.clone(), mode: a.live_key.mode() }
}

/// An event of type `t` created at `ms` (unix milliseconds), with a little payload.
pub fn event_at(t: EventType, ms: u64) -> Event {
    let id = EventId::from_ulid(ulid::Ulid::from_parts(ms, rand_u128()));
    let object = serde_json::json!({"id": format!("obj_{ms}"), "object": t.family().as_str(), "amount": 5000, "currency": "GHS"});
    Event::with_id(id, t, object.as_object().cloned().unwrap_or_default(), EventRequest::default())
}

/// `event` as an Events item of the shape written before events carried their JSON: `data` and
/// `request` as maps (such items stay readable until their TTL).
pub fn attribute_event_item(p: &Principal, event: &Event) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    use paygate::store::events::{family_partition, type_partition};
    let item = serde_json::json!({
        "pk": p.partition(), "id": event.id, "type_pk": type_partition(&p.partition(), event.event_type),
        "family_pk": family_partition(&p.partition(), event.event_type.family()), "type": event.event_type, "created_at": event.created_at,
        "data": event.data.object, "pending_webhooks": event.pending_webhooks, "request": event.request, "expires_at": 4_000_000_000u64,
    });
    serde_dynamo::to_item(item).expect("an event item")
}

fn rand_u128() -> u128 {
    ulid::Ulid::generate().0 & ((1u128 << 80) - 1)
}

/// Every item of the Events table under the partition key `pk`, as stored.
pub async fn events_items(stack: &Stack, pk: &str) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let out = stack
        .clients
        .dynamodb
        .query()
        .table_name(&stack.config.events_table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", aws_sdk_dynamodb::types::AttributeValue::S(pk.to_owned()))
        .send()
        .await
        .unwrap();
    out.items.unwrap_or_default()
}

/// Writes events, 16 at a time; returns them sorted newest first.
pub async fn seed(stack: &Stack, principal: &Principal, mut events: Vec<Event>) -> Vec<Event> {
    let store = stack.events();
    futures::stream::iter(events.iter())
        .map(|e| {
            let store = &store;
            async move { store.put_new(principal, e).await.expect("put event") }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    events.sort_by_key(|e| std::cmp::Reverse(e.id));
    events
}

/// The local HTTP API (`paygate dev`'s server) on a random port of 127.0.0.1, with a real client.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// What one request returned.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub request_id: Option<String>,
    pub body: serde_json::Value,
    /// `Idempotent-Replayed: true` was set.
    pub replayed: bool,
    /// The `Retry-After` header.
    pub retry_after: Option<String>,
}

impl Api {
    pub async fn start(stack: &Stack) -> Api {
        Self::start_with(stack.functions()).await
    }

    /// The API over these functions (a stricter URL policy, say).
    pub async fn start_with(functions: paygate_cli::gateway::Functions) -> Api {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            paygate_cli::gateway::serve(listener, functions, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Api { base, client: reqwest::Client::new(), _shutdown: tx }
    }

    /// GET `path_and_query` with an optional key; checks the response against `openapi.yaml`.
    pub async fn get(&self, path_and_query: &str, key: Option<&str>) -> Reply {
        self.request(reqwest::Method::GET, path_and_query, key, None, None).await
    }

    /// POST a form (`a=b&c[]=d`) or, when it starts with `{`, JSON.
    pub async fn post(&self, path: &str, key: &str, body: &str, idempotency_key: Option<&str>) -> Reply {
        self.request(reqwest::Method::POST, path, Some(key), Some(body), idempotency_key).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.request(reqwest::Method::DELETE, path, Some(key), None, None).await
    }

    /// One request; checks the response against `openapi.yaml` and the `Request-Id` header.
    pub async fn request(&self, method: reqwest::Method, path_and_query: &str, key: Option<&str>, body: Option<&str>, idempotency_key: Option<&str>) -> Reply {
        let mut req = self.client.request(method.clone(), format!("{}{}", self.base, path_and_query));
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(b) = body {
            let ct = if b.starts_with('{') { "application/json" } else { "application/x-www-form-urlencoded" };
            req = req.header("content-type", ct).body(b.to_owned());
        }
        if let Some(i) = idempotency_key {
            req = req.header("idempotency-key", i);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let request_id = resp.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let replayed = resp.headers().get("idempotent-replayed").is_some();
        let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(resp.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
        let body: serde_json::Value = resp.json().await.expect("JSON body");
        let path = path_and_query.split('?').next().unwrap_or_default();
        openapi::check_response(&method.as_str().to_lowercase(), path, status, &body);
        assert!(request_id.as_deref().is_some_and(|r| r.starts_with("req_")), "Request-Id header on every response");
        Reply { status, request_id, body, replayed, retry_after }
    }
}

/// One SQS batch of these deliveries as Lambda hands it over from the queue at `queue_url` (each
/// message with its queue's ARN, which tells the deliverer its lane).
pub fn sqs_batch(queue_url: &str, deliveries: &[paygate::webhook::fanout::DeliveryMessage]) -> aws_lambda_events::sqs::SqsEvent {
    let mut batch = aws_lambda_events::sqs::SqsEvent::default();
    batch.records = deliveries
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut m = aws_lambda_events::sqs::SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(serde_json::to_string(d).unwrap());
            m.event_source_arn = Some(paygate::aws::local_queue_arn(queue_url));
            m
        })
        .collect();
    batch
}

/// One SQS batch with a first receive of each event's delivery to `endpoint` (message id: the
/// event id), as the delivery queue hands it to the deliverer.
pub fn delivery_batch(p: &Principal, events: &[Event], endpoint: paygate::EndpointId) -> aws_lambda_events::sqs::SqsEvent {
    let mut batch = aws_lambda_events::sqs::SqsEvent::default();
    batch.records = events
        .iter()
        .map(|e| {
            let mut m = aws_lambda_events::sqs::SqsMessage::default();
            m.message_id = Some(e.id.to_string());
            m.body = Some(serde_json::to_string(&paygate::webhook::fanout::DeliveryMessage::new(p, e.id, endpoint)).unwrap());
            m
        })
        .collect();
    batch
}
