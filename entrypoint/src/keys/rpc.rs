//! Asking one NEAR RPC endpoint: a timeout per request, a few retries with
//! backoff on transient failures (never on an answer), a deadline for all
//! that is asked of it, no redirect followed, an answer's size bounded, and
//! every failure sorted into a kind with a bounded, printable detail.
//!
//! The requests are `near-jsonrpc-client`'s method types (their parameters,
//! their response and handler-error parsers), but the agent sends them over
//! its own `reqwest` client instead of `JsonRpcClient::call`: that reads the
//! whole body into memory before looking at it (`Response::bytes`), so a
//! hostile or broken endpoint could make the agent hold any amount of data.
//! Here the body is refused when its `Content-Length` is too large and read
//! chunk by chunk up to [`MAX_ANSWER_BYTES`] otherwise.

use std::time::{Duration, Instant};

use near_jsonrpc_client::errors::{
    JsonRpcError, JsonRpcServerError, JsonRpcServerResponseStatusError,
};
use near_jsonrpc_client::methods::{self, RpcHandlerError, RpcMethod};
use near_jsonrpc_primitives::errors::{RpcError, RpcErrorKind};
use near_jsonrpc_primitives::message::{self, Message};
use near_jsonrpc_primitives::types::query::RpcQueryError;
use near_jsonrpc_primitives::types::status::RpcStatusError;
use near_primitives::errors::FunctionCallError;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::excerpt::excerpt;

/// Tries per request: the first one and two retries.
pub const ATTEMPTS: u32 = 3;
/// The waits before the second and the third try.
const BACKOFF: [Duration; ATTEMPTS as usize - 1] =
    [Duration::from_millis(200), Duration::from_millis(400)];
/// The most of one answer the agent reads. The largest it asks for is the
/// signer contract's `state()`: a few hundred bytes per participant, as a
/// JSON array of byte values.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// The most characters of an endpoint's own words (an error text, a parse
/// failure) a failure's detail quotes.
pub const MAX_DETAIL_CHARS: usize = 300;

/// The most one endpoint may take for everything the key checks ask it: one
/// request's tries and waits, and one more timeout for the other requests.
/// The whole stage is bounded by this times the number of endpoints.
pub fn endpoint_budget(timeout: Duration) -> Duration {
    timeout * (ATTEMPTS + 1) + BACKOFF.iter().sum::<Duration>()
}

/// Why an endpoint could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointFailure {
    /// `status`, `view_account`, `view_access_key_list` or `call_function state`.
    pub request: String,
    pub kind: FailureKind,
    pub detail: String,
    pub attempts: u32,
}

