//! Asking one NEAR RPC endpoint: a timeout per request, a few retries with
//! backoff on transient failures (never on an answer), a deadline for all
//! that is asked of it, and every failure sorted into a kind.

use std::time::{Duration, Instant};

use near_jsonrpc_client::JsonRpcClient;
use near_jsonrpc_client::errors::{
    JsonRpcError, JsonRpcServerError, JsonRpcServerResponseStatusError, JsonRpcTransportRecvError,
    JsonRpcTransportSendError, RpcTransportError,
};
use near_jsonrpc_client::methods::RpcMethod;
use near_jsonrpc_primitives::types::query::RpcQueryError;
use near_jsonrpc_primitives::types::status::RpcStatusError;
use serde::Serialize;

/// Tries per request: the first one and two retries.
pub const ATTEMPTS: u32 = 3;
/// The waits before the second and the third try.
const BACKOFF: [Duration; ATTEMPTS as usize - 1] =
    [Duration::from_millis(200), Duration::from_millis(400)];

/// The most one endpoint may take for everything the key checks ask it: one
/// request's tries and waits, and one more timeout for the other requests.
/// The whole stage is bounded by this times the number of endpoints.
pub fn endpoint_budget(timeout: Duration) -> Duration {
    timeout * (ATTEMPTS + 1) + BACKOFF.iter().sum::<Duration>()
}

/// Why an endpoint could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// No connection: nothing listening, name not resolved, TLS refused.
    Refused,
    /// No answer within the request timeout or the endpoint's deadline.
    TimedOut,
    /// The connection broke before the answer was complete.
    Interrupted,
    /// HTTP 5xx, 429 or 408, or a JSON-RPC internal error.
    ServerError,
    /// The endpoint refused the request itself (HTTP 4xx, unknown method).
    Rejected,
    /// An answer, but not one a NEAR RPC node gives to this request.
    UnexpectedAnswer,
    /// A NEAR RPC node that says it cannot answer (not synced, shard not tracked).
    CannotServe,
}

impl FailureKind {
    /// Worth another try on the same endpoint.
    fn transient(self) -> bool {
        matches!(
            self,
            FailureKind::Refused
                | FailureKind::TimedOut
                | FailureKind::Interrupted
                | FailureKind::ServerError
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::TimedOut => "timed out",
            FailureKind::Interrupted => "interrupted",
            FailureKind::ServerError => "server error",
            FailureKind::Rejected => "rejected the request",
            FailureKind::UnexpectedAnswer => "unexpected answer",
            FailureKind::CannotServe => "cannot serve",
        }
    }
}

/// An endpoint that could not answer a request, after every try it got.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EndpointFailure {
    /// `status`, `view_account`, `view_access_key_list` or `call_function state`.
    pub request: String,
    pub kind: FailureKind,
    pub detail: String,
    pub attempts: u32,
}

impl EndpointFailure {
    /// An answer that does not fit the request (e.g. another response kind).
    pub fn unexpected(request: &str, detail: impl Into<String>) -> EndpointFailure {
        EndpointFailure {
            request: request.to_string(),
            kind: FailureKind::UnexpectedAnswer,
            detail: detail.into(),
            attempts: 1,
        }
    }
}

/// A request's outcome other than the answer hoped for.
#[derive(Debug)]
pub enum CallError<E> {
    /// The node answered with a handler error about the chain (e.g. `UNKNOWN_ACCOUNT`).
    Answer(E),
    Endpoint(EndpointFailure),
}

/// Handler errors: either an answer about the chain, or the node saying it
/// cannot answer (which another endpoint may not say).
pub trait HandlerError: std::fmt::Display {
    fn is_about_the_chain(&self) -> bool;
}

impl HandlerError for RpcQueryError {
    fn is_about_the_chain(&self) -> bool {
        match self {
            RpcQueryError::InvalidAccount { .. }
            | RpcQueryError::UnknownAccount { .. }
            | RpcQueryError::NoContractCode { .. }
            | RpcQueryError::TooLargeContractState { .. }
            | RpcQueryError::UnknownAccessKey { .. }
            | RpcQueryError::UnknownGasKey { .. }
            | RpcQueryError::TooManyAccessKeys { .. }
            | RpcQueryError::ContractExecutionError { .. }
            | RpcQueryError::NoGlobalContractCode { .. } => true,
            RpcQueryError::NoSyncedBlocks
            | RpcQueryError::UnavailableShard { .. }
            | RpcQueryError::GarbageCollectedBlock { .. }
            | RpcQueryError::UnknownBlock { .. }
            | RpcQueryError::InternalError { .. } => false,
        }
    }
}

