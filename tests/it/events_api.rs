//! The Events API through the local HTTP API (`paygate dev`'s server: the same router the Lambdas
//! run) with a real HTTP client, on DynamoDB Local. Every response is checked
//! against openapi.yaml by `Api::get`.

use integration_tests::{Api, account, event_at, live_principal, seed, stack, test_principal};
use paygate::list::ListParams;
use paygate::store::event_list::list_events;
use paygate::{Event, EventType, Family, TypeSelector};
use serde_json::Value;

const TYPES: [EventType; 5] =
    [EventType::PaymentSucceeded, EventType::PaymentFailed, EventType::RefundCreated, EventType::CustomerCreated, EventType::CheckoutSessionCompleted];

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// `n` events of the five types, 7 minutes and 13 seconds apart, ending about now (a TTL of 30
/// days keeps them all).
fn spread(n: u64) -> Vec<Event> {
    let start = now_ms() - n * 433_000;
    (0..n).map(|i| event_at(TYPES[(i * 7 % 5) as usize], start + i * 433_000 + (i % 1000))).collect()
}

fn ids(v: &Value) -> Vec<String> {
    v["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

fn id_strings(events: &[&Event]) -> Vec<String> {
    events.iter().map(|e| e.id.to_string()).collect()
}

/// Walks every page forward with `starting_after`; returns the ids and checks has_more.
async fn walk_forward(api: &Api, key: &str, query: &str, limit: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.as_ref().map(|c| format!("&starting_after={c}")).unwrap_or_default();
        let r = api.get(&format!("/v1/events?limit={limit}{query}{after}"), Some(key)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page = ids(&r.body);
        assert!(page.len() <= limit);
        all.extend(page.iter().cloned());
        if !r.body["has_more"].as_bool().unwrap() {
            return all;
        }
        assert_eq!(page.len(), limit, "a page with more after it is full");
        cursor = page.last().cloned();
    }
}

/// Walks every page backward with `ending_before`, starting from the oldest event `oldest`.
async fn walk_backward(api: &Api, key: &str, query: &str, limit: usize, oldest: &str) -> Vec<String> {
    let mut all = vec![oldest.to_owned()];
    let mut cursor = oldest.to_owned();
    loop {
        let r = api.get(&format!("/v1/events?limit={limit}{query}&ending_before={cursor}"), Some(key)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page = ids(&r.body);
        let mut sorted = page.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(page, sorted, "pages are newest first, ending_before too");
        let mut newer = page.clone();
        newer.extend(all);
        all = newer;
        if !r.body["has_more"].as_bool().unwrap() {
            return all;
        }
        assert_eq!(page.len(), limit);
        cursor = page.first().cloned().unwrap();
    }
}

#[tokio::test]
async fn retrieve() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let (a, b) = (account(&stack).await, account(&stack).await);
    let test_event = seed(&stack, &test_principal(&a), vec![event_at(EventType::PaymentSucceeded, now_ms())]).await.remove(0);
    let live_event = seed(&stack, &live_principal(&a), vec![event_at(EventType::PayoutFailed, now_ms())]).await.remove(0);
    let other = seed(&stack, &test_principal(&b), vec![event_at(EventType::PaymentSucceeded, now_ms())]).await.remove(0);
    let key = a.test_key.expose();

    let r = api.get(&format!("/v1/events/{}", test_event.id), Some(key)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, serde_json::to_value(&test_event).unwrap(), "exactly the event JSON");

    let live = api.get(&format!("/v1/events/{}", live_event.id), Some(a.live_key.expose())).await;
    assert_eq!(live.status, 200);
    assert_eq!(live.body["type"], "payout.failed");

    for (path, why) in [
        (format!("/v1/events/{}", paygate::EventId::generate()), "not found"),
        (format!("/v1/events/{}", other.id), "another account's event"),
        (format!("/v1/events/{}", live_event.id), "a live event with a test key"),
        ("/v1/events/evt_abc123def456".to_owned(), "malformed id"),
        ("/v1/events/%20%27%22".to_owned(), "garbage id"),
    ] {
        let r = api.get(&path, Some(key)).await;
        assert_eq!(r.status, 404, "{why}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "resource_missing", "{why}");
        assert_eq!(r.body["error"]["param"], "id", "{why}");
    }
    let r = api.get(&format!("/v1/events/{}?expand[]=data", test_event.id), Some(key)).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("parameter_unknown")));

    let revoked = account(&stack).await;
    stack.keys().revoke(&revoked.test_key).await.unwrap();
    let path = format!("/v1/events/{}", test_event.id);
    for (k, code) in [
        (None, "api_key_missing"),
        (Some("sk_test_thisKeyDoesNotExist0000"), "api_key_invalid"),
        (Some("not-a-key"), "api_key_invalid"),
        (Some(revoked.test_key.expose()), "api_key_expired"),
    ] {
        let r = api.get(&path, k).await;
        assert_eq!(r.status, 401, "{k:?}");
        assert_eq!(r.body["error"]["type"], "authentication_error");
        assert_eq!(r.body["error"]["code"], code, "{k:?}");
    }
}

#[tokio::test]
async fn pagination_and_filters_over_260_events() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let key = a.test_key.expose();
    let events = seed(&stack, &test_principal(&a), spread(260)).await;
    // Live events of the same account never show up with the test key.
    seed(&stack, &live_principal(&a), spread(5)).await;
    let all: Vec<&Event> = events.iter().collect();
    let oldest = events.last().unwrap().id.to_string();

    // Every event exactly once, in order, both directions.
    assert_eq!(walk_forward(&api, key, "", 25).await, id_strings(&all));
    assert_eq!(walk_backward(&api, key, "", 25, &oldest).await, id_strings(&all));
    assert_eq!(walk_forward(&api, key, "", 100).await, id_strings(&all));

    // has_more at both ends.
    let first = api.get("/v1/events?limit=10", Some(key)).await;
    assert_eq!(ids(&first.body), id_strings(&all[..10]));
    assert_eq!(first.body["has_more"], true);
    let newest = all[0].id.to_string();
    let r = api.get(&format!("/v1/events?ending_before={newest}"), Some(key)).await;
    assert_eq!((ids(&r.body).len(), &r.body["has_more"]), (0, &Value::Bool(false)));
    let r = api.get(&format!("/v1/events?starting_after={oldest}"), Some(key)).await;
    assert_eq!((ids(&r.body).len(), &r.body["has_more"]), (0, &Value::Bool(false)));
    let r = api.get(&format!("/v1/events?limit=5&ending_before={}", all[5].id), Some(key)).await;
    assert_eq!(ids(&r.body), id_strings(&all[..5]));
    assert_eq!(r.body["has_more"], false, "nothing newer than the newest five");

    // One type, a family, several types (both spellings): alone and walked with cursors.
    let of = |pred: &dyn Fn(&Event) -> bool| -> Vec<&Event> { all.iter().copied().filter(|e| pred(e)).collect() };
    let succeeded = of(&|e| e.event_type == EventType::PaymentSucceeded);
    let payments = of(&|e| e.event_type.family() == Family::Payment);
    let refunds_or_customers = of(&|e| matches!(e.event_type, EventType::RefundCreated | EventType::CustomerCreated));
    assert!(succeeded.len() > 40 && payments.len() > succeeded.len());
    for (query, want) in [
        ("&type=payment.succeeded", &succeeded),
        ("&type=payment.*", &payments),
        ("&types[]=refund.created&types[]=customer.created", &refunds_or_customers),
        ("&types%5B0%5D=customer.created&types%5B1%5D=refund.created", &refunds_or_customers),
        ("&types[]=payment.*&types[]=payment.failed", &payments),
    ] {
        assert_eq!(walk_forward(&api, key, query, 7).await, id_strings(want), "{query}");
        let oldest = want.last().unwrap().id.to_string();
        assert_eq!(walk_backward(&api, key, query, 9, &oldest).await, id_strings(want), "{query}");
    }

    // created ranges: inclusive seconds, unix or RFC 3339, alone and with cursors and types.
    let lo = all[200].created_at;
    let hi = all[40].created_at;
    let window = of(&|e| e.created_at >= lo && e.created_at <= hi);
    assert_eq!(window.len(), 161);
    let q = format!("&created[gte]={}&created[lte]={}", lo.unix_seconds(), hi.unix_seconds());
    assert_eq!(walk_forward(&api, key, &q, 50).await, id_strings(&window));
    let q_rfc = format!("&created[gte]={lo}&created[lte]={hi}");
    assert_eq!(walk_forward(&api, key, &q_rfc, 50).await, id_strings(&window));
    let oldest_in = window.last().unwrap().id.to_string();
    assert_eq!(walk_backward(&api, key, &q, 30, &oldest_in).await, id_strings(&window));
    let q_open = format!("&created[gt]={}&created[lt]={}", lo.unix_seconds(), hi.unix_seconds());
    assert_eq!(walk_forward(&api, key, &q_open, 50).await, id_strings(&window[1..window.len() - 1]));
    let exact = api.get(&format!("/v1/events?created={}", lo.unix_seconds()), Some(key)).await;
    assert_eq!(ids(&exact.body), vec![all[200].id.to_string()]);
    let typed_window: Vec<&Event> = window.iter().copied().filter(|e| e.event_type.family() == Family::Payment).collect();
    assert_eq!(walk_forward(&api, key, &format!("{q}&type=payment.*"), 8).await, id_strings(&typed_window));

    // limit bounds.
    let one = api.get("/v1/events?limit=1", Some(key)).await;
    assert_eq!(ids(&one.body), id_strings(&all[..1]));
    let hundred = api.get("/v1/events?limit=100", Some(key)).await;
    assert_eq!(ids(&hundred.body), id_strings(&all[..100]));
    assert_eq!(hundred.body["has_more"], true);
}

