//! Building the AWS SDK clients: from the environment in AWS, or (the `local` feature, never in a
//! Lambda) for the local servers and the emulator.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
#[cfg(feature = "local")]
use aws_config::{Region, SdkConfig};
#[cfg(feature = "local")]
use aws_credential_types::Credentials;

#[cfg(feature = "local")]
pub const LOCAL_DYNAMODB_URL: &str = "http://127.0.0.1:8000";
#[cfg(feature = "local")]
pub const LOCAL_SQS_URL: &str = "http://127.0.0.1:4566";

/// An SDK error as one line: its message and its causes' (`dispatch failure: io error: … Connection
/// refused (os error 111)`), each once, without the Debug dump `DisplayErrorContext` appends.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

/// A queue's name: the last segment of its URL (`…/{account}/{name}`), which is also the last
/// field of its ARN (`arn:aws:sqs:{region}:{account}:{name}`).
pub fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default()
}

/// The ARN Lambda gives the messages it reads from a local queue (`paygate dev`'s pollers and the
/// tests hand the deliverer the same).
#[cfg(feature = "local")]
pub fn local_queue_arn(url: &str) -> String {
    format!("arn:aws:sqs:us-east-1:000000000000:{}", queue_name(url))
}

/// Where the SDK clients talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Real AWS (or whatever `AWS_ENDPOINT_URL*` point at), with the usual credential chain.
    Aws,
    /// The local servers, with dummy credentials (the `local` feature: not in the Lambdas).
    #[cfg(feature = "local")]
    Local { dynamodb: String, sqs: String },
    /// An AWS emulator at one endpoint for every service (`make deploy-local`), with the credentials
    /// the deploy used (it enforces IAM, so the local dummy ones are refused).
    #[cfg(feature = "local")]
    Emulator { endpoint: String, access_key_id: String, secret_access_key: String },
}

#[cfg(feature = "local")]
impl Target {
    /// The local servers: `PAYGATE_DYNAMODB_URL` and `PAYGATE_SQS_URL`, else 127.0.0.1 on
    /// `PAYGATE_DYNAMODB_PORT` and `PAYGATE_SQS_PORT` (as `scripts/local.sh` starts them), else :8000 and :4566.
    pub fn local() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let url = |url_var: &str, port_var: &str, default: &str| {
            var(url_var).or_else(|| var(port_var).map(|p| format!("http://127.0.0.1:{p}"))).unwrap_or_else(|| default.to_owned())
        };
        Target::Local {
            dynamodb: url("PAYGATE_DYNAMODB_URL", "PAYGATE_DYNAMODB_PORT", LOCAL_DYNAMODB_URL),
            sqs: url("PAYGATE_SQS_URL", "PAYGATE_SQS_PORT", LOCAL_SQS_URL),
        }
    }

    /// For developer commands: AWS when the environment names credentials, a profile or an
    /// endpoint; otherwise the local servers (`PAYGATE_DYNAMODB_URL`, `PAYGATE_SQS_URL` override them).
    pub fn from_env() -> Self {
        let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
        if ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"].iter().any(|k| set(k)) {
            return Target::Aws;
        }
        Target::local()
    }
}

/// Fail fast, never hang: each attempt of an operation may take [`ATTEMPT_TIMEOUT`], the whole
/// operation with its retries [`OPERATION_TIMEOUT`], so a request facing a hung store answers an
/// error within 5 s instead of waiting for the store.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(4500);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts per operation (the first and two retries), with the SDK's standard backoff.
pub const MAX_ATTEMPTS: u32 = 3;

pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_attempt_timeout(ATTEMPT_TIMEOUT).operation_timeout(OPERATION_TIMEOUT).build()
}

pub fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// One DynamoDB and one SQS client, built once and shared: DynamoDB at start-up, SQS when first
/// used ([`Sqs`]).
#[derive(Debug, Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: Sqs,
    /// Where they talk to.
    pub target: Target,
}

/// The SQS client, built the first time it is used, then shared by every clone. Building an SDK
/// client costs a cold start about 0.12 ms (`make bench`), and most functions never send a
/// message: the API reads, ingest writes, the deliverer only when it schedules a retry.
#[derive(Debug, Clone)]
pub struct Sqs {
    config: aws_sdk_sqs::config::Builder,
    client: std::sync::Arc<std::sync::OnceLock<aws_sdk_sqs::Client>>,
}

impl Sqs {
    fn new(config: aws_sdk_sqs::config::Builder) -> Self {
        Sqs { config, client: Default::default() }
    }
}

impl std::ops::Deref for Sqs {
    type Target = aws_sdk_sqs::Client;

    fn deref(&self) -> &aws_sdk_sqs::Client {
        self.client.get_or_init(|| aws_sdk_sqs::Client::from_conf(self.config.clone().build()))
    }
}

impl Clients {
    pub async fn new(target: &Target) -> Self {
        match target {
            Target::Aws => {
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .http_client(crate::tls::sdk_https_client(crate::tls::SdkRoots::from_env()))
                    .timeout_config(timeouts())
                    .retry_config(retries());
                // A Lambda's credentials and region are in its environment, where the default
                // chains look first: read them there, without building the rest of those chains
                // (profile files, SSO, web identity, ECS, IMDS) at every cold start.
                let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
                if let (Some(region), Some(_), Some(_)) = (var("AWS_REGION"), var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                    loader = loader
                        .region(aws_config::Region::new(region))
                        .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
                }
                let sdk = loader.load().await;
                Clients { dynamodb: aws_sdk_dynamodb::Client::new(&sdk), sqs: Sqs::new((&sdk).into()), target: target.clone() }
            }
            #[cfg(feature = "local")]
            Target::Emulator { endpoint, access_key_id, secret_access_key } => {
                let sdk = aws_config::defaults(BehaviorVersion::latest())
                    .http_client(crate::tls::sdk_https_client(crate::tls::SdkRoots::All))
                    .region(Region::new("us-east-1"))
                    .credentials_provider(Credentials::new(access_key_id, secret_access_key, None, None, "paygate-emulator"))
                    .timeout_config(timeouts())
                    .retry_config(retries())
                    .load()
                    .await;
                Clients {
                    dynamodb: aws_sdk_dynamodb::Client::from_conf(aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url(endpoint).build()),
                    sqs: Sqs::new(aws_sdk_sqs::config::Builder::from(&sdk).endpoint_url(endpoint)),
                    target: target.clone(),
                }
            }
            #[cfg(feature = "local")]
            Target::Local { dynamodb, sqs } => {
                let sdk = local_sdk_config().await;
                let ddb = aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url(dynamodb).build();
                Clients {
                    dynamodb: aws_sdk_dynamodb::Client::from_conf(ddb),
                    sqs: Sqs::new(aws_sdk_sqs::config::Builder::from(&sdk).endpoint_url(sqs)),
                    target: target.clone(),
                }
            }
        }
    }
}

/// Region and dummy credentials for the local servers.
#[cfg(feature = "local")]
pub async fn local_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::tls::sdk_https_client(crate::tls::SdkRoots::All))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "paygate-local"))
        .timeout_config(timeouts())
        .retry_config(retries())
        .load()
        .await
}
