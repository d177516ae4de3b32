//! The Events and ApiKeys tables on DynamoDB Local: puts, gets, isolation, ingestion, TTL.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeyType};
use integration_tests::{account, attribute_event_item, event_at, eventually, live_principal, stack, test_principal};
use paygate::auth::{Authenticator, authenticate};
use paygate::config::Config;
use paygate::ingest::IngestError;
use paygate::store::StoreError;
use paygate::{AccountId, EventType, Mode, Principal};
use paygate_cli::stack::provision::{Resources, TEMPLATE};
use serde_json::json;

#[tokio::test]
async fn put_then_get_and_other_accounts_or_modes_find_nothing() {
    let stack = stack().await;
    let (a, b) = (account(&stack).await, account(&stack).await);
    let store = stack.events();
    let event = paygate::Event::new(
        EventType::PaymentSucceeded,
        json!({"id": "pay_1", "object": "payment", "amount": 5000, "currency": "GHS"}).as_object().unwrap().clone(),
        paygate::EventRequest { id: Some("req_1".into()), idempotency_key: Some("order_1".into()) },
    );
    store.put_new(&test_principal(&a), &event).await.unwrap();

    let got = store.get(&test_principal(&a), event.id).await.unwrap();
    assert_eq!(got.as_ref().map(|e| e.to_event().unwrap()), Some(event.clone()));
    // Byte for byte, the order of data's keys included, as it was written.
    assert_eq!(got.as_ref().unwrap().as_str(), serde_json::to_string(&event).unwrap());
    assert_eq!(serde_json::to_value(got.unwrap()).unwrap(), serde_json::to_value(&event).unwrap());
    assert_eq!(store.get(&live_principal(&a), event.id).await.unwrap(), None, "live never sees test");
    assert_eq!(store.get(&test_principal(&b), event.id).await.unwrap(), None, "other accounts never see it");
}

#[tokio::test]
async fn a_put_never_overwrites_an_event() {
    let stack = stack().await;
    let a = account(&stack).await;
    let store = stack.events();
    let first = event_at(EventType::RefundCreated, 1_763_000_000_000);
    store.put_new(&test_principal(&a), &first).await.unwrap();
    let mut second = first.clone();
    second.pending_webhooks = 7;
    assert!(matches!(store.put_new(&test_principal(&a), &second).await, Err(StoreError::Conflict)));
    assert_eq!(store.get(&test_principal(&a), first.id).await.unwrap().map(|e| e.to_event().unwrap()), Some(first));
}

