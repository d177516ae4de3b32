//! The per-account rate limit's error bound, measured: concurrent clients of one account send
//! requests as fast as they are answered for a few seconds, and the requests allowed a second are
//! set against the limit. Against `paygate dev` (one instance: the bound is the limit plus its
//! second's burst spread over the run); against two instances of its router over the same tables,
//! as two warm Lambdas (the count they share holds them to the limit plus a tenth each); and
//! against the stack `make deploy-local` deployed when `PAYGATE_API_URL` names it (the emulator
//! runs invocations in short-lived processes, so there the shared count does the limiting).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use paygate_cli::stack::Stack;

use crate::report::{Row, Target};

const CLIENTS: usize = 16;
const SECONDS: f64 = 5.0;

/// Allowed (2xx) and limited (429) answers of `CLIENTS` clients sending GETs with `key` to `bases`
/// (client `i` to `bases[i % len]`) for `SECONDS`.
async fn hammer(bases: &[String], key: &str) -> anyhow::Result<(usize, usize)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let (ok, limited) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let until = Instant::now() + Duration::from_secs_f64(SECONDS);
    let workers = (0..CLIENTS).map(|i| {
        let (client, ok, limited) = (client.clone(), ok.clone(), limited.clone());
        let (url, key) = (format!("{}/v1/events?limit=1", bases[i % bases.len()]), key.to_owned());
        tokio::spawn(async move {
            while Instant::now() < until {
                match client.get(&url).bearer_auth(&key).send().await.map(|r| r.status().as_u16()) {
                    Ok(200) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(429) => limited.fetch_add(1, Ordering::Relaxed),
                    Ok(other) => anyhow::bail!("unexpected status {other}"),
                    Err(e) => anyhow::bail!("{e}"),
                };
            }
            Ok(())
        })
    });
    for w in futures::future::join_all(workers).await {
        w??;
    }
    Ok((ok.load(Ordering::Relaxed), limited.load(Ordering::Relaxed)))
}

fn row(place: &str, limit: u32, (ok, limited): (usize, usize), target: f64, note: &str) -> Row {
    let rate = ok as f64 / SECONDS;
    Row::new(
        format!("requests/s allowed to one account at a limit of {limit}/s, {CLIENTS} concurrent clients, {place}"),
        rate,
        "req/s",
        Some(("the limit", f64::from(limit))),
        Target::RatioAtMost(target),
        format!("{ok} allowed and {limited} answered 429 in {SECONDS} s; {note}"),
    )
}

/// `paygate dev`'s server (the router the Lambdas run, behind the local gateway) on a free port,
/// until the sender is dropped or sent to.
async fn serve(stack: &Stack) -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(paygate_cli::gateway::serve(listener, stack.functions(), async {
        let _ = stopped.await;
    }));
    Ok((base, stop, server))
}

pub async fn run(mut stack: Stack) -> anyhow::Result<Vec<Row>> {
    // The default test-mode limit.
    let limit = paygate::http::rate_limit::RateLimits::default().test;
    stack.deps.config.rate_limits = paygate::http::rate_limit::RateLimits::default();
    let account = stack.keys().create_account().await?;
    let (base, stop, server) = serve(&stack).await?;
    let counts = hammer(std::slice::from_ref(&base), account.test_key.expose()).await?;
    let _ = stop.send(());
    server.await??;
    // One bucket: the limit a second, plus the one second's burst it starts with.
    let bound = (f64::from(limit) * SECONDS + f64::from(limit)) / (f64::from(limit) * SECONDS);
    let mut rows = vec![row("`paygate dev`", limit, counts, bound, &format!("one instance: at most the limit plus its burst, {bound:.2}× over {SECONDS} s"))];
    // Two instances (each its own buckets), the clients split between them: the shared count.
    let account = stack.keys().create_account().await?;
    let (one, stop_one, server_one) = serve(&stack).await?;
    let (two, stop_two, server_two) = serve(&stack).await?;
    let counts = hammer(&[one, two], account.test_key.expose()).await?;
    let _ = (stop_one.send(()), stop_two.send(()));
    server_one.await??;
    server_two.await??;
    // The limit, plus under two tenths per instance a second (its last addition's batch and what
    // it served since), over the seconds the run touches; with the buckets alone it would be 2×.
    let batch = f64::from(paygate::http::rate_limit::batch(limit));
    let two_bound = (SECONDS + 1.0) * (f64::from(limit) + 2.0 * 2.0 * batch) / (f64::from(limit) * SECONDS);
    rows.push(row(
        "two instances of `paygate dev`'s router over the same tables",
        limit,
        counts,
        two_bound,
        &format!("each instance its own buckets, held together by the per-second count they share: at most {two_bound:.2}× (the buckets alone: 2.4×)"),
    ));
    // The deployed stack, when there is one (`. .tools/deploy-local/env` after `make deploy-local`).
    if let Ok(api) = std::env::var("PAYGATE_API_URL") {
        let deployed = Stack::deployed_local().await?;
        let account = deployed.keys().create_account().await?;
        let counts = hammer(&[api], account.test_key.expose()).await?;
        rows.push(row(
            "the deployed stack (`make deploy-local`)",
            limit,
            counts,
            bound,
            "the emulator runs invocations in short-lived processes (each a bucket of its own, most serving a request or a few): what \
             holds them together is the count they share, added to by an instance once it has served 2 requests (a tenth of 25) in a \
             second; in AWS, n warm instances hold the limit × (1 + 0.2 n) (README Rate limits)",
        ));
    }
    Ok(rows)
}
