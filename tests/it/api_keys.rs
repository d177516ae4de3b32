//! `/v1/api_keys` through the local HTTP API on DynamoDB Local: listing, restricted keys and
//! their permissions (403 `permission_error`), rolling (the calling key included) and revoking,
//! test and live kept apart, the day of last use, the key cache bound, and keys stored before key
//! ids existed. Every response is checked against openapi.yaml by `Api`.

use std::time::Duration;

use integration_tests::{Api, account, eventually, stack};
use paygate::auth::Authenticator;
use paygate::ids::{Timestamp, unix_now};
use paygate::model::api_key::{Access, Permissions};
use paygate::store::api_keys::Created;
use serde_json::Value;

fn code(r: &integration_tests::Reply) -> (u16, &str) {
    (r.status, r.body["error"]["code"].as_str().or(r.body["error"]["type"].as_str()).unwrap_or(""))
}

fn ids(v: &Value) -> Vec<String> {
    v["data"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap().to_owned()).collect()
}

fn today() -> String {
    Timestamp(unix_now() / 86_400 * 86_400).to_string()
}

#[tokio::test]
async fn restricted_keys_are_created_and_held_to_their_permissions() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let sk = a.test_key.expose();

    // The secret key of each mode, and only that mode's.
    let test_list = api.get("/v1/api_keys", Some(sk)).await;
    assert_eq!(test_list.status, 200, "{}", test_list.body);
    let data = test_list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    let hint = format!("sk_test_…{}", a.test_key.hint());
    assert_eq!((data[0]["type"].as_str(), data[0]["hint"].as_str()), (Some("secret"), Some(hint.as_str())));
    assert_eq!(data[0]["permissions"], Value::Null);
    assert_eq!(data[0]["last_used"], today(), "the day it was used, written when the key was read");
    assert!(!test_list.body.to_string().contains(sk), "never the key itself");
    let live_list = api.get("/v1/api_keys", Some(a.live_key.expose())).await;
    assert_eq!(live_list.body["data"][0]["hint"], format!("sk_live_…{}", a.live_key.hint()));
    assert_ne!(ids(&live_list.body), ids(&test_list.body));

    // A read-only key for reporting, given as a form; another as JSON.
    let created = api.post("/v1/api_keys", sk, "name=Reporting&permissions[events]=read&permissions[webhook_endpoints]=read", None).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let rk = created.body["secret"].as_str().unwrap().to_owned();
    assert!(rk.starts_with("rk_test_"));
    assert_eq!(created.body["permissions"], serde_json::json!({"events": "read", "webhook_endpoints": "read"}));
    assert_eq!(created.body["name"], "Reporting");
    let writer = api.post("/v1/api_keys", sk, r#"{"permissions": {"webhook_endpoints": "write"}}"#, None).await;
    let writer_key = writer.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(writer.body["permissions"], serde_json::json!({"events": "none", "webhook_endpoints": "write"}));

    // What each may do.
    assert_eq!(api.get("/v1/events", Some(&rk)).await.status, 200);
    assert_eq!(api.get("/v1/webhook_endpoints", Some(&rk)).await.status, 200);
    let refused = api.post("/v1/webhook_endpoints", &rk, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fh&enabled_events[]=*", None).await;
    assert_eq!(code(&refused), (403, "insufficient_permissions"), "{}", refused.body);
    assert_eq!(refused.body["error"]["type"], "permission_error");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("webhook_endpoints: write") && message.contains(a.account_id.as_str()) && !message.contains(&rk), "{message}");
    let with_idempotency = api.post("/v1/webhook_endpoints", &rk, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fh&enabled_events[]=*", Some("rk-1")).await;
    assert_eq!(code(&with_idempotency), (403, "insufficient_permissions"), "the same with an Idempotency-Key");
    // A refused request did not run: its key is free for the request that does.
    let allowed = api.post("/v1/webhook_endpoints", sk, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fh&enabled_events[]=*", Some("rk-1")).await;
    assert_eq!((allowed.status, allowed.replayed), (200, false), "{}", allowed.body);
    assert_eq!(code(&api.get("/v1/events", Some(&writer_key)).await), (403, "insufficient_permissions"));
    let endpoint = api.post("/v1/webhook_endpoints", &writer_key, "url=http%3A%2F%2F127.0.0.1%3A9999%2Fh&enabled_events[]=*", None).await;
    assert_eq!(endpoint.status, 200, "{}", endpoint.body);
    for (method, path) in [("GET", "/v1/api_keys"), ("POST", "/v1/api_keys")] {
        let r = api.request(method.parse().unwrap(), path, Some(&writer_key), (method == "POST").then_some(""), None).await;
        assert_eq!(code(&r), (403, "insufficient_permissions"), "{method} {path} takes a secret key");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("secret key"));
    }

    // Bad input names the parameter.
    for (body, param) in [
        ("permissions[events]=write", "permissions[events]"),
        ("permissions[charges]=read", "permissions[charges]"),
        ("permissions[webhook_endpoints]=admin", "permissions[webhook_endpoints]"),
        ("name=", ""),
        ("colour=red", "colour"),
    ] {
        let r = api.post("/v1/api_keys", sk, body, None).await;
        if param.is_empty() {
            assert_eq!(r.status, 200, "an empty name is no name");
            assert_eq!(r.body["name"], Value::Null);
            continue;
        }
        assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some(param)), "{body}: {}", r.body);
    }
    let long = format!("name={}", "n".repeat(101));
    assert_eq!(api.post("/v1/api_keys", sk, &long, None).await.body["error"]["param"], "name");

    // Newest first, a page at a time.
    let all = api.get("/v1/api_keys", Some(sk)).await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 4, "the secret key and three restricted keys");
    let first = api.get("/v1/api_keys?limit=2", Some(sk)).await;
    assert_eq!(first.body["has_more"], true);
    let last = ids(&first.body)[1].clone();
    let rest = api.get(&format!("/v1/api_keys?limit=2&starting_after={last}"), Some(sk)).await;
    assert_eq!([ids(&first.body), ids(&rest.body)].concat(), ids(&all.body));
    assert_eq!(rest.body["has_more"], false);
}