#[tokio::test]
async fn items_carry_keys_and_a_ttl() {
    let stack = stack().await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let e = paygate::Event::new(EventType::PayoutCompleted, Default::default(), Default::default());
    stack.events().put_new(&p, &e).await.unwrap();
    let item = stack
        .clients
        .dynamodb
        .get_item()
        .table_name(&stack.config.events_table)
        .key("pk", AttributeValue::S(p.partition()))
        .key("id", AttributeValue::S(e.id.to_string()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let ttl: u64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(ttl, e.created_at.unix_seconds() + 30 * 86_400);
    assert_eq!(item["type_pk"].as_s().unwrap(), &format!("{}#payout.completed", p.partition()));
    assert_eq!(item["family_pk"].as_s().unwrap(), &format!("{}#payout", p.partition()));
    // The event is stored once, as the JSON the API sends; not again as attributes.
    assert_eq!(serde_json::from_str::<paygate::Event>(item["json"].as_s().unwrap()).unwrap(), e);
    assert!(!item.contains_key("data") && !item.contains_key("request"), "{:?}", item.keys());
}

/// Items written before events carried their JSON (still there until their TTL after an upgrade)
/// read as before: by GET, in a list beside new ones, in the deliverer's batch read, with their
/// current `pending_webhooks`.
#[tokio::test]
async fn events_stored_as_attributes_still_read() {
    let stack = stack().await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let store = stack.events();
    let old = paygate::Event::new(
        EventType::RefundCreated,
        json!({"id": "re_1", "object": "refund", "amount": 700, "nested": {"list": [1, "two", null]}}).as_object().unwrap().clone(),
        paygate::EventRequest { id: Some("req_1".into()), idempotency_key: None },
    );
    stack.clients.dynamodb.put_item().table_name(&store.table).set_item(Some(attribute_event_item(&p, &old))).send().await.unwrap();
    let new = paygate::Event::new(EventType::RefundCreated, Default::default(), Default::default());
    store.put_new(&p, &new).await.unwrap();
    let change = store.pending_change(&p, old.id, 2).await.unwrap();
    stack.clients.dynamodb.transact_write_items().transact_items(change).send().await.unwrap();

    let mut expected = old.clone();
    expected.pending_webhooks = 2;
    let got = store.get(&p, old.id).await.unwrap().unwrap();
    // Equal as values: a DynamoDB map did not keep the order of data's keys (the JSON does).
    assert_eq!(got.to_event().unwrap(), expected);
    let params = paygate::list::ListParams::parse("type=refund.created").unwrap();
    let page = paygate::store::event_list::list_events(&store, &p, &params).await.unwrap().page;
    assert_eq!(page.data.iter().map(|e| e.to_event().unwrap()).collect::<Vec<_>>(), vec![new, expected.clone()]);
    let batch = paygate::store::get_many(&stack.clients.dynamodb, &[store.item_ref(&p, old.id).await.unwrap()]).await.unwrap();
    let read = paygate::store::EventStore::event_of(batch.into_iter().next().flatten().unwrap()).unwrap();
    assert_eq!(read.to_event().unwrap(), expected);
}

#[tokio::test]
async fn ingest_validates_and_publishes() {
    let stack = stack().await;
    let a = account(&stack).await;
    let store = stack.events();
    let publisher = stack.publisher();
    let ok = json!({
        "account_id": a.account_id, "mode": "live", "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_1", "object": "checkout.session"}},
        "request": {"id": "req_9", "idempotency_key": null}
    });
    let event = publisher.handle(ok).await.unwrap();
    assert_eq!(event["type"], "checkout.session.completed");
    assert_eq!(event["pending_webhooks"], 0);
    let id = event["id"].as_str().unwrap().parse().unwrap();
    let live = Principal { account: a.account_id.clone(), mode: Mode::Live };
    assert_eq!(serde_json::to_value(store.get(&live, id).await.unwrap().unwrap()).unwrap(), event);

    for bad in [
        json!({"account_id": a.account_id, "mode": "live", "type": "payment.exploded", "data": {"object": {}}}),
        json!({"account_id": "nobody", "mode": "live", "type": "payment.created", "data": {"object": {}}}),
        json!({"account_id": a.account_id, "mode": "prod", "type": "payment.created", "data": {"object": {}}}),
        json!({"account_id": a.account_id, "mode": "test", "type": "payment.created"}),
        json!({"account_id": a.account_id, "mode": "test", "type": "payment.created", "data": {"object": 5}}),
        json!({"account_id": a.account_id, "mode": "test", "type": "payment.created", "data": {"object": {}}, "id": "evt_mine"}),
    ] {
        assert!(matches!(publisher.handle(bad.clone()).await, Err(IngestError::Invalid(_))), "{bad}");
    }
}

/// Every item of the Events table under `p`'s partition, as stored.
async fn stored_events(stack: &paygate_cli::stack::Stack, p: &Principal) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    integration_tests::events_items(stack, &p.partition()).await
}

