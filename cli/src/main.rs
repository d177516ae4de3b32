//! `paygate`: developer commands for PayGate Events (like the Stripe CLI). Wiring only.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paygate::{EventType, Principal};
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
    /// The account's API keys (`/v1/api_keys`): list them, create a restricted key, roll, revoke.
    Keys {
        /// The secret API key (sk_test_… or sk_live_…) of the account; never shown in help.
        #[arg(long, env = "PAYGATE_KEY", hide_env_values = true, global = true)]
        api_key: Option<String>,
        #[command(subcommand)]
        command: KeysCmd,
    },
    /// Create realistic events of a type for the account of an API key; prints each as JSON.
    Trigger {
        /// An event type, such as payment.succeeded (every type is listed below).
        #[arg(value_parser = event_type_parser())]
        event_type: EventType,
        /// The secret API key (sk_test_… or sk_live_…) of the account; never shown in help.
        #[arg(long, env = "PAYGATE_KEY", hide_env_values = true)]
        api_key: String,
        /// How many events to create, 1 to 1000.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        count: u32,
        /// Set a field of data.object: `--set description=Order 42` (a value that parses as JSON,
        /// such as 5000 or true, is taken as JSON). Repeatable.
        #[arg(long = "set", value_name = "FIELD=VALUE", value_parser = paygate_cli::fixtures::parse_field)]
        set: Vec<(String, serde_json::Value)>,
    },
    /// Publish the events of a JSON Lines file as a producer would: each line an ingest input
    /// (schemas/ingest-input.schema.json) with its idempotency_key; prints each line's outcome as
    /// JSON. Run again, it publishes nothing new.
    Publish {
        /// The file: one ingest input per line (blank lines are skipped).
        #[arg(long)]
        file: std::path::PathBuf,
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
        /// The secret API key (sk_test_… or sk_live_…) of the account; never shown in help.
        #[arg(long, env = "PAYGATE_KEY", hide_env_values = true)]
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
        /// The secret API key (sk_test_… or sk_live_…) of the account; never shown in help.
        #[arg(long, env = "PAYGATE_KEY", hide_env_values = true)]
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
enum KeysCmd {
    /// The keys that work (rolled ones until they expire), newest first, as JSON.
    List,
    /// A restricted key (rk_…) with per-resource permissions; prints it, shown only now.
    CreateRestricted {
        /// What to call it.
        #[arg(long)]
        name: Option<String>,
        /// none or read.
        #[arg(long, value_name = "ACCESS", default_value = "none")]
        events: String,
        /// none, read or write.
        #[arg(long, value_name = "ACCESS", default_value = "none")]
        webhook_endpoints: String,
    },
    /// A new key in place of key_…; prints it (shown only now). The old key works for
    /// --expires-in more seconds (0, the default, ends it now; at most 604800, 7 days).
    Roll {
        /// The key's id, key_… (`paygate keys list`).
        id: String,
        /// Seconds the old key keeps working: 0 (now) to 604800 (7 days).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=i64::from(paygate::http::api_keys::MAX_EXPIRES_IN)))]
        expires_in: u32,
    },
    /// Revoke a restricted key, or a rolled secret key before it expires, now.
    Revoke {
        /// The key's id, key_….
        id: String,
    },
}

#[derive(Subcommand)]
enum AccountsCmd {
    /// Create an account; prints {"account_id","test_key","live_key"} (the keys are shown only now).
    Create,
    /// Spread an account's events over more (or fewer) keys of the Events table, for more than
    /// about 250 events/s (README "Capacity"). Takes effect after the notice; nothing is moved.
    Shards {
        /// The account (`acct_…`).
        account: paygate::AccountId,
        /// `test` or `live`.
        #[arg(long)]
        mode: paygate::Mode,
        /// Keys to write its events under from then on (1 to 32; 16 carries 4,000 events/s).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=i64::from(paygate::store::event_shards::MAX_EVENT_SHARDS)))]
        events: u16,
        /// Seconds until the change takes effect: longer than any process caches a plan (60 s).
        #[arg(long, default_value_t = paygate::store::event_shards::PLAN_NOTICE.as_secs())]
        notice_seconds: u64,
    },
}

/// The 27 event types as clap's possible values: `--help` lists them, and a misspelt one gets
/// "a similar value exists: 'payment.succeeded'".
fn event_type_parser() -> impl clap::builder::TypedValueParser<Value = EventType> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(EventType::ALL.iter().map(|t| t.as_str()))
        .map(|s| s.parse::<EventType>().expect("a possible value is an event type"))
}

