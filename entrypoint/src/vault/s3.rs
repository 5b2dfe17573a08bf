//! The S3 client the vault talks through, and where it points (for messages).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;

use crate::clients::attempt_timeouts;

/// An S3 client on the process's AWS configuration.
#[derive(Clone, Debug)]
pub struct S3 {
    pub(crate) client: aws_sdk_s3::Client,
    region: Option<String>,
    endpoint: String,
}

impl S3 {
    /// A client on `sdk`; `attempt_timeout` bounds each try of a call.
    /// `env` is the process environment (for the endpoint it names).
    pub fn new(sdk: &SdkConfig, env: &BTreeMap<String, String>, attempt_timeout: Duration) -> S3 {
        let region = sdk.region().map(|r| r.to_string());
        let named = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|k| env.get(*k).filter(|v| !v.is_empty()).cloned())
            .or_else(|| sdk.endpoint_url().map(str::to_string));
        let mut config = aws_sdk_s3::config::Builder::from(sdk)
            .timeout_config(attempt_timeouts(attempt_timeout));
        if named.is_some() {
            // An endpoint URL names one host (moto on loopback, an
            // S3-compatible store): the bucket goes in the path, since
            // virtual-hosted style would ask DNS for `BUCKET.<host>`.
            // AWS's own endpoints keep the virtual-hosted style S3 prefers.
            config = config.force_path_style(true);
        }
        let endpoint = named.unwrap_or_else(|| {
            format!(
                "https://s3.{}.amazonaws.com",
                region.as_deref().unwrap_or("<no region>")
            )
        });
        S3 {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            region,
            endpoint,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }
}
