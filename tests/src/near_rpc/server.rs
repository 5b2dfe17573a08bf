//! The stand-in's HTTP side: JSON-RPC on `POST /` (or any path outside
//! `/control/`, as providers serve it) with the scenario's fault
//! applied, the control API on `/control/…`, the request log, and the handle
//! that owns the listening task.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use near_jsonrpc_primitives::errors::{RpcError, RpcErrorKind};
use near_jsonrpc_primitives::message::{self, Message};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::methods::answer;
use super::scenario::{Fault, Scenario};

/// One JSON-RPC request as it arrived (recorded before any fault applies).
#[derive(Clone, Debug, Serialize)]
pub struct ReceivedRequest {
    /// The JSON-RPC method, or `""` when the body was not a JSON-RPC request.
    pub method: String,
    pub params: serde_json::Value,
}

impl ReceivedRequest {
    /// `params.request_type` of a `query` (e.g. `view_access_key_list`).
    pub fn request_type(&self) -> Option<&str> {
        self.params.get("request_type")?.as_str()
    }
}

/// A running stand-in. Dropping it stops the server and every connection.
pub struct NearRpcStandin {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

struct State {
    scenario: RwLock<Scenario>,
    requests: Mutex<Vec<ReceivedRequest>>,
    connections: AtomicUsize,
    started: Instant,
}

impl NearRpcStandin {
    /// Binds `addr` (port 0 picks a free port) and serves on the current
    /// tokio runtime.
    pub async fn start(addr: SocketAddr, scenario: Scenario) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            scenario: RwLock::new(scenario),
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            started: Instant::now(),
        });
        let task = tokio::spawn(serve(listener, state.clone()));
        Ok(NearRpcStandin { addr, state, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The JSON-RPC endpoint, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the chain state; requests arriving from now on see it.
    pub fn set_scenario(&self, scenario: Scenario) {
        self.state.set_scenario(scenario);
    }

    pub fn scenario(&self) -> Scenario {
        self.state.scenario()
    }

    /// Every JSON-RPC request received so far, oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many TCP connections it has accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }
}

impl Drop for NearRpcStandin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl State {
    fn scenario(&self) -> Scenario {
        self.scenario
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_scenario(&self, scenario: Scenario) {
        *self
            .scenario
            .write()
            .unwrap_or_else(PoisonError::into_inner) = scenario;
    }

    fn requests(&self) -> Vec<ReceivedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, request: ReceivedRequest) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request);
    }
}

/// Accepts until aborted; the connections live in a `JoinSet` so aborting
/// this task aborts them too (including the ones a blackhole keeps open).
async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                state.connections.fetch_add(1, Ordering::Relaxed);
                stream
            }
            Err(_) => {
                // Out of file descriptors or similar: wait, do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| route(state.clone(), request));
            // A client hanging up mid-request is not the stand-in's problem.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

type Reply = Response<BoxBody<Bytes, Infallible>>;

async fn route(state: Arc<State>, request: Request<Incoming>) -> Result<Reply, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(err) => {
            return Ok(text(
                StatusCode::BAD_REQUEST,
                format!("reading the body: {err}"),
            ));
        }
    };
    Ok(match (method, path.as_str()) {
        // Providers serve JSON-RPC under a path of their own (`/v3/<API key>`).
        (Method::POST, path) if !path.starts_with("/control/") => json_rpc(&state, &body).await,
        (Method::GET, "/control/scenario") => json(StatusCode::OK, &state.scenario()),
        (Method::PUT, "/control/scenario") => put_scenario(&state, &body),
        (Method::GET, "/control/requests") => json(StatusCode::OK, &state.requests()),
        _ => text(StatusCode::NOT_FOUND, "not found".to_string()),
    })
}