/// The stack a command works on: the deployed-local one with `--deployed`, else as the environment says.
async fn stack(deployed: bool) -> anyhow::Result<Stack> {
    if deployed { Stack::deployed_local().await } else { Stack::from_env().await }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paygate: {e:#}");
            if let Some(paygate::ApiError::Authentication { .. }) = e.downcast_ref() {
                eprintln!(
                    "hint: use a key this stack issued: the test key `make dev` printed, or one from `paygate accounts create` (with --deployed for the emulator's stack)"
                );
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.deployed {
        let local_only = match cli.command {
            Cmd::Dev { .. } => Some("dev"),
            Cmd::Env => Some("env"),
            _ => None,
        };
        if let Some(name) = local_only {
            anyhow::bail!("`paygate {name}` works on the local servers only; --deployed does not apply to it");
        }
    }
    match cli.command {
        Cmd::Dev { addr, no_servers } => {
            paygate::logging::init();
            commands::dev(addr, !no_servers).await
        }
        Cmd::Accounts { command: AccountsCmd::Create } => commands::accounts_create(&stack(cli.deployed).await?).await,
        Cmd::Accounts { command: AccountsCmd::Shards { account, mode, events, notice_seconds } } => {
            commands::accounts_shards(&stack(cli.deployed).await?, Principal { account, mode }, events, notice_seconds).await
        }
        Cmd::Keys { api_key, command } => {
            use paygate_cli::keys::KeysCommand;
            let api_key = api_key.ok_or_else(|| anyhow::anyhow!("give the account's secret key: --api-key sk_test_… (or PAYGATE_KEY)"))?;
            let command = match command {
                KeysCmd::List => KeysCommand::List,
                KeysCmd::CreateRestricted { name, events, webhook_endpoints } => KeysCommand::CreateRestricted { name, events, webhook_endpoints },
                KeysCmd::Roll { id, expires_in } => KeysCommand::Roll { id, expires_in },
                KeysCmd::Revoke { id } => KeysCommand::Revoke { id },
            };
            paygate_cli::keys::run(&stack(cli.deployed).await?, &api_key, command).await
        }
        Cmd::Trigger { event_type, api_key, count, set } => commands::trigger(&stack(cli.deployed).await?, event_type, &api_key, count, &set).await,
        Cmd::Publish { file } => commands::publish_file(&stack(cli.deployed).await?, &file).await,
        Cmd::Env => commands::env(&Stack::local_from_env().await?),
        Cmd::Samples { command: SamplesCmd::Seed { endpoint_url } } => {
            let (p, e) =
                paygate_cli::samples::seed(&if cli.deployed { Stack::deployed_local().await? } else { Stack::local_from_env().await? }, &endpoint_url).await?;
            println!("seeded {} (key {}), event {}, endpoint {} -> {}", p.account, paygate_cli::samples::KEY, paygate_cli::samples::EVENT, e.id, e.url);
            Ok(())
        }
        Cmd::Recover { endpoint, since, api_key } => commands::recover(&stack(cli.deployed).await?, &api_key, &endpoint, &since).await,
        Cmd::Dlq { command: DlqCmd::Redrive { max } } => commands::dlq_redrive(&stack(cli.deployed).await?, max).await,
        Cmd::Listen { forward_to, api_key, events } => commands::listen(&stack(cli.deployed).await?, &api_key, &forward_to, &events).await,
    }
}
