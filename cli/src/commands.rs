//! The `paygate` subcommands.

use std::net::SocketAddr;
use std::sync::Arc;

use paygate::auth::NewAccount;
use paygate::aws::Target;
use paygate::ingest::{IngestData, IngestRequest, publish};
use paygate::{EventRequest, EventType, Principal};

use crate::fixtures::object_for;
use crate::gateway::serve;
use crate::stack::{Servers, Stack};

pub type CliResult = Result<(), String>;

/// `paygate accounts create`: one JSON line with the account id and its two keys.
pub async fn accounts_create(stack: &Stack) -> CliResult {
    let account = stack.keys().create_account().await.map_err(|e| e.to_string())?;
    println!("{}", account.to_json());
    Ok(())
}

/// Who an API key belongs to, or why it is refused.
pub async fn principal_of(stack: &Stack, api_key: &str) -> Result<Principal, String> {
    stack
        .keys()
        .authenticate(Some(&format!("Bearer {api_key}")))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// `paygate trigger <type> --api-key K --count N`: creates realistic events, prints each as a JSON line.
pub async fn trigger(stack: &Stack, event_type: EventType, api_key: &str, count: u32) -> CliResult {
    let principal = principal_of(stack, api_key).await?;
    let events = stack.events();
    for i in 0..count {
        let input = IngestRequest {
            account_id: principal.account.clone(),
            mode: principal.mode,
            event_type,
            data: IngestData { object: object_for(event_type) },
            request: EventRequest {
                id: Some(format!("req_cli{:06}", rand::random::<u32>() % 1_000_000)),
                idempotency_key: Some(format!("paygate-cli-{}-{i}", ulid::Ulid::generate())),
            },
        };
        let event = publish(&events, input).await.map_err(|e| e.to_string())?;
        println!("{}", serde_json::to_string(&event).expect("events serialise"));
    }
    Ok(())
}

fn print_banner(addr: SocketAddr, account: &NewAccount) {
    let test_key = account.test_key.expose();
    println!(
        "PayGate Events is running locally.

  HTTP API        http://{addr}
  DynamoDB Local  {ddb}
  SQS (ministack) {sqs}

Demo account {acct} (shown once; `paygate accounts create` makes more)
  test key  {test_key}
  live key  {live_key}

Try, in another terminal:
  export PAYGATE_KEY={test_key}
  cargo run -q --bin paygate -- trigger payment.succeeded --api-key $PAYGATE_KEY --count 5
  curl -H \"Authorization: Bearer $PAYGATE_KEY\" 'http://{addr}/v1/events?type=payment.succeeded&limit=3'
  curl -H \"Authorization: Bearer $PAYGATE_KEY\" 'http://{addr}/v1/events?limit=3&starting_after=<last id of the page>'

Press Ctrl-C to stop everything this command started.",
        ddb = paygate::aws::LOCAL_DYNAMODB_URL,
        sqs = paygate::aws::LOCAL_SQS_URL,
        acct = account.account_id,
        live_key = account.live_key.expose(),
    );
}

async fn shutdown_signal() {
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
        let stack = Stack::new(&Target::local()).await;
        stack.provision().await?;
        let account = stack.keys().create_account().await.map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // A few events so that the first curl shows something.
        let events = stack.events();
        for t in [EventType::CustomerCreated, EventType::PaymentCreated, EventType::PaymentSucceeded] {
            let input = IngestRequest {
                account_id: account.account_id.clone(),
                mode: account.test_key.mode(),
                event_type: t,
                data: IngestData { object: object_for(t) },
                request: EventRequest::default(),
            };
            publish(&events, input).await.map_err(|e| e.to_string())?;
        }
        print_banner(addr, &account);
        serve(listener, Arc::new(stack.functions()), shutdown_signal()).await.map_err(|e| e.to_string())?;
        eprintln!("paygate dev: stopping");
        Ok(())
    }
    .await;
    if let Some(s) = servers.as_mut() {
        s.stop();
    }
    result
}