/// A producer's `idempotency_key` makes a publish exactly-once: a repeat returns the first event
/// (same id, same `created_at`) and opens no delivery; 20 concurrent identical publishes make one
/// event; the same key with another object is refused, naming the key; a bad key is a 400.
#[tokio::test]
async fn a_producer_key_publishes_one_event_however_often_it_is_sent() {
    use paygate::webhook::endpoints::{EnabledEvents, new_endpoint};
    let stack = stack().await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let ep = new_endpoint(Mode::Test, "https://example.com/hook".parse().unwrap(), EnabledEvents::All, None);
    stack.endpoints().create(&p, &ep).await.unwrap();
    let publisher = stack.publisher();
    let input = |key: &str, amount: u64| {
        json!({
            "account_id": a.account_id, "mode": "test", "type": "payment.succeeded", "idempotency_key": key,
            // The same object with its keys in another order is the same publish.
            "data": {"object": if amount.is_multiple_of(2) { json!({"id": "pay_1", "object": "payment", "amount": amount}) } else { json!({"amount": amount - 1, "object": "payment", "id": "pay_1"}) }},
            "request": {"id": "req_1", "idempotency_key": "merchant-order-7"}
        })
    };
    let first = publisher.handle(input("order-7-paid", 500)).await.unwrap();
    let again = publisher.handle(input("order-7-paid", 501)).await.unwrap();
    assert_eq!(again, first, "the same event: id, created_at, pending_webhooks, data, request");
    assert_eq!(first["request"]["idempotency_key"], "merchant-order-7", "the merchant's request key is the event's, not the producer's");

    // Twenty at once: one event.
    let concurrent = futures::future::join_all((0..20).map(|_| publisher.handle(input("order-8-paid", 700)))).await;
    let ids: std::collections::HashSet<String> = concurrent.into_iter().map(|r| r.unwrap()["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");

    // What was written: two events, each with one delivery state.
    let events = stored_events(&stack, &p).await;
    assert_eq!(events.len(), 2, "two events in all");
    for id in [first["id"].as_str().unwrap(), ids.iter().next().unwrap()] {
        let states = stack.deliveries().states(&p, id.parse().unwrap()).await.unwrap();
        assert_eq!(states.len(), 1, "one delivery for {id}");
    }

    // The same key, another object: refused, naming the key.
    let err = publisher.handle(input("order-7-paid", 900)).await.unwrap_err();
    assert!(matches!(err, IngestError::KeyReused(_)) && err.to_string().contains("order-7-paid"), "{err}");
    // Keys are 1 to 255 printable ASCII characters.
    for bad in ["", "caf\u{e9}", &"k".repeat(256)] {
        assert!(matches!(publisher.handle(input(bad, 500)).await, Err(IngestError::Invalid(_))), "{bad:?}");
    }
}

#[tokio::test]
async fn revoked_and_unknown_keys_are_refused() {
    let stack = stack().await;
    let a = account(&stack).await;
    let keys = stack.keys();
    let header = format!("Bearer {}", a.live_key.expose());
    let p = authenticate(&keys, Some(&header)).await.unwrap();
    assert_eq!(p, live_principal(&a));
    keys.revoke(&a.live_key).await.unwrap();
    let err = authenticate(&keys, Some(&header)).await.unwrap_err();
    assert_eq!(err.body()["error"]["code"], "api_key_expired");
    let unknown = paygate::ApiKey::generate(Mode::Test);
    let err = authenticate(&keys, Some(&format!("Bearer {}", unknown.expose()))).await.unwrap_err();
    assert_eq!(err.body()["error"]["code"], "api_key_invalid");
    assert!(!err.to_string().contains(&unknown.expose()[8..]), "messages never show the key");
    // The table holds hashes only.
    let item = stack
        .clients
        .dynamodb
        .get_item()
        .table_name(&stack.config.api_keys_table)
        .key("pk", AttributeValue::S(a.test_key.hash()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let stored = format!("{item:?}");
    assert!(!stored.contains(a.test_key.expose()), "raw keys are never stored");
    assert_eq!(item["account_id"].as_s().unwrap(), a.account_id.as_str());
    let _: AccountId = a.account_id.as_str().parse().unwrap();
}

#[tokio::test]
async fn a_warm_function_remembers_valid_keys_for_the_cache_bound_only() {
    let stack = stack().await;
    let a = account(&stack).await;
    let header = format!("Bearer {}", a.test_key.expose());
    // Remembered: with the key revoked in the table, a warm function still takes it, unread.
    let warm = Authenticator::new(stack.keys(), Duration::from_secs(600));
    assert_eq!(warm.authenticate(Some(&header)).await.unwrap(), test_principal(&a));
    stack.keys().revoke(&a.test_key).await.unwrap();
    assert_eq!(warm.authenticate(Some(&header)).await.unwrap(), test_principal(&a), "within the bound, from memory");
    // Past the bound the table is read again, and the revocation holds.
    let short = Authenticator::new(stack.keys(), Duration::from_millis(200));
    let b = account(&stack).await;
    let b_header = format!("Bearer {}", b.test_key.expose());
    short.authenticate(Some(&b_header)).await.unwrap();
    stack.keys().revoke(&b.test_key).await.unwrap();
    let refused = eventually(Duration::from_secs(10), || async { short.authenticate(Some(&b_header)).await.err() }).await;
    assert_eq!(refused.expect("refused after the bound").body()["error"]["code"], "api_key_expired");
    // Without a cache (0 s), every request reads the table; refusals are never remembered.
    let uncached = Authenticator::new(stack.keys(), Duration::ZERO);
    let c = account(&stack).await;
    let c_header = format!("Bearer {}", c.live_key.expose());
    uncached.authenticate(Some(&c_header)).await.unwrap();
    stack.keys().revoke(&c.live_key).await.unwrap();
    assert_eq!(uncached.authenticate(Some(&c_header)).await.unwrap_err().body()["error"]["code"], "api_key_expired");
    let unknown = format!("Bearer {}", paygate::ApiKey::generate(Mode::Test).expose());
    for _ in 0..2 {
        assert_eq!(warm.authenticate(Some(&unknown)).await.unwrap_err().body()["error"]["code"], "api_key_invalid");
    }
}

#[tokio::test]
async fn local_tables_are_the_templates() {
    let stack = stack().await;
    let template = Resources::from_template(TEMPLATE).unwrap();
    for (logical, props) in &template.tables {
        let name = Config::local_name(logical).unwrap();
        let t = stack.clients.dynamodb.describe_table().table_name(name).send().await.unwrap().table.unwrap();
        let keys: Vec<(String, String)> = t.key_schema().iter().map(|k| (k.attribute_name().to_owned(), k.key_type().as_str().to_owned())).collect();
        let want: Vec<(String, String)> = props.key_schema.iter().map(|k| (k.attribute_name.clone(), k.key_type.clone())).collect();
        assert_eq!(keys, want, "{logical}");
        let mut gsis: Vec<String> = t.global_secondary_indexes().iter().filter_map(|g| g.index_name().map(str::to_owned)).collect();
        gsis.sort();
        let mut want_gsis: Vec<String> = props.global_secondary_indexes.iter().map(|g| g.index_name.clone()).collect();
        want_gsis.sort();
        assert_eq!(gsis, want_gsis, "{logical}");
        assert_eq!(
            t.stream_specification().and_then(|s| s.stream_view_type()).map(|v| v.as_str().to_owned()),
            props.stream_specification.as_ref().map(|s| s.stream_view_type.clone()),
            "{logical}"
        );
        assert!(t.key_schema().iter().any(|k| k.key_type() == &KeyType::Hash));
    }
}

/// One invocation publishes a batch: a result per entry, a bad entry failing alone; the SQS shape
/// answers the messages to retry (a poisoned one, a keyless one) and publishes each keyed message
/// once however often it comes; the EventBridge shape publishes its detail.
#[tokio::test]
async fn batches_sqs_and_eventbridge_invocations_publish_entry_by_entry() {
    let stack = stack().await;
    let a = account(&stack).await;
    let publisher = stack.publisher();
    let input = |key: Option<&str>, id: &str| {
        let mut v = json!({"account_id": a.account_id, "mode": "test", "type": "payment.succeeded", "data": {"object": {"id": id, "object": "payment"}}});
        if let Some(k) = key {
            v["idempotency_key"] = json!(k);
        }
        v
    };
    let bad = json!({"account_id": a.account_id, "mode": "test", "type": "payment.exploded", "data": {"object": {"id": "pay_x", "object": "payment"}}});
    let out = publisher.handle(json!({"entries": [input(None, "pay_1"), bad, input(Some("k-2"), "pay_2"), input(Some("k-2"), "pay_2")]})).await.unwrap();
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["event"]["data"]["object"]["id"], "pay_1");
    assert_eq!(results[1]["error"]["type"], "invalid_request_error", "{}", results[1]);
    assert!(results[1]["error"]["message"].as_str().unwrap().contains("payment.exploded"), "{}", results[1]);
    assert_eq!(results[2]["event"]["id"], results[3]["event"]["id"], "one key, one event, in one batch too");

    let message = |id: &str, body: String| json!({"messageId": id, "eventSource": "aws:sqs", "body": body});
    let sqs = json!({"Records": [
        message("m1", input(Some("k-3"), "pay_3").to_string()),
        message("m2", "{not json".to_owned()),
        message("m3", input(None, "pay_4").to_string()),
        message("m4", input(Some("k-3"), "pay_3").to_string()),
    ]});
    let out = publisher.handle(sqs).await.unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}),
        "the poisoned and the keyless message are retried, then dead-lettered"
    );

    let bridge = json!({"version": "0", "source": "payments", "detail-type": "payment.succeeded", "detail": input(Some("k-3"), "pay_3")});
    let from_bridge = publisher.handle(bridge).await.unwrap();
    let keyless = json!({"version": "0", "source": "payments", "detail-type": "payment.succeeded", "detail": input(None, "pay_5")});
    assert!(matches!(publisher.handle(keyless).await, Err(IngestError::Invalid(_))));

    // Every way in, each key once: pay_1, pay_2 and pay_3.
    let events = stored_events(&stack, &test_principal(&a)).await;
    assert_eq!(events.len(), 3);
    let id = |item: &std::collections::HashMap<String, AttributeValue>| item["id"].as_s().unwrap().clone();
    assert!(events.iter().any(|i| id(i) == from_bridge["id"].as_str().unwrap()));
}

