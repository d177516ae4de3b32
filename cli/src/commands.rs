//! The `paygate` subcommands.

use std::net::SocketAddr;

use anyhow::{Context, anyhow};
use paygate::http::params::parse_time;
use paygate::ingest::{DataObject, IngestData, IngestRequest, Publisher};
use paygate::list::{Cursor, ListParams};
use paygate::store::api_keys::NewAccount;
use paygate::store::endpoints::Created;
use paygate::store::event_list::list_events;
use paygate::webhook::breaker::BreakerConfig;
use paygate::webhook::deliver::RetrySchedule;
use paygate::webhook::endpoints::{EnabledEvents, Endpoint, new_endpoint};
use paygate::webhook::ssrf::check_url;
use paygate::{Event, EventId, EventRequest, EventType, Principal};

use crate::fixtures::object_for;
use crate::gateway::serve;
use crate::pollers;
use crate::stack::{Servers, Stack};

pub type CliResult = anyhow::Result<()>;

/// `paygate accounts create`: one JSON line with the account id and its two keys.
pub async fn accounts_create(stack: &Stack) -> CliResult {
    let account = stack.keys().create_account().await?;
    // The whole keys: for their owner's eyes only.
    println!("{}", serde_json::json!({"account_id": account.account_id, "test_key": account.test_key.expose(), "live_key": account.live_key.expose()}));
    Ok(())
}

/// `paygate accounts shards`: adds a step to the account's shard plan, `notice_seconds` from now,
/// and prints the plan.
pub async fn accounts_shards(stack: &Stack, principal: Principal, shards: u16, notice_seconds: u64) -> CliResult {
    use paygate::store::event_shards::Step;
    let from_ms = paygate::ids::unix_now_ms() + notice_seconds.saturating_mul(1000);
    let plan = match stack.events().plans.add_step(&principal, Step { from_ms, shards }).await {
        Err(paygate::store::StoreError::Conflict) => {
            anyhow::bail!("a step of this plan starts later than {notice_seconds} s from now; give a longer --notice-seconds")
        }
        other => other?,
    };
    println!("{}", serde_json::to_string(&plan)?);
    Ok(())
}

/// Who an API key belongs to, or why it is refused.
pub async fn principal_of(stack: &Stack, api_key: &str) -> anyhow::Result<Principal> {
    Ok(paygate::auth::authenticate(&stack.keys(), Some(&format!("Bearer {api_key}"))).await?)
}

/// Publishes an event of type `t` with a realistic object (see `fixtures`), and rings the local
/// pollers' doorbell.
pub async fn publish_fixture(publisher: &Publisher, principal: &Principal, t: EventType, request: EventRequest) -> anyhow::Result<Event> {
    publish_object(publisher, principal, t, object_for(t), request).await
}

/// Publishes an event of type `t` with `object` as its `data.object`, and rings the doorbell.
async fn publish_object(
    publisher: &Publisher,
    principal: &Principal,
    t: EventType,
    object: serde_json::Map<String, serde_json::Value>,
    request: EventRequest,
) -> anyhow::Result<Event> {
    let input = IngestRequest {
        account_id: principal.account.clone(),
        mode: principal.mode,
        event_type: t,
        data: IngestData { object: DataObject::parse(object.into()).map_err(|e| anyhow!("data.object of {t}: {e}"))? },
        request,
        // Every publish carries a producer key, as a producer's should; a fresh one per event.
        idempotency_key: Some(paygate::ingest::PublishKey::generate()),
    };
    let event = publisher.publish(input).await?;
    crate::doorbell::ring(&publisher.events.table);
    Ok(event)
}