fn put_scenario(state: &State, body: &[u8]) -> Reply {
    let scenario = serde_json::from_slice::<Scenario>(body)
        .map_err(|err| err.to_string())
        .and_then(|scenario| scenario.validate().map(|()| scenario));
    match scenario {
        Ok(scenario) => {
            state.set_scenario(scenario);
            text(StatusCode::NO_CONTENT, String::new())
        }
        Err(err) => text(
            StatusCode::BAD_REQUEST,
            format!("invalid scenario: {err}\n"),
        ),
    }
}

async fn json_rpc(state: &State, body: &[u8]) -> Reply {
    let scenario = state.scenario();
    let parsed = message::from_slice(body);
    state.record(match &parsed {
        Ok(Message::Request(request)) => ReceivedRequest {
            method: request.method.clone(),
            params: request.params.clone(),
        },
        _ => ReceivedRequest {
            method: String::new(),
            params: serde_json::Value::Null,
        },
    });

    match scenario.fault {
        Fault::None => {}
        Fault::Blackhole => std::future::pending().await,
        Fault::Http500 => return text(StatusCode::INTERNAL_SERVER_ERROR, String::new()),
        Fault::DelayMs(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Fault::RedirectToPort(port) => {
            let mut reply = text(StatusCode::TEMPORARY_REDIRECT, String::new());
            let to = format!("http://127.0.0.1:{port}/");
            reply.headers_mut().insert(
                LOCATION,
                HeaderValue::from_str(&to).expect("a valid location"),
            );
            return reply;
        }
        Fault::AnswerBytes(size) => {
            let mut reply = streamed_answer(size);
            reply
                .headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(size));
            return reply;
        }
        Fault::StreamedBytes(size) => return streamed_answer(size),
    }

    let uptime_sec = state.started.elapsed().as_secs() as i64;
    let reply = match parsed {
        Ok(Message::Request(request)) => {
            Message::response(request.id.clone(), answer(&scenario, uptime_sec, &request))
        }
        Ok(_) => Message::error(RpcError::parse_error(
            "JSON RPC Request format was expected".to_string(),
        )),
        Err(broken) => broken.reply(),
    };
    json(http_status(&reply), &reply)
}

/// Handler errors travel with 200 (near-jsonrpc-client reads the body only
/// then); a malformed request is 400 and an internal error 500.
fn http_status(reply: &Message) -> StatusCode {
    let Message::Response(response) = reply else {
        return StatusCode::OK;
    };
    match response.result.as_ref().map_err(|err| &err.error_struct) {
        Err(Some(RpcErrorKind::RequestValidationError(_))) => StatusCode::BAD_REQUEST,
        Err(Some(RpcErrorKind::InternalError(_))) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    }
}

fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => respond(status, "application/json", body),
        Err(err) => text(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

fn text(status: StatusCode, body: String) -> Reply {
    respond(status, "text/plain; charset=utf-8", body.into_bytes())
}

/// The start and end of a JSON-RPC response whose result is a long string.
fn oversized_answer() -> (&'static [u8], &'static [u8]) {
    (br#"{"jsonrpc":"2.0","id":"dontcare","result":""#, br#""}"#)
}

/// An oversized answer of `size` bytes, made and sent in 64 KiB chunks as
/// the client reads them; without a `Content-Length` unless the caller adds one.
fn streamed_answer(size: u64) -> Reply {
    const CHUNK: usize = 64 * 1024;
    let (head, tail) = oversized_answer();
    let filler = size.saturating_sub((head.len() + tail.len()) as u64);
    let chunks = filler.div_ceil(CHUNK as u64);
    let body = futures::stream::iter(
        std::iter::once(Bytes::from_static(head))
            .chain((0..chunks).map(move |n| {
                let len = (filler - n * CHUNK as u64).min(CHUNK as u64) as usize;
                Bytes::from(vec![b'A'; len])
            }))
            .chain(std::iter::once(Bytes::from_static(tail)))
            .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk))),
    );
    let mut response = Response::new(StreamBody::new(body).boxed());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
