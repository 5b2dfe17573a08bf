//! Once supervising, the agent gives back what its start used: the mappings
//! of its own code (a second after the child's start), and the heap a burst
//! of connections grew (when the last one closes). It works on as before.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use agent_tests::harness::{AgentCommand, WAIT};
use agent_tests::standin_node::Behavior;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Resident kB of `pid`'s mappings for which `pick(path, permissions)` holds.
fn resident_kb(pid: Pid, pick: impl Fn(&str, &str) -> bool) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut picked = false;
    let mut total = 0;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("Rss:") {
            if picked {
                total += fields[1].parse::<u64>().unwrap();
            }
        } else if fields.len() >= 5 && fields[0].contains('-') && !fields[0].ends_with(':') {
            picked = pick(fields.get(5).copied().unwrap_or(""), fields[1]);
        }
    }
    total
}

/// The agent binary's read-only mappings: its code and constants.
fn code_kb(pid: Pid) -> u64 {
    resident_kb(pid, |path, perms| {
        path.ends_with("/agent") && !perms.contains('w')
    })
}

/// Anonymous memory: the heap and the like.
fn heap_kb(pid: Pid) -> u64 {
    resident_kb(pid, |path, perms| {
        path == "[heap]" && perms.starts_with("rw")
    })
}

fn get_health(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: agent\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // The rest of the (small) answer.
    let mut rest = [0u8; 4096];
    let _ = stream.read(&mut rest).unwrap();
}

#[test]
fn the_code_only_the_start_ran_is_unmapped_and_the_agent_works_on() {
    let mut agent = AgentCommand::exec(&Behavior::default()).start();
    agent.wait_log("serving /health");
    agent.wait_log("child started");
    let pid = agent.pid();
    let at_start = code_kb(pid);
    let deadline = Instant::now() + WAIT;
    let mut now = at_start;
    while now * 2 > at_start && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        now = code_kb(pid);
    }
    assert!(
        now * 2 <= at_start,
        "the code mapped at the start ({at_start} kB) was not given back: {now} kB"
    );

    // What it runs from now on maps again, as it is used.
    for _ in 0..20 {
        let mut stream = TcpStream::connect(agent.addr()).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        get_health(&mut stream);
    }
    assert_eq!(agent.get("/status").status, 200);
    agent.signal(Signal::SIGTERM);
    // The stand-in node ends with 0 on SIGTERM, and so does the agent.
    assert_eq!(agent.wait_exit(WAIT), Some(0));
}

#[test]
fn the_heap_of_a_burst_of_connections_is_given_back_when_the_last_closes() {
    let agent = AgentCommand::exec(&Behavior::default()).start();
    agent.wait_log("child started");
    let pid = agent.pid();
    let addr = agent.addr();
    let before = heap_kb(pid);

    // 200 connections open at once, each asking a few times; every one
    // holds its buffers until it closes.
    let mut streams: Vec<TcpStream> = (0..200)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            s
        })
        .collect();
    for _ in 0..3 {
        for stream in &mut streams {
            get_health(stream);
        }
    }
    let during = heap_kb(pid);
    drop(streams);

    let deadline = Instant::now() + WAIT;
    let mut after = heap_kb(pid);
    while after > before + (during - before) / 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        after = heap_kb(pid);
    }
    assert!(
        during > before + 256,
        "the burst did not grow the heap ({before} → {during} kB): the test shows nothing"
    );
    assert!(
        after <= before + (during - before) / 2,
        "the heap stayed grown after the last connection closed: {before} kB before, {during} kB during, {after} kB after"
    );
}