impl HandlerError for RpcStatusError {
    fn is_about_the_chain(&self) -> bool {
        false
    }
}

/// One NEAR RPC URL with its timeout and deadline.
pub struct Endpoint {
    client: JsonRpcClient,
    shown_url: String,
    timeout: Duration,
    deadline: Instant,
}

impl Endpoint {
    /// An endpoint whose deadline, [`endpoint_budget`] from now, starts ticking.
    pub fn new(url: &str, timeout: Duration) -> Endpoint {
        Endpoint {
            client: JsonRpcClient::connect(url),
            shown_url: shown_url(url),
            timeout,
            deadline: Instant::now() + endpoint_budget(timeout),
        }
    }

    /// The URL as reports show it: without credentials or query string.
    pub fn shown_url(&self) -> &str {
        &self.shown_url
    }

    /// Sends `method`, trying again on transient failures while tries and
    /// time are left. `request` names it in logs and failures.
    pub async fn call<M>(
        &self,
        request: &str,
        method: &M,
    ) -> Result<M::Response, CallError<M::Error>>
    where
        M: RpcMethod,
        M::Error: HandlerError,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = self.deadline.saturating_duration_since(Instant::now());
            let limit = self.timeout.min(left);
            let started = Instant::now();
            let outcome = tokio::time::timeout(limit, self.client.call(method)).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let (kind, detail) = match outcome {
                Ok(Ok(response)) => {
                    tracing::debug!(
                        url = %self.shown_url,
                        request,
                        attempt,
                        elapsed_ms,
                        "NEAR RPC answered"
                    );
                    return Ok(response);
                }
                Ok(Err(err)) => match sort(err) {
                    Sorted::Answer(answer) => {
                        tracing::debug!(
                            url = %self.shown_url,
                            request,
                            attempt,
                            elapsed_ms,
                            %answer,
                            "NEAR RPC answered with an error"
                        );
                        return Err(CallError::Answer(answer));
                    }
                    Sorted::Failure(kind, detail) => (kind, detail),
                },
                Err(_) if limit < self.timeout => (
                    FailureKind::TimedOut,
                    format!(
                        "no answer before the endpoint's deadline ({} ms for everything asked of it)",
                        endpoint_budget(self.timeout).as_millis()
                    ),
                ),
                Err(_) => (
                    FailureKind::TimedOut,
                    format!("no answer within {} ms", limit.as_millis()),
                ),
            };
            tracing::debug!(
                url = %self.shown_url,
                request,
                attempt,
                elapsed_ms,
                kind = kind.as_str(),
                detail,
                "NEAR RPC request failed"
            );
            let wait = BACKOFF.get(attempt as usize - 1).copied();
            let left = self.deadline.saturating_duration_since(Instant::now());
            match wait {
                Some(wait) if kind.transient() && wait < left => tokio::time::sleep(wait).await,
                _ => {
                    return Err(CallError::Endpoint(EndpointFailure {
                        request: request.to_string(),
                        kind,
                        detail,
                        attempts: attempt,
                    }));
                }
            }
        }
    }
}

enum Sorted<E> {
    Answer(E),
    Failure(FailureKind, String),
}

