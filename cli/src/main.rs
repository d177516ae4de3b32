//! `paygate`: developer commands for PayGate Events (like the Stripe CLI). Wiring only.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paygate::EventType;
use paygate_cli::commands;
use paygate_cli::stack::Stack;

#[derive(Parser)]
#[command(name = "paygate", version, about = "PayGate Events developer commands")]
struct Cli {
    /// Talk to the stack `make deploy-local` deployed on the AWS emulator (its names are read from
    /// what the deploy saved), instead of the local servers or AWS.
    #[arg(long, global = true)]
    deployed: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run everything locally: servers, tables, queues, a demo account and the HTTP API.
    Dev {
        /// Address of the HTTP API.
        #[arg(long, env = "PAYGATE_API_ADDR", default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Use servers that are already running instead of starting them.
        #[arg(long)]
        no_servers: bool,
    },
    /// Manage accounts.
    Accounts {
        #[command(subcommand)]
        command: AccountsCmd,
    },
    /// Create realistic events of a type for the account of an API key; prints each as JSON.
    Trigger {
        /// An event type, such as payment.succeeded.
        event_type: EventType,
        #[arg(long, env = "PAYGATE_KEY")]
        api_key: String,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        count: u32,
    },
    /// Print `export …` lines that point the functions (`cargo lambda watch`) at the local stack.
    Env,
    /// The sample events' data.
    Samples {
        #[command(subcommand)]
        command: SamplesCmd,
    },
    /// Re-queue every finally failed delivery to an endpoint of the events created since a time.
    Recover {
        /// The endpoint, we_….
        #[arg(long)]
        endpoint: String,
        /// Unix seconds or RFC 3339.
        #[arg(long)]
        since: String,
        #[arg(long, env = "PAYGATE_KEY")]
        api_key: String,
    },
    /// The delivery dead-letter queue.
    Dlq {
        #[command(subcommand)]
        command: DlqCmd,
    },
    /// Forward webhooks to a local URL: registers a temporary endpoint, prints its secret and each delivery.
    Listen {
        /// Where to send the events, such as http://127.0.0.1:4242/webhooks.
        #[arg(long)]
        forward_to: String,
        #[arg(long, env = "PAYGATE_KEY")]
        api_key: String,
        /// Event types or family wildcards, comma-separated (default: all).
        #[arg(long, value_delimiter = ',', default_value = "*")]
        events: Vec<String>,
    },
}

#[derive(Subcommand)]
enum SamplesCmd {
    /// Seed the account, key, event and endpoint that the files in events/ name.
    Seed {
        /// Where the sample endpoint sends webhooks.
        #[arg(long, default_value = "http://127.0.0.1:4242/webhooks")]
        endpoint_url: String,
    },
}

#[derive(Subcommand)]
enum DlqCmd {
    /// Move messages back to the delivery queue; their deliveries re-open and are attempted again.
    Redrive {
        /// Move at most this many.
        #[arg(long, default_value_t = 10_000)]
        max: usize,
    },
}

#[derive(Subcommand)]
enum AccountsCmd {
    /// Create an account; prints {"account_id","test_key","live_key"} (the keys are shown only now).
    Create,
}

/// The stack a command works on: the deployed-local one with `--deployed`, else as the environment says.
async fn stack(deployed: bool) -> Result<Stack, String> {
    if deployed { Stack::deployed_local().await } else { Stack::from_env().await }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Dev { addr, no_servers } => {
            paygate::logging::init();
            commands::dev(addr, !no_servers).await
        }
        Cmd::Accounts { command: AccountsCmd::Create } => match stack(cli.deployed).await {
            Ok(stack) => commands::accounts_create(&stack).await,
            Err(e) => Err(e),
        },
        Cmd::Trigger { event_type, api_key, count } => match stack(cli.deployed).await {
            Ok(stack) => commands::trigger(&stack, event_type, &api_key, count).await,
            Err(e) => Err(e),
        },
        Cmd::Env => match Stack::local_from_env().await {
            Ok(stack) => commands::env(&stack),
            Err(e) => Err(e),
        },
        Cmd::Samples { command: SamplesCmd::Seed { endpoint_url } } => match Stack::local_from_env().await {
            Ok(stack) => paygate_cli::samples::seed(&stack, &endpoint_url).await.map(|(p, e)| {
                println!("seeded {} (key {}), event {}, endpoint {} -> {}", p.account, paygate_cli::samples::KEY, paygate_cli::samples::EVENT, e.id, e.url)
            }),
            Err(e) => Err(e),
        },
        Cmd::Recover { endpoint, since, api_key } => match stack(cli.deployed).await {
            Ok(stack) => commands::recover(&stack, &api_key, &endpoint, &since).await,
            Err(e) => Err(e),
        },
        Cmd::Dlq { command: DlqCmd::Redrive { max } } => match stack(cli.deployed).await {
            Ok(stack) => commands::dlq_redrive(&stack, max).await,
            Err(e) => Err(e),
        },
        Cmd::Listen { forward_to, api_key, events } => match stack(cli.deployed).await {
            Ok(stack) => commands::listen(&stack, &api_key, &forward_to, &events).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paygate: {e}");
            ExitCode::FAILURE
        }
    }
}
