//! The network clients of one process, made once and shared by every read:
//! a hold loop's re-check, the chain watch, rotation, the chain-head
//! follower, the keyshare vault and doctor's alarms find the connections
//! (and, for AWS, the credentials) the last read left open instead of paying
//! their handshakes again.
//!
//! Every clone shares them. Use them on one tokio runtime: a pooled
//! connection belongs to the runtime that opened it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

use crate::check::error_chain;

#[derive(Clone)]
pub struct Clients {
    inner: Arc<Inner>,
}

struct Inner {
    /// NEAR RPC's HTTP client, or why none could be made (no TLS backend).
    rpc: Result<reqwest::Client, String>,
    /// The AWS configuration every AWS client is made from: one region, one
    /// credentials chain and its cache.
    aws: OnceCell<SdkConfig>,
    secrets_manager: OnceCell<AwsClient<aws_sdk_secretsmanager::Client>>,
    s3: OnceCell<AwsClient<aws_sdk_s3::Client>>,
    cloudwatch: OnceCell<AwsClient<aws_sdk_cloudwatch::Client>>,
}

/// An AWS service's client, and where it points (for messages).
#[derive(Clone, Debug)]
pub struct AwsClient<C> {
    pub client: C,
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else AWS's own.
    pub endpoint: String,
}

impl Default for Clients {
    fn default() -> Self {
        Clients::new()
    }
}

impl Clients {
    pub fn new() -> Clients {
        // A NEAR RPC answers `POST /` itself: a redirect is followed by no
        // one, so an endpoint cannot send the agent's requests elsewhere.
        // TLS uses aws-lc-rs, the provider the AWS SDK already links; the
        // process default is set once (a second install is refused, harmlessly).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let rpc = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("no HTTP client: {}", error_chain(&err)));
        Clients {
            inner: Arc::new(Inner {
                rpc,
                aws: OnceCell::new(),
                secrets_manager: OnceCell::new(),
                s3: OnceCell::new(),
                cloudwatch: OnceCell::new(),
            }),
        }
    }

    /// The HTTP client for NEAR RPC endpoints.
    pub(crate) fn rpc(&self) -> Result<reqwest::Client, String> {
        self.inner.rpc.clone()
    }

    async fn aws(&self) -> &SdkConfig {
        self.inner.aws.get_or_init(load_aws).await
    }

    /// The Secrets Manager client, made by the first call: one process has
    /// one configuration, so later calls' `env` and `attempt_timeout` are
    /// the same as the first's.
    pub async fn secrets_manager(
        &self,
        env: &BTreeMap<String, String>,
        attempt_timeout: Duration,
    ) -> AwsClient<aws_sdk_secretsmanager::Client> {
        let sdk = self.aws().await;
        self.inner
            .secrets_manager
            .get_or_init(|| async { AwsClient::secrets_manager(sdk, env, attempt_timeout) })
            .await
            .clone()
    }

    /// The S3 client (the keyshare vault's), made by the first call on the
    /// same AWS configuration as Secrets Manager's; later calls' `env` and
    /// `attempt_timeout` are the same as the first's.
    pub async fn s3(
        &self,
        env: &BTreeMap<String, String>,
        attempt_timeout: Duration,
    ) -> AwsClient<aws_sdk_s3::Client> {
        let sdk = self.aws().await;
        self.inner
            .s3
            .get_or_init(|| async { AwsClient::s3(sdk, env, attempt_timeout) })
            .await
            .clone()
    }

    /// The CloudWatch client (doctor's alarms), made by the first call on the
    /// same AWS configuration; later calls' `env` and `attempt_timeout` are
    /// the same as the first's.
    pub async fn cloudwatch(
        &self,
        env: &BTreeMap<String, String>,
        attempt_timeout: Duration,
    ) -> AwsClient<aws_sdk_cloudwatch::Client> {
        let sdk = self.aws().await;
        self.inner
            .cloudwatch
            .get_or_init(|| async { AwsClient::cloudwatch(sdk, env, attempt_timeout) })
            .await
            .clone()
    }
}