impl EndpointFailure {
    /// An answer that does not fit the request (e.g. another response kind).
    pub fn unexpected(request: &str, detail: impl AsRef<str>) -> EndpointFailure {
        EndpointFailure {
            request: request.to_string(),
            kind: FailureKind::UnexpectedAnswer,
            detail: excerpt(detail.as_ref(), MAX_DETAIL_CHARS),
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
pub trait HandlerError: std::fmt::Display + Sized {
    fn is_about_the_chain(&self) -> bool;

    /// The error from a JSON-RPC error's `cause` in a shape NEAR RPCs send
    /// but the client's types no longer read; `None` for any other cause.
    fn from_older_cause(_cause: &serde_json::Value) -> Option<Self> {
        None
    }
}

/// `CONTRACT_EXECUTION_ERROR` as nearcore's OpenAPI schema describes it, and
/// as providers and proxies built on earlier near-jsonrpc-primitives send it:
/// the VM's error as text only, without the `error` value the client's
/// near-jsonrpc-primitives 0.38 requires.
#[derive(serde::Deserialize)]
#[serde(tag = "name", content = "info", rename_all = "SCREAMING_SNAKE_CASE")]
enum TextOnlyQueryError {
    ContractExecutionError {
        vm_error: String,
        block_height: near_primitives::types::BlockHeight,
        block_hash: near_primitives::hash::CryptoHash,
    },
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

    /// The VM's error completed the way near-jsonrpc-client completes the
    /// legacy form (a result holding `error`): its text as
    /// `FunctionCallError::ExecutionError`. Every form then reads alike.
    fn from_older_cause(cause: &serde_json::Value) -> Option<Self> {
        let TextOnlyQueryError::ContractExecutionError {
            vm_error,
            block_height,
            block_hash,
        } = serde_json::from_value(cause.clone()).ok()?;
        Some(RpcQueryError::ContractExecutionError {
            error: FunctionCallError::ExecutionError(vm_error.clone()),
            vm_error,
            block_height,
            block_hash,
        })
    }
}

impl HandlerError for RpcStatusError {
    fn is_about_the_chain(&self) -> bool {
        false
    }
}

/// One NEAR RPC URL with its timeout and deadline.
pub struct Endpoint {
    /// The client, or why none could be made (no TLS backend).
    http: Result<reqwest::Client, String>,
    url: String,
    shown_url: String,
    timeout: Duration,
    deadline: Instant,
}

impl Endpoint {
    /// An endpoint asked through `http` (the process's shared client, see
    /// [`crate::clients`]) whose deadline, [`endpoint_budget`] from now,
    /// starts ticking. Each try, connection and body included, is bounded
    /// in `call`.
    pub fn new(url: &str, timeout: Duration, http: Result<reqwest::Client, String>) -> Endpoint {
        Endpoint {
            http,
            url: url.to_string(),
            shown_url: shown_url(url),
            timeout,
            deadline: Instant::now() + endpoint_budget(timeout),
        }
    }

    /// The URL as reports show it: scheme, host and port only.
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
            let outcome = tokio::time::timeout(limit, self.send(request, method)).await;
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
                Ok(Err(sorted)) => match sorted {
                    Sorted::Answer(answer) => {
                        tracing::debug!(
                            url = %self.shown_url,
                            request,
                            attempt,
                            elapsed_ms,
                            answer = %excerpt(&answer.to_string(), MAX_DETAIL_CHARS),
                            "NEAR RPC answered with an error"
                        );
                        return Err(CallError::Answer(answer));
                    }
                    Sorted::Failure(kind, detail) => (kind, excerpt(&detail, MAX_DETAIL_CHARS)),
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

    /// One try: the request posted, the status judged, the body read within
    /// [`MAX_ANSWER_BYTES`], the JSON-RPC answer parsed by the method's own types.
    async fn send<M>(&self, request: &str, method: &M) -> Result<M::Response, Sorted<M::Error>>
    where
        M: RpcMethod,
        M::Error: HandlerError,
    {
        use FailureKind::*;
        let payload = methods::to_json(method)
            .and_then(|json| serde_json::to_vec(&json).map_err(std::io::Error::from))
            .map_err(|err| {
                Sorted::Failure(Rejected, format!("the request could not be built: {err}"))
            })?;
        let http = self
            .http
            .as_ref()
            .map_err(|err| Sorted::Failure(Refused, err.clone()))?;
        let response = http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload)
            .send()
            .await
            .map_err(transport_failure)?;
        let status = response.status();
        if status.is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|to| to.to_str().ok())
                .map(shown_url)
                .unwrap_or_else(|| "no location".to_string());
            return Err(Sorted::Failure(
                Rejected,
                format!(
                    "answered HTTP {status} (a redirect to {to}); the agent follows no redirect: set AGENT_NEAR_RPC_URL to the URL that answers"
                ),
            ));
        }
        if status != StatusCode::OK {
            return Err(sort(JsonRpcError::ServerError(status_error(status))));
        }
        let body = read_bounded(response).await?;
        let not_an_answer = |why: &str| {
            Sorted::Failure(
                UnexpectedAnswer,
                format!(
                    "answered {} bytes that are not a JSON-RPC answer to {request} ({why})",
                    body.len()
                ),
            )
        };
        let answer = match message::from_slice(&body) {
            Ok(Message::Response(answer)) => answer,
            Ok(_) => return Err(not_an_answer("a JSON-RPC message, but no response")),
            Err(message::Broken::SyntaxError(err)) => return Err(not_an_answer(&err)),
            Err(message::Broken::Unmatched(_)) => {
                return Err(not_an_answer("JSON, but not JSON-RPC 2.0"));
            }
        };
        match answer.result {
            Ok(result) => match M::parse_handler_response(result) {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(handler)) => Err(sort(JsonRpcError::ServerError(
                    JsonRpcServerError::HandlerError(handler),
                ))),
                Err(err) => Err(not_an_answer(&format!("its result does not parse: {err}"))),
            },
            Err(error) => Err(sort(read_error::<M::Error>(error))),
        }
    }
}

/// A JSON-RPC error as the client reads it, or, when its handler error's
/// cause is in a shape the client no longer reads, as [`HandlerError::from_older_cause`]
/// reads it.
fn read_error<E>(error: RpcError) -> JsonRpcError<E>
where
    E: HandlerError + RpcHandlerError,
{
    let cause = match &error.error_struct {
        Some(RpcErrorKind::HandlerError(cause)) => Some(cause.clone()),
        _ => None,
    };
    match JsonRpcError::from(error) {
        JsonRpcError::TransportError(unread) => {
            match cause.as_deref().and_then(E::from_older_cause) {
                Some(answer) => JsonRpcError::ServerError(JsonRpcServerError::HandlerError(answer)),
                None => JsonRpcError::TransportError(unread),
            }
        }
        read => read,
    }
}

