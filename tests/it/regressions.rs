//! One regression test per defect the first fault probe found besides lost deliveries, each through
//! the real HTTP API (`paygate dev`'s gateway) on the local servers.

use integration_tests::openapi::{schema_accepts, spec};
use integration_tests::{Api, account, publish, stack, test_principal};
use paygate::EventType;
use serde_json::json;

/// A raw request, for what the API itself refuses before any documented route.
async fn raw(api: &Api, method: &str, path: &str, key: &str, body: Option<String>) -> (u16, Option<String>, Option<String>, serde_json::Value) {
    let mut req = api.client.request(method.parse().unwrap(), format!("{}{path}", api.base)).bearer_auth(key);
    if let Some(b) = body {
        req = req.header("content-type", "application/x-www-form-urlencoded").body(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let request_id = resp.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let allow = resp.headers().get("allow").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = if method == "HEAD" { json!(null) } else { resp.json().await.unwrap_or(json!(null)) };
    (status, request_id, allow, body)
}

#[tokio::test]
async fn created_bounds_past_the_last_id_time_list_nothing_instead_of_everything() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    publish(&stack, &test_principal(&a), EventType::PaymentCreated, json!({"id": "pay_1", "object": "payment"})).await;
    let key = a.test_key.expose();
    assert_eq!(api.get("/v1/events", Some(key)).await.body["data"].as_array().unwrap().len(), 1);
    for q in ["created[gte]=281474976710656", "created=281474976710656", "created[gt]=281474976710655", "created[gte]=18446744073709551615"] {
        let r = api.get(&format!("/v1/events?{q}"), Some(key)).await;
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        assert_eq!(r.body["data"], json!([]), "{q} is after every event, not before");
    }
}

#[tokio::test]
async fn oversized_urls_descriptions_and_bodies_are_400s() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let key = a.test_key.expose();
    let long_url = format!("http://127.0.0.1:9999/{}", "a".repeat(3000));
    let r = api.post("/v1/webhook_endpoints", key, &format!("url={long_url}&enabled_events[]=*"), None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str(), r.body["error"]["param"].as_str()), (400, Some("parameter_invalid"), Some("url")));
    let r = api.post("/v1/webhook_endpoints", key, &format!("url=http://127.0.0.1:9999/a&enabled_events[]=*&description={}", "d".repeat(5001)), None).await;
    assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some("description")));
    // The probe's 450 kB URL: refused for its size before anything is stored.
    let huge = format!("url=http://127.0.0.1:9999/{}&enabled_events[]=*", "a".repeat(450_000));
    let r = api.post("/v1/webhook_endpoints", key, &huge, None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("parameter_invalid")), "{}", r.body);
    let created = api.post("/v1/webhook_endpoints", key, "url=http://127.0.0.1:9999/a&enabled_events[]=*", None).await;
    let path = format!("/v1/webhook_endpoints/{}", created.body["id"].as_str().unwrap());
    let r = api.post(&path, key, &format!("url=http://127.0.0.1:9999/{}", "b".repeat(2100)), None).await;
    assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some("url")), "updates too");
}

#[tokio::test]
async fn idempotency_keys_that_are_not_printable_ascii_are_400s() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let key = a.test_key.expose();
    for bad in [http::HeaderValue::from_bytes("clé-1".as_bytes()).unwrap(), http::HeaderValue::from_static("")] {
        let resp = api
            .client
            .post(format!("{}/v1/webhook_endpoints", api.base))
            .bearer_auth(key)
            .header("idempotency-key", bad.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body("url=http://127.0.0.1:9999/a&enabled_events[]=*")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{bad:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["param"], "Idempotency-Key");
    }
    let list = api.get("/v1/webhook_endpoints", Some(key)).await;
    assert_eq!(list.body["data"], json!([]), "nothing was created by the refused requests");
    let header = &spec()["components"]["parameters"]["IdempotencyKey"]["schema"];
    assert_eq!(header["minLength"], 1, "documented");
}

#[tokio::test]
async fn the_gateway_answers_in_stripe_shape_with_a_request_id() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let key = a.test_key.expose();
    let cases: Vec<(&str, String, Option<String>, u16)> = vec![
        ("GET", "/v1/nothing".into(), None, 404),
        ("PUT", "/v1/events".into(), None, 405),
        ("DELETE", "/v1/events/evt_01M86Q64X5F9SJQX46N8MH7WTH".into(), None, 405),
        ("POST", "/v1/events".into(), Some(String::new()), 405),
        ("GET", format!("/v1/events?type={}", "a".repeat(9000)), None, 414),
        ("POST", "/v1/webhook_endpoints".into(), Some("x".repeat((1 << 20) + 1)), 413),
    ];
    for (method, path, body, status) in cases {
        let (got, request_id, allow, body) = raw(&api, method, &path, key, body).await;
        assert_eq!(got, status, "{method} {}", &path[..path.len().min(40)]);
        assert!(request_id.is_some_and(|r| r.starts_with("req_")), "{method}: Request-Id");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{method}: {body}");
        assert!(body["error"]["message"].is_string());
        if status == 405 {
            assert!(allow.is_some_and(|a| a.contains("GET")), "{method}: Allow");
        }
    }
    let (status, request_id, allow, _) = raw(&api, "HEAD", "/v1/events", key, None).await;
    assert_eq!(status, 405);
    assert!(request_id.is_some() && allow.is_some());
}