impl<C> AwsClient<C> {
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }
}

impl<C> AwsClient<C> {
    fn on(client: C, sdk: &SdkConfig, endpoint: String) -> Self {
        AwsClient {
            client,
            region: sdk.region().map(|r| r.to_string()),
            endpoint,
        }
    }
}

impl AwsClient<aws_sdk_secretsmanager::Client> {
    /// A Secrets Manager client on `sdk`; `attempt_timeout` bounds each try.
    pub fn secrets_manager(
        sdk: &SdkConfig,
        env: &BTreeMap<String, String>,
        attempt_timeout: Duration,
    ) -> Self {
        let (endpoint, _) = endpoint(
            sdk,
            env,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            "secretsmanager",
        );
        let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .timeout_config(attempt_timeouts(attempt_timeout))
            .build();
        AwsClient::on(
            aws_sdk_secretsmanager::Client::from_conf(config),
            sdk,
            endpoint,
        )
    }
}

impl AwsClient<aws_sdk_s3::Client> {
    /// An S3 client on `sdk`; `attempt_timeout` bounds each try.
    pub fn s3(sdk: &SdkConfig, env: &BTreeMap<String, String>, attempt_timeout: Duration) -> Self {
        let (endpoint, named_endpoint) = endpoint(sdk, env, "AWS_ENDPOINT_URL_S3", "s3");
        let mut config = aws_sdk_s3::config::Builder::from(sdk)
            .timeout_config(attempt_timeouts(attempt_timeout));
        if named_endpoint {
            // An endpoint URL names one host (moto on loopback, an
            // S3-compatible store): the bucket goes in the path, since
            // virtual-hosted style would ask DNS for `BUCKET.<host>`.
            // AWS's own endpoints keep the virtual-hosted style S3 prefers.
            config = config.force_path_style(true);
        }
        AwsClient::on(aws_sdk_s3::Client::from_conf(config.build()), sdk, endpoint)
    }
}

impl AwsClient<aws_sdk_cloudwatch::Client> {
    /// A CloudWatch client on `sdk`; `attempt_timeout` bounds each try.
    pub fn cloudwatch(
        sdk: &SdkConfig,
        env: &BTreeMap<String, String>,
        attempt_timeout: Duration,
    ) -> Self {
        let (endpoint, _) = endpoint(sdk, env, "AWS_ENDPOINT_URL_CLOUDWATCH", "monitoring");
        let config = aws_sdk_cloudwatch::config::Builder::from(sdk)
            .timeout_config(attempt_timeouts(attempt_timeout))
            .build();
        AwsClient::on(aws_sdk_cloudwatch::Client::from_conf(config), sdk, endpoint)
    }
}

/// The endpoint a service's calls go to, and whether the environment named it.
fn endpoint(
    sdk: &SdkConfig,
    env: &BTreeMap<String, String>,
    service_variable: &str,
    service_host: &str,
) -> (String, bool) {
    let named = [service_variable, "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|k| env.get(*k).filter(|v| !v.is_empty()).cloned())
        .or_else(|| sdk.endpoint_url().map(str::to_string));
    match named {
        Some(url) => (url, true),
        None => (
            format!(
                "https://{service_host}.{}.amazonaws.com",
                sdk.region().map_or("<no region>", |r| r.as_ref())
            ),
            false,
        ),
    }
}

/// The SDK's default chains (region, credentials: environment, web
/// identity, ECS task role, profiles, IMDSv2) with up to five tries per
/// call. Each client sets its own per-try timeout ([`attempt_timeouts`]).
pub async fn load_aws() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .load()
        .await
}

/// `attempt` for each try of a call, and at most 3 s of it to connect.
fn attempt_timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(3)))
        .operation_attempt_timeout(attempt)
        .build()
}
