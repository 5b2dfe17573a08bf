//! The network clients of one process, made once and shared by every read:
//! a hold loop's re-check, the chain watch, rotation, the chain-head
//! follower and the keyshare vault find the connections (and, for AWS, the
//! credentials) the last read left open instead of paying their handshakes
//! again.
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
use crate::secrets::SecretsManager;
use crate::vault::S3;

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
    secrets_manager: OnceCell<SecretsManager>,
    s3: OnceCell<S3>,
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
    pub(crate) async fn secrets_manager(
        &self,
        env: &BTreeMap<String, String>,
        attempt_timeout: Duration,
    ) -> SecretsManager {
        let sdk = self.aws().await;
        self.inner
            .secrets_manager
            .get_or_init(|| async { SecretsManager::new(sdk, env, attempt_timeout) })
            .await
            .clone()
    }

    /// The S3 client (the keyshare vault's), made by the first call on the
    /// same AWS configuration as Secrets Manager's; later calls' `env` and
    /// `attempt_timeout` are the same as the first's.
    pub async fn s3(&self, env: &BTreeMap<String, String>, attempt_timeout: Duration) -> S3 {
        let sdk = self.aws().await;
        self.inner
            .s3
            .get_or_init(|| async { S3::new(sdk, env, attempt_timeout) })
            .await
            .clone()
    }
}

/// The SDK's default chains (region, credentials: environment, web
/// identity, ECS task role, profiles, IMDSv2) with up to five tries per
/// call. Each client sets its own per-try timeout ([`attempt_timeouts`]).
pub(crate) async fn load_aws() -> SdkConfig {
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
pub(crate) fn attempt_timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(3)))
        .operation_attempt_timeout(attempt)
        .build()
}