#[tokio::test]
async fn keys_roll_and_revoke_and_the_old_key_stops_when_it_should() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let sk = a.test_key.expose().to_owned();
    let created = api.post("/v1/api_keys", &sk, "permissions[events]=read", None).await;
    let (rk_id, rk) = (created.body["id"].as_str().unwrap().to_owned(), created.body["secret"].as_str().unwrap().to_owned());

    // A roll with an hour's grace: both keys work, the old one until its expires_at.
    let rolled = api.post(&format!("/v1/api_keys/{rk_id}/roll"), &sk, "expires_in=3600", None).await;
    assert_eq!(rolled.status, 200, "{}", rolled.body);
    let new_rk = rolled.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_rk, rk);
    assert_eq!(rolled.body["permissions"], created.body["permissions"], "the new key may do what the old one did");
    for key in [&rk, &new_rk] {
        assert_eq!(api.get("/v1/events", Some(key)).await.status, 200);
    }
    let list = api.get("/v1/api_keys", Some(&sk)).await;
    let old = list.body["data"].as_array().unwrap().iter().find(|k| k["id"] == rk_id.as_str()).expect("listed until it expires").clone();
    let expires_at: Timestamp = old["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires_at.unix_seconds().abs_diff(unix_now() + 3600) <= 5, "{old}");
    let again = api.post(&format!("/v1/api_keys/{rk_id}/roll"), &sk, "", None).await;
    assert_eq!(again.status, 400, "a key is rolled once: {}", again.body);

    // Revoking the old key ends its grace at once.
    let revoked = api.post(&format!("/v1/api_keys/{rk_id}/revoke"), &sk, "", None).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(code(&api.get("/v1/events", Some(&rk)).await), (401, "api_key_expired"));
    assert_eq!(api.get("/v1/events", Some(&new_rk)).await.status, 200);
    assert!(!ids(&api.get("/v1/api_keys", Some(&sk)).await.body).contains(&rk_id), "a revoked key leaves the list");
    assert_eq!(api.post(&format!("/v1/api_keys/{rk_id}/revoke"), &sk, "", None).await.status, 404);

    // The mode's secret key is rolled, not revoked; rolling it with expires_in=0 (the key making
    // the call) ends it at once, and its replacement works.
    let sk_id = api.get("/v1/api_keys", Some(&sk)).await.body["data"].as_array().unwrap().iter().find(|k| k["type"] == "secret").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = api.post(&format!("/v1/api_keys/{sk_id}/revoke"), &sk, "", None).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("roll"));
    for (body, status) in [("expires_in=604801", 400), ("expires_in=-1", 400), ("expires_in=soon", 400)] {
        let r = api.post(&format!("/v1/api_keys/{sk_id}/roll"), &sk, body, None).await;
        assert_eq!((r.status, r.body["error"]["param"].as_str()), (status, Some("expires_in")), "{body}");
    }
    assert_eq!(api.post("/v1/api_keys/key_01M86Q64X5F9SJQX46N8MH7WTH/roll", &sk, "", None).await.status, 404);
    assert_eq!(api.post("/v1/api_keys/nope/roll", &sk, "", None).await.status, 404);
    let new_sk = api.post(&format!("/v1/api_keys/{sk_id}/roll"), &sk, "expires_in=0", Some("roll-sk")).await;
    assert_eq!(new_sk.status, 200, "{}", new_sk.body);
    let new_sk_key = new_sk.body["secret"].as_str().unwrap().to_owned();
    assert!(new_sk_key.starts_with("sk_test_"));
    assert_eq!(code(&api.get("/v1/events", Some(&sk)).await), (401, "api_key_expired"));
    // A replay of the roll answers the same key without showing it again.
    let replay = api.post(&format!("/v1/api_keys/{sk_id}/roll"), &new_sk_key, "expires_in=0", Some("roll-sk")).await;
    assert!(replay.replayed && replay.status == 200, "{}", replay.body);
    assert_eq!((replay.body["id"].clone(), replay.body.get("secret")), (new_sk.body["id"].clone(), None));
    let keys = api.get("/v1/api_keys", Some(&new_sk_key)).await;
    assert_eq!(keys.status, 200);
    assert!(!ids(&keys.body).contains(&sk_id), "the expired key is not listed");
    // Live keys are untouched by all of this.
    assert_eq!(api.get("/v1/events", Some(a.live_key.expose())).await.status, 200);
    assert_eq!(
        api.post(&format!("/v1/api_keys/{}/roll", new_sk.body["id"].as_str().unwrap()), a.live_key.expose(), "", None).await.status,
        404,
        "test keys are not live keys"
    );
}

