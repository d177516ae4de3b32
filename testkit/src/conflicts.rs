//! A DynamoDB front on 127.0.0.1 that answers the next N `TransactWriteItems` calls as DynamoDB does
//! when another transaction holds an item (`TransactionCanceledException` with a
//! `TransactionConflict` reason), and forwards every other request to DynamoDB Local unchanged.
//! DynamoDB Local rarely raises conflicts of its own, so this is how contention reaches the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(Clone)]
pub struct ConflictInjector {
    pub url: String,
    upstream: String,
    to_inject: Arc<AtomicUsize>,
    injected: Arc<AtomicUsize>,
    client: reqwest::Client,
}

impl ConflictInjector {
    /// In front of the DynamoDB at `upstream` (`http://127.0.0.1:8000`), injecting nothing yet.
    pub async fn start(upstream: &str) -> ConflictInjector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let me = ConflictInjector {
            url: format!("http://{}", listener.local_addr().unwrap()),
            upstream: upstream.trim_end_matches('/').to_owned(),
            to_inject: Arc::default(),
            injected: Arc::default(),
            client: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(handle).with_state(me.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        me
    }

    /// The next `n` transactions are cancelled for contention.
    pub fn inject(&self, n: usize) {
        self.to_inject.store(n, Ordering::SeqCst);
    }

    /// How many transactions were cancelled so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }
}

async fn handle(State(me): State<ConflictInjector>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if target.ends_with(".TransactWriteItems") && me.to_inject.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        me.injected.fetch_add(1, Ordering::SeqCst);
        let items = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|b| b["TransactItems"].as_array().map(Vec::len)).unwrap_or(1);
        let mut reasons = vec![serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})];
        reasons.resize(items, serde_json::json!({"Code": "None"}));
        let body = serde_json::json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
            "CancellationReasons": reasons,
        });
        return (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.0")], body.to_string()).into_response();
    }
    let mut forwarded = me.client.request(method, format!("{}{}", me.upstream, uri));
    for (name, value) in headers.iter().filter(|(n, _)| *n != "host" && *n != "content-length") {
        forwarded = forwarded.header(name, value);
    }
    match forwarded.body(body).send().await {
        Ok(r) => {
            let status = r.status();
            let headers: Vec<(String, String)> = r
                .headers()
                .iter()
                .filter(|(n, _)| *n == "content-type" || n.as_str().starts_with("x-amz"))
                .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_owned())))
                .collect();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut resp = (status, bytes).into_response();
            for (n, v) in headers {
                resp.headers_mut().insert(axum::http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
            }
            resp
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