/// `schemas/ingest-input.schema.json` (the producers' contract, README "Publishing events") and
/// the ingest parser give the same answer, input by input.
#[test]
fn the_ingest_schema_and_the_parser_agree() {
    use paygate::ingest::IngestRequest;
    let schema: serde_json::Value = serde_json::from_str(include_str!("../../schemas/ingest-input.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let good = json!({
        "account_id": "acct_1AbC", "mode": "live", "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_1", "object": "checkout.session", "amount_total": 500, "metadata": {"k": "v"}}},
        "request": {"id": "req_1", "idempotency_key": null}, "idempotency_key": "order-1-paid"
    });
    let with = |pointer: &str, value: serde_json::Value| {
        let mut v = good.clone();
        *v.pointer_mut(pointer).unwrap() = value;
        v
    };
    let without = |field: &str| {
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove(field);
        v
    };
    let cases = [
        (good.clone(), true),
        (without("request"), true),
        (without("idempotency_key"), true),
        (with("/request", json!({})), true),
        (with("/type", json!("payment.exploded")), false),
        (with("/mode", json!("prod")), false),
        (with("/account_id", json!("nobody")), false),
        (with("/account_id", json!("acct_a#b")), false),
        (with("/data/object", json!({"id": "cs_1"})), false),
        (with("/data/object", json!({"id": "", "object": "x"})), false),
        (with("/data/object", json!([1])), false),
        (with("/data", json!({"object": {"id": "a", "object": "b"}, "extra": 1})), false),
        (with("/idempotency_key", json!("")), false),
        (with("/idempotency_key", json!("k".repeat(256))), false),
        (with("/idempotency_key", json!("café")), false),
        (with("/idempotency_key", json!(5)), false),
        (without("data"), false),
        (without("type"), false),
        (
            {
                let mut v = good.clone();
                v["id"] = json!("evt_mine");
                v
            },
            false,
        ),
    ];
    for (input, valid) in cases {
        assert_eq!(validator.is_valid(&input), valid, "the schema on {input}");
        assert_eq!(IngestRequest::from_json(input.clone()).is_ok(), valid, "the parser on {input}");
    }
}