#[tokio::test]
async fn a_replayed_create_answers_the_key_without_its_secret() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let sk = a.test_key.expose();
    let first = api.post("/v1/api_keys", sk, "permissions[events]=read", Some("create-rk")).await;
    let replay = api.post("/v1/api_keys", sk, "permissions[events]=read", Some("create-rk")).await;
    assert!(replay.replayed);
    assert_eq!(replay.body["id"], first.body["id"]);
    assert!(first.body["secret"].is_string());
    assert_eq!(replay.body.get("secret"), None, "a key is shown once");
}

#[tokio::test]
async fn other_instances_refuse_a_revoked_or_expired_key_within_the_cache_bound() {
    let stack = stack().await;
    let a = account(&stack).await;
    let p = integration_tests::test_principal(&a);
    let keys = stack.keys();
    let Created::Issued(rk) = keys.create_restricted(&p, None, Permissions { events: Access::Read, ..Default::default() }).await.unwrap() else {
        panic!("created")
    };
    let header = format!("Bearer {}", rk.key.expose());
    let bound = Duration::from_secs(2);
    let other = Authenticator::new(stack.keys(), bound);
    other.authenticate(Some(&header)).await.unwrap();
    // Revoked elsewhere: refused once the bound has passed (polled up to 10× the bound).
    assert!(keys.revoke_stored(&rk.stored).await.unwrap());
    let refused = eventually(bound * 10, || async { other.authenticate(Some(&header)).await.err() }).await;
    assert_eq!(refused.expect("refused within the bound").body()["error"]["code"], "api_key_expired");

    // Rolled elsewhere with 3 s of grace: works until then, refused after.
    let Created::Issued(rk2) = keys.create_restricted(&p, None, Permissions::default()).await.unwrap() else { panic!("created") };
    let header2 = format!("Bearer {}", rk2.key.expose());
    other.authenticate(Some(&header2)).await.unwrap();
    keys.roll(&rk2.stored, Timestamp(unix_now() + 3)).await.unwrap().expect("rolled");
    let refused = eventually(Duration::from_secs(30), || async { other.authenticate(Some(&header2)).await.err() }).await;
    assert_eq!(refused.expect("refused once expired").body()["error"]["code"], "api_key_expired");

    // The bound is at most 60 s whatever the setting says.
    assert_eq!(Authenticator::new(stack.keys(), Duration::from_secs(3600)).cache_bound(), Duration::from_secs(60));
}

#[tokio::test]
async fn a_key_stored_before_key_ids_is_given_one_when_it_is_used() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let account_id = paygate::AccountId::generate();
    let key = paygate::ApiKey::generate(paygate::Mode::Test);
    // The item as earlier versions wrote it.
    let item = [
        ("pk", AttributeValue::S(key.hash())),
        ("account_id", AttributeValue::S(account_id.to_string())),
        ("mode", AttributeValue::S("test".into())),
        ("created_at", AttributeValue::S("2025-01-01T00:00:00Z".into())),
        ("revoked", AttributeValue::Bool(false)),
        ("hint", AttributeValue::S(key.hint().into())),
    ];
    stack
        .clients
        .dynamodb
        .put_item()
        .table_name(&stack.config.api_keys_table)
        .set_item(Some(item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
        .send()
        .await
        .unwrap();
    let list = api.get("/v1/api_keys", Some(key.expose())).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!((data[0]["type"].as_str(), data[0]["created"].as_str()), (Some("secret"), Some("2025-01-01T00:00:00Z")));
    let id = data[0]["id"].as_str().unwrap();
    let rolled = api.post(&format!("/v1/api_keys/{id}/roll"), key.expose(), "expires_in=60", None).await;
    assert_eq!(rolled.status, 200, "an old key rolls like any other: {}", rolled.body);
}
