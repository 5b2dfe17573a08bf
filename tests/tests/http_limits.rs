//! The HTTP server's limits: a flood of idle sockets under a low file-descriptor
//! limit leaves `/health` answering, a head that never ends and a keep-alive
//! connection left idle are closed within the header timeout, and a head
//! longer than the buffer is refused.
//!
//! With `ulimit -n 256` the agent cannot raise its limit; it serves at most
//! 256 − 64 = 192 connections (64 descriptors stay for itself and the child)
//! and closes the quietest connection to admit a new one.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use agent_tests::harness::{AgentCommand, http};
use agent_tests::standin_node::Behavior;

/// The agent's header-read timeout.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a test waits for the agent to close a connection.
const CLOSE_WAIT: Duration = Duration::from_secs(8);

/// Reads until the agent closes the connection; how long that took, or
/// `None` when it stayed open for `limit`.
fn time_to_close(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// Whether the peer has closed `stream`, without waiting.
fn closed_by_peer(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let closed = match (&*stream).read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

fn agent() -> agent_tests::harness::Agent {
    AgentCommand::exec(&Behavior::default()).start()
}

#[test]
fn three_hundred_idle_sockets_under_ulimit_256_leave_health_answering() {
    let agent = AgentCommand::exec(&Behavior::default())
        .with_fd_limit(256)
        .start();
    let serving = agent.wait_log("serving /health");
    assert_eq!(serving["fd_limit"], 256, "{serving}");
    assert_eq!(serving["max_connections"], 192, "{serving}");
    let addr: SocketAddr = serving["listen"].as_str().unwrap().parse().unwrap();
    agent.wait_log("child started");

    let flood_start = Instant::now();
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect"))
        .collect();
    let mut answered = 0;
    for _ in 0..10 {
        if let Ok(r) = http("GET", addr, "/health", Duration::from_secs(2))
            && r.status == 200
        {
            answered += 1;
        }
    }
    // Served because idle connections were closed to make room, not because
    // the header timeout had already emptied the table.
    assert!(
        flood_start.elapsed() < HEADER_TIMEOUT,
        "the probes took {:?}",
        flood_start.elapsed()
    );
    assert_eq!(answered, 10, "probes answered of 10");
    agent.wait_log("at the connection cap");

    // At most the cap stays open: the agent closed the rest of the 300.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut closed = 0;
    while Instant::now() < deadline {
        closed = idle.iter().filter(|s| closed_by_peer(s)).count();
        if closed >= 300 - 192 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        closed >= 300 - 192,
        "only {closed} of 300 idle sockets closed"
    );
    assert!(
        !agent.logs().iter().any(|l| l["message"] == "accept failed"),
        "the agent ran out of descriptors accepting"
    );
}

#[test]
fn a_head_sent_a_byte_at_a_time_is_closed_within_the_header_timeout() {
    let agent = agent();
    let mut stream = TcpStream::connect(agent.addr()).unwrap();
    let start = Instant::now();
    let head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut bytes = head.iter().cycle();
    let closed = loop {
        assert!(
            start.elapsed() < CLOSE_WAIT,
            "the agent kept a never-ending head open"
        );
        let byte = bytes.next().unwrap();
        if stream.write_all(&[*byte]).is_err()
            || time_to_close(&mut stream, Duration::from_millis(250)).is_some()
        {
            break start.elapsed();
        }
    };
    assert!(
        closed >= HEADER_TIMEOUT - Duration::from_millis(500) && closed <= CLOSE_WAIT,
        "closed after {closed:?}"
    );
}

#[test]
fn an_unfinished_header_line_is_closed_within_the_header_timeout() {
    let agent = agent();
    let mut stream = TcpStream::connect(agent.addr()).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x")
        .unwrap();
    let closed = time_to_close(&mut stream, CLOSE_WAIT).expect("still open after 8 s");
    assert!(
        closed >= HEADER_TIMEOUT - Duration::from_millis(500),
        "closed after {closed:?}"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_within_the_header_timeout() {
    let agent = agent();
    let mut stream = TcpStream::connect(agent.addr()).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 8192];
    let n = stream.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let closed = time_to_close(&mut stream, CLOSE_WAIT).expect("still open after 8 s");
    assert!(
        closed >= HEADER_TIMEOUT - Duration::from_secs(1),
        "closed after {closed:?}"
    );
}

#[test]
fn a_head_longer_than_the_buffer_is_refused() {
    let agent = agent();
    let mut stream = TcpStream::connect(agent.addr()).unwrap();
    let long = "a".repeat(64 * 1024);
    // The agent may close before it has read it all.
    let _ = write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Long: {long}\r\n\r\n"
    );
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // The agent still answers.
    assert_eq!(agent.get("/health").status, 200);
}