/// What README "Publishing events" promises about order: ids and `created_at` are assigned at
/// ingest (a producer cannot set them), so two events of one object published together may be
/// stored in either order; `data.object.status` says which state is the latest.
#[tokio::test]
async fn events_of_one_object_carry_their_state_whatever_their_order() {
    let stack = stack().await;
    let a = account(&stack).await;
    let input = |t: &str, status: &str| {
        json!({"account_id": a.account_id, "mode": "test", "type": t, "idempotency_key": format!("pay_9-{t}"),
        "data": {"object": {"id": "pay_9", "object": "payment", "status": status}}})
    };
    let before = paygate::ids::unix_now();
    let out = stack.publisher().handle(json!({"entries": [input("payment.created", "pending"), input("payment.succeeded", "succeeded")]})).await.unwrap();
    let after = paygate::ids::unix_now();
    let events: Vec<&serde_json::Value> = out["results"].as_array().unwrap().iter().map(|r| &r["event"]).collect();
    for e in &events {
        let created = e["created_at"].as_str().unwrap().parse::<paygate::ids::Timestamp>().unwrap().unix_seconds();
        assert!((before..=after).contains(&created), "created_at assigned at ingest: {e}");
    }
    let latest = events.iter().find(|e| e["data"]["object"]["status"] == "succeeded").unwrap();
    assert_eq!(latest["type"], "payment.succeeded");
    // A producer cannot choose the id or the time.
    for field in ["id", "created_at"] {
        let mut v = input("payment.created", "pending");
        v[field] = json!("evt_01M86Q64X5F9SJQX46N8MH7WTH");
        assert!(matches!(stack.publisher().handle(v).await, Err(IngestError::Invalid(_))), "{field}");
    }
}