/// `paygate trigger <type> --api-key K --count N [--set field=value]…`: creates realistic events
/// (with the fields `set` gives), prints each as a JSON line.
pub async fn trigger(stack: &Stack, event_type: EventType, api_key: &str, count: u32, set: &[(String, serde_json::Value)]) -> CliResult {
    let principal = principal_of(stack, api_key).await?;
    let publisher = stack.publisher();
    for i in 0..count {
        let request = EventRequest {
            id: Some(format!("req_cli{:06}", rand::random::<u32>() % 1_000_000)),
            idempotency_key: Some(format!("paygate-cli-{}-{i}", ulid::Ulid::generate())),
        };
        let mut object = object_for(event_type);
        crate::fixtures::apply_fields(&mut object, set).map_err(anyhow::Error::msg)?;
        let event = publish_object(&publisher, &principal, event_type, object, request).await?;
        println!("{}", serde_json::to_string(&event).expect("events serialise"));
    }
    Ok(())
}

/// `paygate publish --file F`: every line of `file` published through the ingest code (a batch of
/// up to 100 lines at a time, each line's key required), one JSON line out per line in:
/// `{"line": n, "event": {...}}` or `{"line": n, "error": {...}}`. Fails when any line failed.
pub async fn publish_file(stack: &Stack, file: &std::path::Path) -> CliResult {
    let text = std::fs::read_to_string(file).map_err(|e| anyhow!("cannot read {}: {e}", file.display()))?;
    let lines: Vec<(usize, &str)> = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| (i + 1, l)).collect();
    let publisher = stack.publisher();
    let mut failed = 0;
    for chunk in lines.chunks(paygate::ingest::MAX_BATCH) {
        // A line that is not JSON is its own error; the rest go out as one batch.
        let parsed: Vec<Result<serde_json::Value, String>> = chunk.iter().map(|(_, l)| serde_json::from_str(l).map_err(|e| format!("not JSON: {e}"))).collect();
        let inputs: Vec<serde_json::Value> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
        let mut results = publisher.publish_batch(inputs, true).await.into_iter();
        for ((n, _), p) in chunk.iter().zip(parsed) {
            let outcome = match p {
                Ok(_) => paygate::ingest::entry_result(results.next().expect("a result per input")),
                Err(message) => serde_json::json!({"error": {"type": "invalid_request_error", "message": message}}),
            };
            failed += usize::from(outcome.get("error").is_some());
            let mut line = serde_json::json!({"line": n});
            line.as_object_mut().expect("an object").extend(outcome.as_object().expect("an object").clone());
            println!("{line}");
        }
    }
    crate::doorbell::ring(&publisher.events.table);
    anyhow::ensure!(failed == 0, "{failed} of {} lines were not published (see their errors above)", lines.len());
    Ok(())
}