/// The body, refused when it says or turns out to be over [`MAX_ANSWER_BYTES`].
async fn read_bounded<E>(mut response: reqwest::Response) -> Result<Vec<u8>, Sorted<E>> {
    let too_large = |said: Option<u64>| {
        let said = said
            .map(|len| format!(" (Content-Length {len})"))
            .unwrap_or_default();
        Sorted::Failure(
            FailureKind::UnexpectedAnswer,
            format!(
                "answered more than {} MiB{said}; a NEAR RPC answers the key checks in kilobytes, so the agent reads no further",
                MAX_ANSWER_BYTES / (1024 * 1024)
            ),
        )
    };
    if let Some(len) = response.content_length()
        && len > MAX_ANSWER_BYTES as u64
    {
        return Err(too_large(Some(len)));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_failure)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large(None));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request that could not be sent or an answer that broke off.
fn transport_failure<E>(err: reqwest::Error) -> Sorted<E> {
    let kind = if err.is_connect() {
        FailureKind::Refused
    } else if err.is_timeout() {
        FailureKind::TimedOut
    } else {
        FailureKind::Interrupted
    };
    Sorted::Failure(kind, error_chain(&err.without_url()))
}

/// An HTTP status other than 200, as `near-jsonrpc-client` names it.
fn status_error<E>(status: StatusCode) -> JsonRpcServerError<E> {
    use JsonRpcServerResponseStatusError as S;
    match status {
        StatusCode::UNAUTHORIZED => JsonRpcServerError::ResponseStatusError(S::Unauthorized),
        StatusCode::TOO_MANY_REQUESTS => {
            JsonRpcServerError::ResponseStatusError(S::TooManyRequests)
        }
        StatusCode::BAD_REQUEST => JsonRpcServerError::ResponseStatusError(S::BadRequest),
        StatusCode::INTERNAL_SERVER_ERROR => JsonRpcServerError::InternalError {
            info: Some(String::from("Internal server error")),
        },
        StatusCode::SERVICE_UNAVAILABLE => {
            JsonRpcServerError::ResponseStatusError(S::ServiceUnavailable)
        }
        StatusCode::REQUEST_TIMEOUT => JsonRpcServerError::ResponseStatusError(S::TimeoutError),
        status => JsonRpcServerError::ResponseStatusError(S::Unexpected { status }),
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
        // Only a JSON-RPC error whose shape the client does not know.
        JsonRpcError::TransportError(err) => failure(UnexpectedAnswer, err.to_string()),
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

/// `https://user:secret@rpc.example/v3/KEY?apiKey=…` → `https://rpc.example/…`:
/// scheme, host and port only, for reports, logs, errors and `/config`. RPC
/// providers put API keys in the user part, the path and the query.
pub fn shown_url(url: &str) -> String {
    let Ok(uri) = url.trim().parse::<http::Uri>() else {
        return "(not a URL)".to_string();
    };
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return "(not a URL)".to_string();
    };
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let hidden = !matches!(uri.path(), "" | "/") || uri.query().is_some();
    let rest = if hidden { "/…" } else { "" };
    format!("{scheme}://{host}{port}{rest}")
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
            "https://rpc.example/…"
        );
        assert_eq!(
            shown_url("https://mainnet.infura.io/v3/0123456789abcdef"),
            "https://mainnet.infura.io/…"
        );
        assert_eq!(
            shown_url("https://rpc.example?key=1"),
            "https://rpc.example/…"
        );
        assert_eq!(shown_url("rpc.example/v3/KEY"), "(not a URL)");
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
    fn a_contract_failure_without_its_value_reads_like_the_legacy_form() {
        let vm_error = "wasm execution failed with error: MethodResolveError(MethodNotFound)";
        let error = |info: serde_json::Value| -> RpcError {
            serde_json::from_value(serde_json::json!({
                "name": "HANDLER_ERROR",
                "cause": { "name": "CONTRACT_EXECUTION_ERROR", "info": info },
                "code": -32000,
                "message": "Server error",
                "data": format!("Function call returned an error: {vm_error}"),
            }))
            .unwrap()
        };
        let text_only = serde_json::json!({
            "vm_error": vm_error,
            "block_height": 7,
            "block_hash": "11111111111111111111111111111111",
        });
        match read_error::<RpcQueryError>(error(text_only)) {
            JsonRpcError::ServerError(JsonRpcServerError::HandlerError(
                RpcQueryError::ContractExecutionError {
                    vm_error: read,
                    error: FunctionCallError::ExecutionError(text),
                    block_height: 7,
                    ..
                },
            )) => {
                assert_eq!(read, vm_error);
                assert_eq!(text, vm_error);
            }
            other => panic!("not read: {other:?}"),
        }
        // A cause of no known shape is still an answer the client cannot read.
        let unknown = serde_json::json!({ "vm_error": 3 });
        assert!(matches!(
            read_error::<RpcQueryError>(error(unknown)),
            JsonRpcError::TransportError(_)
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