/// A refused key is remembered as refused: repeating an unknown key costs no read of the ApiKeys
/// table. Shown with the table unreachable (a fault proxy refusing connections): the key refused a
/// moment ago is refused again at once (401), while a key never seen needs the table (500).
#[tokio::test]
async fn a_refused_key_is_refused_again_without_a_read() {
    use integration_tests::fault_proxy::{Fault, FaultProxy};
    use paygate::aws::Target;
    let Target::Local { dynamodb, sqs } = Target::local() else { unreachable!() };
    let proxy = FaultProxy::start(&dynamodb).await;
    let through = paygate_cli::stack::Stack::local_on(&Target::Local { dynamodb: proxy.url(), sqs }, None).await.unwrap();
    let auth = Authenticator::new(through.keys(), Duration::from_secs(60));
    let unknown = format!("Bearer {}", paygate::ApiKey::generate(Mode::Test).expose());
    let code = |r: Result<Principal, paygate::error::ApiError>| r.unwrap_err().body()["error"]["code"].as_str().map(str::to_owned);
    assert_eq!(code(auth.authenticate(Some(&unknown)).await).as_deref(), Some("api_key_invalid"));
    proxy.set(Fault::Refuse);
    assert_eq!(code(auth.authenticate(Some(&unknown)).await).as_deref(), Some("api_key_invalid"), "from memory, no read");
    let never_seen = format!("Bearer {}", paygate::ApiKey::generate(Mode::Test).expose());
    let err = auth.authenticate(Some(&never_seen)).await.unwrap_err();
    assert_eq!(err.status(), 500, "a key never seen needs the table: {err:?}");
    proxy.set(Fault::Pass);
}