#[tokio::test]
async fn bad_list_requests_are_400s_naming_the_parameter() {
    let stack = stack().await;
    let api = Api::start(&stack).await;
    let a = account(&stack).await;
    let key = a.test_key.expose();
    let id = paygate::EventId::generate();
    let many_types: String = EventType::ALL.iter().take(21).map(|t| format!("&types[]={t}")).collect();
    for (query, code, param) in [
        ("limit=abc".to_owned(), "parameter_invalid_integer", "limit"),
        ("limit=0".to_owned(), "parameter_invalid_integer", "limit"),
        ("limit=101".to_owned(), "parameter_invalid_integer", "limit"),
        (format!("starting_after={id}&ending_before={id}"), "parameters_exclusive", "ending_before"),
        ("starting_after=evt_123".to_owned(), "resource_missing", "starting_after"),
        ("ending_before=abc".to_owned(), "resource_missing", "ending_before"),
        ("type=payment.refunded".to_owned(), "parameter_invalid", "type"),
        ("types[]=payment.created&types[]=charge.*".to_owned(), "parameter_invalid", "types"),
        ("type=payment.created&types[]=payment.failed".to_owned(), "parameters_exclusive", "types"),
        (many_types[1..].to_owned(), "parameter_invalid", "types"),
        ("created[gte]=last-week".to_owned(), "parameter_invalid", "created[gte]"),
        ("created[lte]=2024-13-45T00:00:00Z".to_owned(), "parameter_invalid", "created[lte]"),
        ("created[gte]=200&created[lte]=100".to_owned(), "parameter_invalid", "created"),
        ("created[gte]=2024-01-15T10:30:00Z&created[lt]=2024-01-15T10:29:59Z".to_owned(), "parameter_invalid", "created"),
        ("sort=asc".to_owned(), "parameter_unknown", "sort"),
    ] {
        let r = api.get(&format!("/v1/events?{query}"), Some(key)).await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert_eq!(r.body["error"]["type"], "invalid_request_error", "{query}");
        assert_eq!(r.body["error"]["code"], code, "{query}");
        assert_eq!(r.body["error"]["param"], param, "{query}");
    }
    let r = api.get("/v1/events", None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_page_reads_at_most_limit_plus_one_items_of_2000() {
    let stack = stack().await;
    let a = account(&stack).await;
    let p = test_principal(&a);
    let events = seed(&stack, &p, spread(2000)).await;
    let store = stack.events();
    let middle = events[1000].id;
    let (lo, hi) = (events[1500].created_at, events[300].created_at);
    for query in [
        String::new(),
        "limit=100".to_owned(),
        "limit=1".to_owned(),
        format!("limit=50&starting_after={middle}"),
        format!("limit=50&ending_before={middle}"),
        "limit=20&type=payment.succeeded".to_owned(),
        "limit=20&type=payment.*".to_owned(),
        format!("limit=30&type=refund.created&starting_after={middle}"),
        format!("limit=30&created[gte]={}&created[lte]={}", lo.unix_seconds(), hi.unix_seconds()),
        format!("limit=30&type=customer.*&created[gte]={}&ending_before={middle}", lo.unix_seconds()),
    ] {
        let params = ListParams::parse(&query).unwrap();
        let found = list_events(&store, &p, &params).await.unwrap();
        let limit = params.limit.get() as u32;
        // 2000 events leave a full page, and more, in every direction here.
        assert_eq!(found.page.data.len() as u32, limit, "{query}");
        assert!(found.page.has_more, "{query}");
        assert!(found.items_read <= limit + 1, "{query}: read {} items for a page of {limit}", found.items_read);
    }
    // Several types: one Query per type, each bounded the same way.
    let params = ListParams::parse("limit=25&types[]=payment.failed&types[]=refund.created&types[]=checkout.*").unwrap();
    assert_eq!(params.types.len(), 3);
    assert!(params.types.contains(&TypeSelector::Family(Family::Checkout)));
    let found = list_events(&store, &p, &params).await.unwrap();
    assert_eq!(found.page.data.len(), 25);
    assert!(found.items_read <= 3 * 26, "read {}", found.items_read);
}

/// Each account and mode has its own rate limit (5 a second here, a second's burst): 20 requests at
/// once get at most the burst plus what refilled meanwhile, the rest a Stripe-style 429 with
/// `Retry-After`; another account, and the same account's other mode, are not slowed; after the
/// wait it goes again.
#[tokio::test]
async fn each_account_has_its_own_rate_limit() {
    let mut stack = stack().await;
    stack.deps.config.rate_limits = paygate::http::rate_limit::RateLimits { live: 0, test: 5, ..Default::default() };
    let api = Api::start(&stack).await;
    let (a, b) = (account(&stack).await, account(&stack).await);
    let started = std::time::Instant::now();
    let replies = futures::future::join_all((0..20).map(|_| api.get("/v1/events?limit=1", Some(a.test_key.expose())))).await;
    let elapsed = started.elapsed().as_secs_f64();
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let limited: Vec<_> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(ok + limited.len(), 20);
    assert!(ok >= 5 && ok as f64 <= 5.0 + 5.0 * elapsed + 1.0, "{ok} allowed in {elapsed:.2} s at 5/s");
    let refused = limited[0];
    assert_eq!(
        (refused.body["error"]["type"].as_str(), refused.body["error"]["code"].as_str()),
        (Some("rate_limit_error"), Some("rate_limit")),
        "{}",
        refused.body
    );
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    assert_eq!(api.get("/v1/events?limit=1", Some(b.test_key.expose())).await.status, 200, "another account is not slowed");
    assert_eq!(api.get("/v1/events?limit=1", Some(a.live_key.expose())).await.status, 200, "nor the same account's live mode");
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(api.get("/v1/events?limit=1", Some(a.test_key.expose())).await.status, 200, "after Retry-After");
}

/// Two instances of the API (two routers, each with its own buckets, as two warm Lambdas) serving
/// one account hold its limit together through the count they share: hammered from both for 4 s
/// at 40/s, they allow at most the limit per second plus a little each, where their buckets alone
/// would allow twice the limit (`rate_limit`'s module docs).
#[tokio::test]
async fn two_instances_share_one_accounts_limit() {
    let mut stack = stack().await;
    let limit = 40u32;
    stack.deps.config.rate_limits = paygate::http::rate_limit::RateLimits { live: 0, test: limit, ..Default::default() };
    let (one, two) = (Api::start(&stack).await, Api::start(&stack).await);
    let a = account(&stack).await;
    let key = a.test_key.expose().to_owned();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(4);
    let hammer = |api: &Api| {
        let (client, url, key) = (api.client.clone(), format!("{}/v1/events?limit=1", api.base), key.clone());
        async move {
            let mut ok = 0u32;
            while std::time::Instant::now() < until {
                let status = client.get(&url).bearer_auth(&key).send().await.unwrap().status().as_u16();
                assert!(status == 200 || status == 429, "{status}");
                ok += u32::from(status == 200);
            }
            ok
        }
    };
    let clients: Vec<_> = (0..8).map(|i| hammer(if i % 2 == 0 { &one } else { &two })).collect();
    let allowed: u32 = futures::future::join_all(clients).await.into_iter().sum();
    // 4 s touch at most 5 seconds; each allows the limit, plus under two tenths per instance.
    let shared_bound = 5 * (limit + 2 * 2 * paygate::http::rate_limit::batch(limit));
    let buckets_alone = 2 * (limit * 4 + limit);
    assert!(allowed >= limit * 2, "{allowed} allowed in 4 s at {limit}/s");
    assert!(allowed <= shared_bound, "{allowed} allowed in 4 s at {limit}/s over two instances: at most {shared_bound} (their buckets alone: {buckets_alone})");
}

/// Failed authentications are limited per source address (5 a minute here): past them, the
/// address gets a Stripe-style 429 with `Retry-After` and its keys are not looked up, except a key
/// the API already knows is valid; another address is not refused.
#[tokio::test]
async fn an_address_sending_bad_keys_is_refused_after_its_limit() {
    let mut stack = stack().await;
    stack.deps.config.rate_limits = paygate::http::rate_limit::RateLimits { live: 0, test: 0, failed_auths: 5 };
    let api = Api::start(&stack).await;
    let (a, b) = (account(&stack).await, account(&stack).await);
    assert_eq!(api.get("/v1/events?limit=1", Some(a.test_key.expose())).await.status, 200);
    let bad = |i: usize| format!("sk_test_{}{i:04}", "Zq".repeat(12));
    for i in 0..5 {
        let r = api.get("/v1/events?limit=1", Some(&bad(i))).await;
        assert_eq!((r.status, r.body["error"]["code"].as_str()), (401, Some("api_key_invalid")), "{}", r.body);
    }
    let refused = api.get("/v1/events?limit=1", Some(&bad(5))).await;
    assert_eq!((refused.status, refused.body["error"]["code"].as_str()), (429, Some("rate_limit")), "{}", refused.body);
    assert_eq!(refused.retry_after.as_deref(), Some("12"), "one failure back every 12 s at 5 a minute");
    assert_eq!(api.get("/v1/events?limit=1", Some(a.test_key.expose())).await.status, 200, "a key known to be valid still works");
    assert_eq!(api.get("/v1/events?limit=1", Some(b.test_key.expose())).await.status, 429, "any other key waits: the address is refused");
    // From another loopback address, nothing is refused.
    let other = reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let r = other.get(format!("{}/v1/events?limit=1", api.base)).bearer_auth(b.test_key.expose()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// An account whose events outgrow one key: a step of its shard plan spreads the events written
/// after it over 8 keys. Events written before keep their key; every event, old and new, is
/// read by id, listed (all, by type, by family, both directions) and delivered, and its count
/// settles. A reader that cached the plan before the change knows the step before it starts.
#[tokio::test]
async fn a_sharded_account_reads_lists_and_delivers_old_and_new_events() {
    use integration_tests::delivery_batch;
    use integration_tests::receiver::Receiver;
    use paygate::store::event_shards::Step;
    use paygate::webhook::deliver::RetrySchedule;
    use paygate::webhook::endpoints::{EnabledEvents, new_endpoint};

    let mut stack = integration_tests::isolated_stack().await;
    stack.deps.config.key_cache = std::time::Duration::from_millis(500);
    let a = account(&stack).await;
    let p = test_principal(&a);
    let key = a.test_key.expose();
    let receiver = Receiver::start(vec![]).await;
    let ep = new_endpoint(p.mode, receiver.url.parse().unwrap(), EnabledEvents::All, None);
    stack.endpoints().create(&p, &ep).await.unwrap();
    receiver.expect_secrets(&[ep.secret.expose()]);
    let publish = |t| integration_tests::publish(&stack, &p, t, serde_json::json!({"id": "pay_1", "object": "payment"}));

    let mut old = Vec::new();
    for _ in 0..5 {
        old.push(publish(EventType::PaymentSucceeded).await);
    }
    let api = Api::start(&stack).await;
    assert_eq!(api.get(&format!("/v1/events/{}", old[0].id), Some(key)).await.status, 200, "the API has cached the plan without a step");
    let from_ms = now_ms() + 1_500;
    let plans = &stack.events().plans;
    plans.add_step(&p, Step { from_ms, shards: 8 }).await.unwrap();
    assert!(
        matches!(plans.add_step(&p, Step { from_ms: from_ms - 1, shards: 2 }).await, Err(paygate::store::StoreError::Conflict)),
        "a step never starts before the last one"
    );
    tokio::time::sleep(std::time::Duration::from_millis(from_ms + 50 - now_ms())).await;
    let mut new = Vec::new();
    for i in 0..40 {
        new.push(publish(if i % 2 == 0 { EventType::RefundCreated } else { EventType::PaymentFailed }).await);
    }

    // Where the items are: the old ones under the account's key, the new ones over its 8 keys.
    let plan = stack.events().plan(&p).await.unwrap();
    let keys = plan.partitions(&p, 0, u64::MAX);
    assert_eq!(keys.len(), 9);
    let mut per_key = Vec::new();
    for k in &keys {
        let items = integration_tests::events_items(&stack, k).await;
        per_key.push(items.iter().filter(|i| i["id"].as_s().is_ok_and(|id| id.starts_with("evt_"))).count());
    }
    assert_eq!(per_key[0], 5, "events written before the step keep the account's key: {per_key:?}");
    assert_eq!(per_key[1..].iter().sum::<usize>(), 40);
    assert!(per_key[1..].iter().filter(|&&n| n > 0).count() >= 4, "the new events spread over the keys: {per_key:?}");
    for e in &new {
        assert_ne!(plan.partition(&p, e.id), p.partition());
    }

    // Read by id (one GetItem each), listed in both directions, by type and by family.
    for e in old.iter().chain(&new) {
        let r = api.get(&format!("/v1/events/{}", e.id), Some(key)).await;
        assert_eq!((r.status, r.body["id"].as_str()), (200, Some(e.id.to_string().as_str())));
    }
    let mut all: Vec<&Event> = old.iter().chain(&new).collect();
    all.sort_by_key(|e| std::cmp::Reverse(e.id));
    assert_eq!(walk_forward(&api, key, "", 7,).await, id_strings(&all));
    let oldest = all.last().unwrap().id.to_string();
    assert_eq!(walk_backward(&api, key, "", 6, &oldest).await, id_strings(&all));
    let refunds: Vec<&Event> = all.iter().copied().filter(|e| e.event_type == EventType::RefundCreated).collect();
    assert_eq!(walk_forward(&api, key, "&type=refund.created", 3).await, id_strings(&refunds));
    let payments: Vec<&Event> = all.iter().copied().filter(|e| e.event_type.family() == Family::Payment).collect();
    assert_eq!(payments.len(), 25);
    assert_eq!(walk_forward(&api, key, "&types[]=payment.*", 4).await, id_strings(&payments));
    let created = new[10].created_at.unix_seconds();
    let since: Vec<&Event> = all.iter().copied().filter(|e| e.created_at.unix_seconds() >= created).collect();
    assert_eq!(walk_forward(&api, key, &format!("&created[gte]={created}"), 10).await, id_strings(&since));

    // Delivered, and each event's count settles (under its own key).
    let d = stack.deliverer(RetrySchedule { live: vec![1], test: vec![1] });
    for chunk in all.chunks(10) {
        let events: Vec<Event> = chunk.iter().map(|e| (*e).clone()).collect();
        assert!(d.handle(delivery_batch(&p, &events, ep.id)).await.batch_item_failures.is_empty());
    }
    assert_eq!(receiver.received().len(), 45);
    for e in &all {
        assert_eq!(stack.events().get(&p, e.id).await.unwrap().unwrap().pending_webhooks, 0, "{}", e.id);
    }

    // The plan item's own stream record has no deliveries: the fan-out passes over it.
    let record = serde_json::json!({"Records": [{"eventID": "1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1", "dynamodb": {
        "Keys": {"pk": {"S": p.partition()}, "id": {"S": "shards"}}, "NewImage": {"pk": {"S": p.partition()}, "id": {"S": "shards"}},
        "SequenceNumber": "1", "SizeBytes": 64, "StreamViewType": "NEW_IMAGE"}, "eventSourceARN": "arn:aws:dynamodb:eu-west-1:000000000000:table/e/stream/1"}]});
    let response = stack.fanout().handle(serde_json::from_value(record).unwrap()).await;
    assert!(response.batch_item_failures.is_empty());
}
