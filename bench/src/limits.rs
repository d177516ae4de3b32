//! The per-account rate limit's error bound, measured: concurrent clients of one account send
//! requests as fast as they are answered for a few seconds, and the requests allowed a second are
//! set against the limit. Against `paygate dev` (one instance: the bound is the limit plus its
//! second's burst spread over the run), and against the stack `make deploy-local` deployed when
//! `PAYGATE_API_URL` names it (one bucket per instance of the function: up to `n` times; the
//! emulator runs each invocation in a process of its own).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use paygate_cli::stack::Stack;

use crate::report::{Row, Target};

const CLIENTS: usize = 16;
const SECONDS: f64 = 5.0;

/// Allowed (2xx) and limited (429) answers of `CLIENTS` clients sending GETs with `key` to `base`
/// for `SECONDS`.
async fn hammer(base: &str, key: &str) -> anyhow::Result<(usize, usize)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let (ok, limited) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let until = Instant::now() + Duration::from_secs_f64(SECONDS);
    let workers = (0..CLIENTS).map(|_| {
        let (client, ok, limited) = (client.clone(), ok.clone(), limited.clone());
        let (url, key) = (format!("{base}/v1/events?limit=1"), key.to_owned());
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

pub async fn run(mut stack: Stack) -> anyhow::Result<Vec<Row>> {
    // `paygate dev`'s server (the router the Lambdas run, behind the local gateway), the default
    // test-mode limit.
    let limit = paygate::http::rate_limit::RateLimits::default().test;
    stack.deps.config.rate_limits = paygate::http::rate_limit::RateLimits::default();
    let account = stack.keys().create_account().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(paygate_cli::gateway::serve(listener, stack.functions(), async {
        let _ = stopped.await;
    }));
    let counts = hammer(&base, account.test_key.expose()).await?;
    let _ = stop.send(());
    server.await??;
    // One bucket: the limit a second, plus the one second's burst it starts with.
    let bound = (f64::from(limit) * SECONDS + f64::from(limit)) / (f64::from(limit) * SECONDS);
    let mut rows = vec![row("`paygate dev`", limit, counts, bound, &format!("one instance: at most the limit plus its burst, {bound:.2}× over {SECONDS} s"))];
    // The deployed stack, when there is one (`. .tools/deploy-local/env` after `make deploy-local`).
    if let Ok(api) = std::env::var("PAYGATE_API_URL") {
        let deployed = Stack::deployed_local().await?;
        let account = deployed.keys().create_account().await?;
        let counts = hammer(&api, account.test_key.expose()).await?;
        rows.push(row(
            "the deployed stack (`make deploy-local`)",
            limit,
            counts,
            bound,
            "a bucket per instance of the list function: the emulator starts a process for each invocation, so no bucket outlives one \
             request there; in AWS, n warm instances allow up to n times the limit (README Rate limits)",
        ));
    }
    Ok(rows)
}