#[tokio::test]
async fn the_spec_and_the_api_agree_on_timestamps_and_cursors() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let key = a.test_key.expose();
    let r = api.get("/v1/events?created[gte]=1969-12-31T23:59:59Z", Some(key)).await;
    assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some("created[gte]")));
    assert!(!schema_accepts("Timestamp", &json!("1969-12-31T23:59:59Z")), "the spec refuses it too");
    assert!(schema_accepts("Timestamp", &json!("1970-01-01T00:00:00Z")));
    assert!(schema_accepts("Timestamp", &json!(0)));
    assert!(!schema_accepts("Timestamp", &json!(-1)));
    let r = api.get("/v1/webhook_endpoints?starting_after=we_01M86Q64Q75548AGQCZMZ8CETQ&ending_before=we_01M86Q64Q75548AGQCZMZ8CETQ", Some(key)).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("parameters_exclusive")));
    let params = spec()["paths"]["/v1/webhook_endpoints"]["get"]["parameters"].as_array().unwrap();
    let described = |n: &str| params.iter().find(|p| p["name"] == n).and_then(|p| p["description"].as_str()).unwrap_or_default().to_owned();
    assert!(
        described("starting_after").contains("ending_before") && described("ending_before").contains("starting_after"),
        "the one-cursor rule is in the spec"
    );
}

/// Every API response, errors included, is kept out of caches (some carry secrets) and never
/// sniffed as another type.
#[tokio::test]
async fn every_api_response_says_no_store_and_nosniff() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let key = a.test_key.expose();
    for (method, path, key) in [
        ("GET", "/v1/events", key),
        ("GET", "/v1/events/evt_01M86Q64X5F9SJQX46N8MH7WTH", key),
        ("GET", "/v1/events", "sk_test_nope"),
        ("GET", "/v1/nowhere", key),
        ("POST", "/v1/webhook_endpoints", key),
    ] {
        let resp = api.client.request(method.parse().unwrap(), format!("{}{path}", api.base)).bearer_auth(key).send().await.unwrap();
        let h = resp.headers();
        assert_eq!(h.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"), "{method} {path} ({})", resp.status());
        assert_eq!(h.get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"), "{method} {path}");
    }
}

/// An Idempotency-Key whose request crashed before it finished (the claim left "in progress")
/// answers 409 only for a few minutes, not for the whole 24 hours of the record.
#[tokio::test]
async fn a_crashed_requests_idempotency_claim_expires_after_minutes() {
    use paygate::store::idempotency::{CLAIM_TIMEOUT_SECS, Claim, IdempotencyStore};
    let stack = stack().await;
    let p = test_principal(&account(&stack).await);
    let store = IdempotencyStore::new(stack.clients.dynamodb.clone(), &stack.config.webhook_endpoints_table);
    let header = http::HeaderValue::from_static("crash-1");
    let key = paygate::http::idempotency::key_of(Some(&header)).unwrap();
    let t = paygate::ids::unix_now();
    assert!(matches!(store.claim_at(&p, key.as_ref(), "fp", t).await.unwrap(), Claim::Fresh(_)));
    // The request crashes here: neither finish nor release.
    let e = paygate::http::idempotency::refusal(store.claim_at(&p, key.as_ref(), "fp", t + 10).await.unwrap());
    assert_eq!(e.status(), 409, "still running, as far as anyone knows");
    let Claim::Fresh(again) = store.claim_at(&p, key.as_ref(), "fp", t + CLAIM_TIMEOUT_SECS + 1).await.unwrap() else { panic!("a stale claim is free again") };
    store.finish(&p, &again, 200, &json!({"ok": true})).await.unwrap();
    // Finished: replayed from then on, however old.
    let replay = store.claim_at(&p, key.as_ref(), "fp", t + 2 * CLAIM_TIMEOUT_SECS + 2).await.unwrap();
    assert!(matches!(replay, Claim::Replay(200, ref body) if body["ok"] == true), "{replay:?}");
}

/// An error that echoes what the request sent echoes at most 64 characters of it.
#[tokio::test]
async fn errors_echo_at_most_a_short_piece_of_the_input() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let key = a.test_key.expose();
    let long = "x".repeat(5000);
    for path in [format!("/v1/events/evt_{long}"), format!("/v1/events?{long}=1"), format!("/v1/webhook_endpoints/we_{long}")] {
        let r = api.get(&path, Some(key)).await;
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(matches!(r.status, 400 | 404) && message.len() < 200 && message.contains('…'), "{}: {} {message}", &path[..30], r.status);
        assert!(r.body["error"]["param"].as_str().is_none_or(|p| p.len() < 100), "{}", &path[..30]);
    }
}
