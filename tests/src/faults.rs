//! Misbehaving servers on loopback: one that accepts and never answers, and a
//! proxy that throttles the first requests and delays the rest (a slow network).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Accepts every connection and never answers.
pub struct Blackhole {
    pub addr: SocketAddr,
}

impl Blackhole {
    pub fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        Blackhole { addr }
    }
}

/// An HTTP proxy to `upstream` that answers the first `throttle` requests with
/// the ThrottlingException Secrets Manager sends when its rate limit is hit,
/// and passes the others on after `delay` (a network round trip).
pub struct Proxy {
    pub addr: SocketAddr,
    throttled: Arc<AtomicUsize>,
    forwarded: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn throttling(upstream: SocketAddr, throttle: usize) -> Proxy {
        Proxy::start(upstream, throttle, Duration::ZERO)
    }

    pub fn delaying(upstream: SocketAddr, delay: Duration) -> Proxy {
        Proxy::start(upstream, 0, delay)
    }

    fn start(upstream: SocketAddr, throttle: usize, delay: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let throttled = Arc::new(AtomicUsize::new(0));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let (t, f) = (throttled.clone(), forwarded.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (t, f) = (t.clone(), f.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, upstream, throttle, delay, &t, &f);
                });
            }
        });
        Proxy {
            addr,
            throttled,
            forwarded,
        }
    }

    pub fn throttled(&self) -> usize {
        self.throttled.load(Ordering::SeqCst)
    }

    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }
}

fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    throttle: usize,
    delay: Duration,
    throttled: &AtomicUsize,
    forwarded: &AtomicUsize,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let request = read_request(&mut client)?;
    if throttled.fetch_add(1, Ordering::SeqCst) < throttle {
        let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
        write!(
            client,
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: ThrottlingException\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    throttled.fetch_sub(1, Ordering::SeqCst);
    forwarded.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(delay);
    let mut server = TcpStream::connect(upstream)?;
    server.set_read_timeout(Some(Duration::from_secs(10)))?;
    server.write_all(&request)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    client.write_all(&response)
}

/// One HTTP/1.1 request, rewritten to close the connection after its answer.
fn read_request(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut reader = BufReader::new(stream);
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("connection closed mid-request"));
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    head.extend_from_slice(&body);
    Ok(head)
}
