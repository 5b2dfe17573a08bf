//! A bounded HTTP GET to a local endpoint: the readiness poller, `agent health`,
//! `agent doctor` reading a running agent, the task metadata. Bounded in time
//! and in size; its errors show the URL as `scheme://host[:port]/…`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The most of a body read: an agent's `/status` or `/config` is a few
/// dozen kilobytes.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// The status code and body of `url`, or why there is none, within `timeout`.
pub async fn get(url: &str, timeout: Duration) -> Result<(u16, Bytes), String> {
    let shown = crate::keys::shown_url(url);
    match tokio::time::timeout(timeout, fetch(url, &shown)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "{shown} did not answer within {}ms",
            timeout.as_millis()
        )),
    }
}

async fn fetch(url: &str, shown: &str) -> Result<(u16, Bytes), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{shown} is not a URL: {e}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{shown} has no host"))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{shown}: {e}"))?;
    tokio::spawn(connection);
    let request = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority.as_str())
        .header(
            http::header::USER_AGENT,
            concat!("mpc-agent/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("{shown}: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{shown}: {e}"))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("{shown}: body: {e} (the most read is {MAX_BODY} bytes)"))?
        .to_bytes();
    Ok((status, body))
}