fn print_banner(addr: SocketAddr, account: &NewAccount) {
    let test_key = account.test_key.expose();
    println!(
        "PayGate Events is running locally.

  HTTP API        http://{addr}
  Dashboard       http://{addr}/dashboard  (sign in with a key below)
  DynamoDB Local  {ddb}
  SQS (ministack) {sqs}

Demo account {acct} (shown once; `paygate accounts create` makes more)
  test key  {test_key}
  live key  {live_key}

Try, in another terminal:
  export PAYGATE_KEY={test_key}
  cargo run -q --bin paygate -- trigger payment.succeeded --api-key $PAYGATE_KEY --count 5
  curl -H \"Authorization: Bearer $PAYGATE_KEY\" 'http://{addr}/v1/events?type=payment.succeeded&limit=3'
  # the next page starts after the last event of this one
  last=$(curl -s -H \"Authorization: Bearer $PAYGATE_KEY\" 'http://{addr}/v1/events?type=payment.succeeded&limit=3' | jq -r '.data[-1].id')
  curl -H \"Authorization: Bearer $PAYGATE_KEY\" \"http://{addr}/v1/events?type=payment.succeeded&limit=3&starting_after=$last\"

Webhooks: first a temporary endpoint, which prints its signing secret (whsec_…)
  cargo run -q --bin paygate -- listen --forward-to http://127.0.0.1:4242/webhooks --api-key $PAYGATE_KEY
then, in a third terminal, the example receiver with that secret
  cargo run -q -p paygate-cli --example receiver -- whsec_…

Press Ctrl-C to stop everything this command started.",
        ddb = local_urls().0,
        sqs = local_urls().1,
        acct = account.account_id,
        live_key = account.live_key.expose(),
    );
}

fn local_urls() -> (String, String) {
    match paygate::aws::Target::local() {
        paygate::aws::Target::Local { dynamodb, sqs } => (dynamodb, sqs),
        _ => unreachable!("Target::local is local"),
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `paygate dev`: servers, tables and queues, a demo account with a few events, and the HTTP API.
pub async fn dev(addr: SocketAddr, start_servers: bool) -> CliResult {
    let mut servers = if start_servers { Some(Servers::start()?) } else { None };
    let result = async {
        let stack = Stack::local_from_env().await?;
        let schedule = RetrySchedule::from_env().map_err(anyhow::Error::msg)?;
        let mut deliverer = stack.deliverer(schedule);
        deliverer.breaker = BreakerConfig::from_env().map_err(anyhow::Error::msg)?;
        let _pollers = pollers::start(&stack, deliverer, false).await?;
        let account = stack.keys().create_account().await?;
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let addr = listener.local_addr()?;
        // A few events so that the first curl shows something.
        let publisher = stack.publisher();
        for t in [EventType::CustomerCreated, EventType::PaymentCreated, EventType::PaymentSucceeded] {
            let principal = Principal { account: account.account_id.clone(), mode: account.test_key.mode() };
            publish_fixture(&publisher, &principal, t, EventRequest::default()).await?;
        }
        print_banner(addr, &account);
        serve(listener, stack.functions(), shutdown_signal()).await?;
        eprintln!("paygate dev: stopping");
        Ok(())
    }
    .await;
    if let Some(s) = servers.as_mut() {
        s.stop();
    }
    result
}

/// `paygate listen --forward-to URL [--events a,b]`: a temporary endpoint for the key's account; prints
/// its secret, then one line per delivery attempt; deletes the endpoint on Ctrl-C.
pub async fn listen(stack: &Stack, api_key: &str, forward_to: &str, events: &[String]) -> CliResult {
    let principal = principal_of(stack, api_key).await?;
    let enabled = EnabledEvents::parse(events)?;
    let url = check_url(forward_to, principal.mode, stack.policy).await?;
    let mut endpoint = new_endpoint(principal.mode, url, enabled, None);
    endpoint.description = Some("paygate listen (temporary)".to_owned());
    if let Created::LimitReached(max) = stack.endpoints().create(&principal, &endpoint).await? {
        return Err(anyhow!("the account has {max} webhook endpoints already, the most it may have; delete one first"));
    }
    println!("Ready. Forwarding {} events to {} (endpoint {}).", endpoint.enabled_events.to_strings().join(","), endpoint.url, endpoint.id);
    println!("Your webhook signing secret is {} (^C to quit)", endpoint.secret.expose());
    let watch = watch_deliveries(stack, &principal, &endpoint);
    tokio::select! {
        r = watch => r?,
        _ = shutdown_signal() => {}
    }
    stack.endpoints().delete(&principal, &endpoint.id).await?;
    eprintln!("paygate listen: endpoint {} deleted", endpoint.id);
    Ok(())
}

/// Prints each attempt to `endpoint` on events newer than now: polls the newest events (one Query)
/// and the attempts of the events it subscribes to that are not settled yet (one Query each).
async fn watch_deliveries(stack: &Stack, principal: &Principal, endpoint: &Endpoint) -> CliResult {
    let events = stack.events();
    let deliveries = stack.deliveries();
    // (event, type, attempts printed so far)
    let mut watching: Vec<(EventId, EventType, usize)> = Vec::new();
    let mut newest = EventId::generate();
    loop {
        let params = ListParams { cursor: Some(Cursor::EndingBefore(newest)), ..ListParams::default() };
        let page = list_events(&events, principal, &params).await?;
        for e in page.page.data.iter().rev() {
            newest = newest.max(e.id);
            if endpoint.enabled_events.matches(e.event_type) {
                watching.push((e.id, e.event_type, 0));
            }
        }
        let mut settled = Vec::new();
        for (id, t, printed) in &mut watching {
            let attempts = deliveries.attempts(principal, *id).await?;
            for a in attempts.iter().filter(|a| a.endpoint_id == endpoint.id).skip(*printed) {
                let status = a.http_status.map(|s| s.to_string()).unwrap_or_else(|| a.error.clone().unwrap_or_default());
                println!("{}  {:<32} attempt {}  [{}]  {} ms", id, t.as_str(), a.attempt, status, a.latency_ms);
                *printed += 1;
                if a.succeeded || a.http_status == Some(410) {
                    settled.push(*id);
                }
            }
        }
        // Delivered (or gone) events need no more watching; of the rest, the newest 200 are kept.
        watching.retain(|(id, _, _)| !settled.contains(id));
        if watching.len() > 200 {
            watching.drain(..watching.len() - 200);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// `paygate env`: the environment that makes the functions' own `main` talk to the local stack.
pub fn env(stack: &Stack) -> CliResult {
    let (dynamodb, sqs) = local_urls();
    let c = &stack.config;
    for (k, v) in [
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.as_str()),
        ("AWS_ENDPOINT_URL_SQS", sqs.as_str()),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
        ("PAYGATE_EVENTS_TABLE", &c.events_table),
        ("PAYGATE_WEBHOOK_ENDPOINTS_TABLE", &c.webhook_endpoints_table),
        ("PAYGATE_API_KEYS_TABLE", &c.api_keys_table),
        ("PAYGATE_DELIVERIES_TABLE", &c.deliveries_table),
        ("PAYGATE_DELIVERY_QUEUE_URL", &c.delivery_queue_url),
        ("PAYGATE_DELIVERY_DLQ_URL", &c.delivery_dlq_url),
        ("PAYGATE_SLOW_DELIVERY_QUEUE_URL", &c.slow_delivery_queue_url),
        ("PAYGATE_ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
    ] {
        println!("export {k}={v}");
    }
    Ok(())
}

/// `paygate recover --endpoint we_… --since T`: what `POST /v1/webhook_endpoints/{id}/recover` does,
/// called again while it has more. Prints the whole recovery as JSON.
pub async fn recover(stack: &Stack, api_key: &str, endpoint: &str, since: &str) -> CliResult {
    let principal = principal_of(stack, api_key).await?;
    let since = parse_time("since", since)?;
    let api = stack.api();
    let mut all = api.recover(&principal, endpoint, since).await?;
    // Again while there are more; a call that re-opened none of what it found (their events
    // expired meanwhile) would find the same again, so it ends the loop.
    while all.has_more {
        let next = api.recover(&principal, endpoint, since).await?;
        all.has_more = next.has_more && !next.events.is_empty();
        all.events.extend(next.events);
    }
    println!("{}", paygate::http::endpoints::recovery_json(&all, since));
    Ok(())
}

/// `paygate dlq redrive [--max N]`: moves messages from the dead-letter queue back to the delivery
/// queue (as SQS's own DLQ redrive does, attributes included). A message that comes back re-opens
/// its finally failed delivery, which is delivered again from attempt 1. Prints how many it moved.
pub async fn dlq_redrive(stack: &Stack, max: usize) -> CliResult {
    let moved = paygate::webhook::redrive::move_dead_letters(&stack.clients.sqs, &stack.config.delivery_dlq_url, &stack.config.delivery_queue_url, max).await?;
    println!("{}", serde_json::json!({"object": "dlq_redrive", "moved": moved}));
    Ok(())
}
