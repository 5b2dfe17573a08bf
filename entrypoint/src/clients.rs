//! The network clients of one process, made once and shared by every read:
//! a hold loop's re-check, the chain watch, rotation and the chain-head
//! follower find the connections (and, for AWS, the credentials) the last
//! read left open instead of paying their handshakes again.
//!
//! Every clone shares them. Use them on one tokio runtime: a pooled
//! connection belongs to the runtime that opened it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::check::error_chain;
use crate::secrets::SecretsManager;

#[derive(Clone)]
pub struct Clients {
    inner: Arc<Inner>,
}

struct Inner {
    /// NEAR RPC's HTTP client, or why none could be made (no TLS backend).
    rpc: Result<reqwest::Client, String>,
    secrets_manager: OnceCell<SecretsManager>,
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
                secrets_manager: OnceCell::new(),
            }),
        }
    }

    /// The HTTP client for NEAR RPC endpoints.
    pub(crate) fn rpc(&self) -> Result<reqwest::Client, String> {
        self.inner.rpc.clone()
    }

    /// The Secrets Manager client, made by the first call: one process has
    /// one configuration, so later calls' `env` and `attempt_timeout` are
    /// the same as the first's.
    pub(crate) async fn secrets_manager(
        &self,
        env: &BTreeMap<String, String>,
        attempt_timeout: Duration,
    ) -> SecretsManager {
        self.inner
            .secrets_manager
            .get_or_init(|| SecretsManager::connect(env, attempt_timeout))
            .await
            .clone()
    }
}
