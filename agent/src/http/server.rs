//! The HTTP server: `/health`, `/ready`, `/status`, `/metrics`, `/config`.
//! It answers from the state snapshot and never waits on the child or the network.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use entrypoint::check::Status;
use entrypoint::config::LogTailAccess;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::http::admission::Admission;
use crate::life::metrics::RequestLabels;
use crate::life::state::{Health, LogTail, State};

const PATHS: [&str; 5] = ["/health", "/ready", "/status", "/metrics", "/config"];

/// Binds the listener; a failure names the setting to change.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| {
        format!("cannot listen on AGENT_LISTEN={addr}: {e}; choose a free address and port (the node uses 8080, 8079, 34001, 3030, 24567 and 80)")
    })
}

/// How long a client has to send a request's head, from the moment the
/// connection opens or its previous answer went out: also the longest an idle
/// keep-alive connection stays open.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a connection buffers (a request head may not be longer); hyper's
/// default is about 400 KB.
pub const MAX_BUF: usize = 16 * 1024;
/// How long a rendered `/health` answer is served again while the state it
/// shows is unchanged: its `time` and the child's uptime are at most this old.
const HEALTH_FRESH: Duration = Duration::from_secs(1);
/// At most one log line per this about failed accepts or full tables.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// Serves on `listener` until the process exits, at most `cap` connections
/// at once; `/status` carries the node's log tail for the clients `access` allows.
pub fn spawn(
    listener: TcpListener,
    state: State,
    tail: Arc<LogTail>,
    cap: usize,
    access: LogTailAccess,
) {
    let admission = Admission::new(cap);
    let health = Arc::new(HealthCache::default());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .max_buf_size(MAX_BUF);
    tokio::spawn(async move {
        let mut accept_errors = Throttle::new(LOG_EVERY);
        let mut evictions = Throttle::new(LOG_EVERY);
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    if let Some(suppressed) = accept_errors.allow(Instant::now()) {
                        tracing::warn!(error = %e, suppressed, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let admitted = admission.admit();
            if admitted.evicted_one {
                if let Some(suppressed) = evictions.allow(Instant::now()) {
                    tracing::warn!(
                        cap = admission.cap(),
                        suppressed,
                        "at the connection cap: closed the quietest connection to admit a new one"
                    );
                }
                // Let the evicted connection's task run and give its descriptor
                // back before the next accept takes one.
                tokio::task::yield_now().await;
            }
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            let tail = tail.clone();
            let health = health.clone();
            let http = http.clone();
            tokio::spawn(async move {
                let mut ticket = admitted.ticket;
                let activity = ticket.activity.clone();
                // Decided by the connection's peer address, never by a header.
                let tail = if access.allows(peer.ip()) {
                    Tail::Shown(tail)
                } else {
                    Tail::Withheld(access)
                };
                let service = service_fn(move |req| {
                    activity.touch();
                    let response = respond(&req, &state, &tail, &health);
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = http.serve_connection(TokioIo::new(stream), service);
                // Connection errors (a client hanging up, a head too slow or too
                // long) concern nobody; an evicted connection is dropped, closing it.
                tokio::select! {
                    _ = connection => {}
                    _ = &mut ticket.evicted => {}
                }
            });
        }
    });
}

/// Lets one event in per period through to the log, counting the rest.
struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(events suppressed since the last one logged)` when this one may be logged.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// What this connection gets of the node's log tail.
enum Tail {
    Shown(Arc<LogTail>),
    Withheld(LogTailAccess),
}

impl Tail {
    fn status(&self, state: &State) -> crate::life::views::Status {
        match self {
            Tail::Shown(tail) => state.status(tail.lines()),
            Tail::Withheld(access) => {
                let mut status = state.status(Vec::new());
                status.log_tail_withheld = Some(match access {
                    LogTailAccess::Never => {
                        "the node's log tail is not served (AGENT_STATUS_LOG_TAIL=never)"
                            .to_string()
                    }
                    _ => format!(
                        "the node's log tail is served to loopback clients only (AGENT_STATUS_LOG_TAIL={}): run agent doctor or curl inside the container",
                        access.as_str()
                    ),
                });
                status
            }
        }
    }
}

fn respond(
    req: &Request<Incoming>,
    state: &State,
    tail: &Tail,
    health: &HealthCache,
) -> Response<Full<Bytes>> {
    let path = PATHS
        .iter()
        .copied()
        .find(|p| *p == req.uri().path())
        .unwrap_or("other");
    let response = if path == "other" {
        json(
            StatusCode::NOT_FOUND,
            "application/json",
            &serde_json::json!({ "error": "not found", "paths": PATHS }),
        )
    } else if req.method() != Method::GET {
        let mut r = json(
            StatusCode::METHOD_NOT_ALLOWED,
            "application/json",
            &serde_json::json!({ "error": "method not allowed", "allow": "GET" }),
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        r
    } else {
        match path {
            "/health" => health.answer(state),
            "/ready" => ready(state),
            "/status" => json(StatusCode::OK, "application/json", &tail.status(state)),
            "/metrics" => metrics(state),
            _ => json(StatusCode::OK, "application/json", &state.config()),
        }
    };
    state
        .metrics()
        .http_requests
        .get_or_create(&RequestLabels {
            path,
            code: response.status().as_u16(),
        })
        .inc();
    response
}

/// The last `/health` answer, rendered once and served again (a reference
/// count, no rendering) while the state shows the same and it is fresh.
#[derive(Default)]
struct HealthCache(Mutex<Option<RenderedHealth>>);

struct RenderedHealth {
    shown: Health,
    at: Instant,
    code: StatusCode,
    body: Bytes,
}

impl HealthCache {
    fn answer(&self, state: &State) -> Response<Full<Bytes>> {
        let now = Instant::now();
        let health = state.health();
        let mut cached = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fresh = cached.as_ref().is_some_and(|r| {
            r.shown.same_answer(&health) && now.duration_since(r.at) < HEALTH_FRESH
        });
        if !fresh {
            let (code, body) = render_health(&health);
            *cached = Some(RenderedHealth {
                shown: health,
                at: now,
                code,
                body,
            });
        }
        let rendered = cached.as_ref().expect("rendered above");
        body_response(
            rendered.code,
            "application/health+json",
            rendered.body.clone(),
        )
    }
}

/// Liveness in the `application/health+json` format (draft-inadarei-api-health-check).
fn render_health(h: &Health) -> (StatusCode, Bytes) {
    let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let time = time.as_str();
    let ready = h.ready.is_ready();
    let body = HealthBody {
        status: health_status(h.status),
        version: "1",
        release_id: env!("CARGO_PKG_VERSION"),
        service_id: "mpc-agent",
        output: &h.output,
        checks: HealthChecks {
            phase: [Component {
                component_id: "agent",
                component_type: "system",
                observed_value: h.phase.as_str(),
                observed_unit: None,
                status: health_status(h.status),
                output: None,
                time,
            }],
            uptime: h.child_uptime.map(|uptime| {
                [Component {
                    component_id: "child",
                    component_type: "component",
                    observed_value: uptime.as_secs_f64(),
                    observed_unit: Some("s"),
                    status: "pass",
                    output: None,
                    time,
                }]
            }),
            restarts: [Component {
                component_id: "child",
                component_type: "component",
                observed_value: h.restarts,
                observed_unit: None,
                status: if h.restarts == 0 { "pass" } else { "warn" },
                output: None,
                time,
            }],
            ready: [Component {
                component_id: "child",
                component_type: "component",
                observed_value: ready,
                observed_unit: None,
                status: if ready { "pass" } else { "warn" },
                output: Some(h.ready.detail()),
                time,
            }],
        },
    };
    let code = if h.status == Status::Fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, json_bytes(&body))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthBody<'a> {
    status: &'static str,
    version: &'static str,
    release_id: &'static str,
    service_id: &'static str,
    output: &'a str,
    checks: HealthChecks<'a>,
}

#[derive(Serialize)]
struct HealthChecks<'a> {
    #[serde(rename = "agent:phase")]
    phase: [Component<'a, &'static str>; 1],
    #[serde(rename = "child:uptime", skip_serializing_if = "Option::is_none")]
    uptime: Option<[Component<'a, f64>; 1]>,
    #[serde(rename = "child:restarts")]
    restarts: [Component<'a, u64>; 1],
    #[serde(rename = "child:ready")]
    ready: [Component<'a, bool>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Component<'a, V> {
    component_id: &'static str,
    component_type: &'static str,
    observed_value: V,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed_unit: Option<&'static str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a str>,
    time: &'a str,
}

fn health_status(status: Status) -> &'static str {
    match status {
        Status::Fail => "fail",
        Status::Warn => "warn",
        Status::Ok | Status::Skipped => "pass",
    }
}

fn ready(state: &State) -> Response<Full<Bytes>> {
    let r = state.ready();
    let code = if r.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(code, "application/json", &r.view())
}

fn metrics(state: &State) -> Response<Full<Bytes>> {
    state.refresh_metrics();
    let body = state.metrics().encode();
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

fn json(
    code: StatusCode,
    content_type: &'static str,
    body: &impl Serialize,
) -> Response<Full<Bytes>> {
    body_response(code, content_type, json_bytes(body))
}

fn json_bytes(body: &impl Serialize) -> Bytes {
    let mut bytes = serde_json::to_vec(body).expect("a JSON value serializes");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn body_response(
    code: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(body))
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::life::Event;
    use crate::life::Phase;
    use crate::life::state::Judgement;
    use crate::life::views::Settings;

    async fn body(response: Response<Full<Bytes>>) -> Bytes {
        use http_body_util::BodyExt;
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn health_is_rendered_again_only_when_what_it_shows_changes() {
        let settings = Settings {
            valid: true,
            command: "exec".into(),
            file: None,
            settings: Vec::new(),
        };
        let state = State::new(Judgement::default(), settings);
        let cache = HealthCache::default();
        let first = body(cache.answer(&state)).await;
        let again = body(cache.answer(&state)).await;
        assert_eq!(first.as_ptr(), again.as_ptr(), "the same rendering, shared");

        state.apply(Event::Enter(entrypoint::stage::Stage::Secrets));
        let changed = body(cache.answer(&state)).await;
        assert_ne!(first.as_ptr(), changed.as_ptr());
        let shown: serde_json::Value = serde_json::from_slice(&changed).unwrap();
        assert_eq!(
            shown["checks"]["agent:phase"][0]["observedValue"],
            Phase::Secrets.as_str()
        );
    }

    #[test]
    fn the_throttle_logs_one_event_a_period_and_counts_the_rest() {
        let start = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(1));
        assert_eq!(t.allow(start), Some(0));
        for ms in [1, 10, 999] {
            assert_eq!(t.allow(start + Duration::from_millis(ms)), None);
        }
        assert_eq!(t.allow(start + Duration::from_millis(1000)), Some(3));
        assert_eq!(t.allow(start + Duration::from_millis(2500)), Some(0));
    }
}