/// Sorts a client error into an answer about the chain or a failure kind.
fn sort<E: HandlerError>(err: JsonRpcError<E>) -> Sorted<E> {
    use FailureKind::*;
    let failure = |kind, detail: String| Sorted::Failure(kind, detail);
    match err {
        JsonRpcError::TransportError(RpcTransportError::SendError(send)) => match send {
            JsonRpcTransportSendError::PayloadSendError(err) => {
                let kind = if err.is_connect() {
                    Refused
                } else {
                    Interrupted
                };
                failure(kind, error_chain(&err.without_url()))
            }
            JsonRpcTransportSendError::PayloadSerializeError(err) => {
                failure(Rejected, format!("the request could not be built: {err}"))
            }
        },
        JsonRpcError::TransportError(RpcTransportError::RecvError(recv)) => match recv {
            JsonRpcTransportRecvError::PayloadRecvError(err) => {
                failure(Interrupted, error_chain(&err.without_url()))
            }
            other => failure(UnexpectedAnswer, other.to_string()),
        },
        JsonRpcError::ServerError(server) => match server {
            JsonRpcServerError::HandlerError(answer) if answer.is_about_the_chain() => {
                Sorted::Answer(answer)
            }
            JsonRpcServerError::HandlerError(answer) => failure(CannotServe, answer.to_string()),
            JsonRpcServerError::InternalError { info } => failure(
                ServerError,
                format!(
                    "internal error: {}",
                    info.unwrap_or_else(|| "no details".to_string())
                ),
            ),
            JsonRpcServerError::ResponseStatusError(status) => {
                let kind = match &status {
                    JsonRpcServerResponseStatusError::TooManyRequests
                    | JsonRpcServerResponseStatusError::TimeoutError
                    | JsonRpcServerResponseStatusError::ServiceUnavailable => ServerError,
                    JsonRpcServerResponseStatusError::Unexpected { status }
                        if status.is_server_error() =>
                    {
                        ServerError
                    }
                    _ => Rejected,
                };
                failure(kind, status.to_string())
            }
            JsonRpcServerError::RequestValidationError(err) => {
                failure(Rejected, format!("request validation error: {err:?}"))
            }
            JsonRpcServerError::NonContextualError(err) => {
                failure(Rejected, format!("error without a cause: {err}"))
            }
        },
    }
}

/// An error and its sources on one line: `error sending request: client
/// error (Connect): tcp connect error: Connection refused (os error 111)`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `https://user:secret@rpc.example/v1?apiKey=…` → `https://rpc.example/v1?…`:
/// RPC providers put API keys in the user part and the query.
/// `url` without credentials or query string (providers put API keys there),
/// for reports, logs and `/config`.
pub fn shown_url(url: &str) -> String {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return url.split(['?', '@']).next().unwrap_or_default().to_string();
    };
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let path = match uri.path() {
        "/" => "",
        path => path,
    };
    let query = if uri.query().is_some() { "?…" } else { "" };
    format!("{scheme}://{host}{port}{path}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_drop_credentials_and_queries() {
        assert_eq!(
            shown_url("https://rpc.testnet.near.org"),
            "https://rpc.testnet.near.org"
        );
        assert_eq!(shown_url("http://127.0.0.1:3030/"), "http://127.0.0.1:3030");
        assert_eq!(
            shown_url("https://user:s3cret@rpc.example/v1?apiKey=abc"),
            "https://rpc.example/v1?…"
        );
        assert_eq!(shown_url("http://[::1]:3030"), "http://[::1]:3030");
    }

    #[test]
    fn the_budget_covers_every_try_and_wait() {
        assert_eq!(
            endpoint_budget(Duration::from_secs(5)),
            Duration::from_millis(20_600)
        );
    }

    #[test]
    fn handler_errors_about_the_chain_are_answers() {
        let unknown = RpcQueryError::UnknownAccount {
            requested_account_id: "a.near".parse().unwrap(),
            block_height: 1,
            block_hash: Default::default(),
        };
        assert!(matches!(
            sort(JsonRpcError::ServerError(JsonRpcServerError::HandlerError(
                unknown
            ))),
            Sorted::Answer(_)
        ));
        let unsynced = RpcQueryError::NoSyncedBlocks;
        assert!(matches!(
            sort(JsonRpcError::ServerError(JsonRpcServerError::HandlerError(
                unsynced
            ))),
            Sorted::Failure(FailureKind::CannotServe, _)
        ));
    }

    #[test]
    fn server_errors_are_retried_and_client_errors_are_not() {
        let sorted =
            |err: JsonRpcServerError<RpcStatusError>| match sort(JsonRpcError::ServerError(err)) {
                Sorted::Failure(kind, _) => kind,
                Sorted::Answer(_) => panic!("not an answer"),
            };
        let status = JsonRpcServerError::ResponseStatusError;
        assert_eq!(
            sorted(JsonRpcServerError::InternalError { info: None }),
            FailureKind::ServerError
        );
        assert_eq!(
            sorted(status(JsonRpcServerResponseStatusError::ServiceUnavailable)),
            FailureKind::ServerError
        );
        assert_eq!(
            sorted(status(JsonRpcServerResponseStatusError::Unauthorized)),
            FailureKind::Rejected
        );
        assert!(FailureKind::ServerError.transient());
        assert!(!FailureKind::Rejected.transient());
        assert!(!FailureKind::CannotServe.transient());
    }
}
