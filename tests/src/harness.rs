//! Drives the real `agent` binary as a process: starts it with a clean
//! environment, follows its output, asks its HTTP endpoints, signals it, and
//! waits for it — every wait bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use agent::views::{
    ConfigProblems, ConfigView, DoctorReport, KeysReport, Phase, Ready, Reported, Settings, Status,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::standin_node::Behavior;

/// `target/debug` (or wherever this test binary was built).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

pub fn agent_bin() -> PathBuf {
    built("agent")
}

pub fn standin_node_bin() -> PathBuf {
    built("mpc-node")
}

fn built(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// Lines read from one of the agent's streams, with a way to wait for more.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    fn follow(self, source: impl Read + Send + 'static) {
        std::thread::spawn(move || {
            for line in BufReader::new(source).lines() {
                let Ok(line) = line else { break };
                let (lines, more) = &*self.0;
                lines.lock().unwrap().push(line);
                more.notify_all();
            }
        });
    }

    pub fn all(&self) -> Vec<String> {
        self.0.0.lock().unwrap().clone()
    }

    /// Waits until a line satisfies `pred`; returns it, or `None` after `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lines, more) = &*self.0;
        let mut guard = lines.lock().unwrap();
        // Each line is tested once: the reader thread is not kept waiting on
        // the lock while every earlier line is tested again.
        let mut tested = 0;
        loop {
            if let Some(hit) = guard[tested..].iter().find(|l| pred(l)) {
                return Some(hit.clone());
            }
            tested = guard.len();
            let left = deadline.checked_duration_since(Instant::now())?;
            guard = more.wait_timeout(guard, left).unwrap().0;
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A `/health` body in the `application/health+json` format
/// (draft-inadarei-api-health-check), the members the agent writes.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthDoc {
    /// `pass`, `warn` or `fail`.
    pub status: String,
    pub version: String,
    pub release_id: String,
    pub service_id: String,
    /// What the agent is doing, or what is wrong.
    pub output: String,
    /// By name (`agent:phase`, `child:uptime`, …), each a list of components.
    pub checks: std::collections::BTreeMap<String, Vec<HealthComponent>>,
}

/// One component of a `/health` check.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthComponent {
    pub component_id: String,
    pub component_type: String,
    pub observed_value: Value,
    pub observed_unit: Option<String>,
    pub status: String,
    pub output: Option<String>,
    pub time: String,
}

impl HealthDoc {
    /// The component of check `name`; panics naming the checks there are.
    pub fn component(&self, name: &str) -> &HealthComponent {
        self.checks
            .get(name)
            .and_then(|c| c.first())
            .unwrap_or_else(|| panic!("no /health check {name} in {:?}", self.checks.keys()))
    }
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The answer of `/status` as the agent's own view: a field renamed or
    /// missing fails here, not as a silent `null`.
    pub fn status_view(&self) -> Status {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not the agent's /status ({e}): {}", self.body))
    }

    /// The answer of `/health`, read as the `application/health+json` format
    /// lays it out: a member renamed or missing fails here.
    pub fn health(&self) -> HealthDoc {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not an application/health+json body ({e}): {}", self.body))
    }

    /// The answer of `/ready` as the agent's own view.
    pub fn ready_view(&self) -> Ready {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not the agent's /ready ({e}): {}", self.body))
    }

    /// The answer of `/config` as the agent's own view.
    pub fn config_view(&self) -> ConfigView {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not the agent's /config ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection, bounded by `timeout`.
pub fn http(
    method: &str,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {raw:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_string(),
    })
}

/// How to start an agent.
pub struct AgentCommand {
    command: Command,
    pid1: bool,
}

impl AgentCommand {
    /// `agent <args…>` with a clean environment: only PATH and the test's own
    /// settings, a loopback listener on a free port and JSON logs.
    pub fn new<I, S>(args: I) -> AgentCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(agent_bin());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AGENT_LISTEN", "127.0.0.1:0")
            .env("AGENT_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            // Never ask a real instance metadata service from a test.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        AgentCommand {
            command,
            pid1: false,
        }
    }

    /// `agent exec -- mpc-node behave --json <behavior>`.
    pub fn exec(behavior: &Behavior) -> AgentCommand {
        let json = serde_json::to_string(behavior).unwrap();
        let mut c = AgentCommand::new(["exec", "--"]);
        c.command
            .arg(standin_node_bin())
            .args(["behave", "--json", &json]);
        c
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Leaves `key` out of the agent's environment (it starts with `RUST_LOG=info`).
    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    pub fn envs<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.command.envs(vars);
        self
    }

    /// Runs the agent to its end (at most [`WAIT`]).
    pub fn run(self) -> Output {
        let mut agent = self.start();
        let code = agent.exit_code();
        Output {
            code,
            stdout: agent.stdout.all().join("\n"),
            stderr: agent.stderr.all().join("\n"),
        }
    }

    /// Runs the agent as PID 1 of a new PID namespace (`unshare --pid --fork`).
    pub fn as_pid1(self) -> AgentCommand {
        let mut wrapped = self.wrapped_in("unshare", &["--pid", "--fork", "--kill-child"]);
        wrapped.pid1 = true;
        wrapped
    }

    /// Runs the agent with soft and hard `RLIMIT_NOFILE` set to `limit`
    /// (`sh -c 'ulimit -n <limit>; exec agent …'`), so it cannot raise it.
    pub fn with_fd_limit(self, limit: u32) -> AgentCommand {
        let script = format!("ulimit -n {limit} && exec \"$0\" \"$@\"");
        self.wrapped_in("sh", &["-c", &script])
    }

    /// Runs the agent in a mount namespace of its own in which `/tmp` is
    /// bound read-only (`unshare --mount`: nothing changes outside it).
    /// `None`, with the test noted as skipped, where that is not permitted.
    pub fn with_read_only_tmp(self) -> Option<AgentCommand> {
        let permitted = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "true"])
            .status()
            .is_ok_and(|s| s.success());
        if !permitted {
            crate::skipped("unshare --mount is not permitted here");
            return None;
        }
        let script =
            "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && exec \"$0\" \"$@\"";
        Some(self.wrapped_in(
            "unshare",
            &["--mount", "--propagation", "private", "sh", "-c", script],
        ))
    }

    /// The same command, its environment kept, run by `program` with `args` before it.
    fn wrapped_in(self, program: &str, args: &[&str]) -> AgentCommand {
        let mut command = Command::new(program);
        command
            .args(args)
            .arg(self.command.get_program())
            .args(self.command.get_args());
        command.env_clear();
        for (k, v) in self.command.get_envs() {
            if let Some(v) = v {
                command.env(k, v);
            }
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        AgentCommand {
            command,
            pid1: self.pid1,
        }
    }

    pub fn start(mut self) -> Agent {
        let mut child = self.command.spawn().expect("start the agent");
        let stdout = Lines::default();
        let stderr = Lines::default();
        stdout.clone().follow(child.stdout.take().unwrap());
        stderr.clone().follow(child.stderr.take().unwrap());
        Agent {
            child,
            pid1: self.pid1,
            stdout,
            stderr,
            exit: None,
        }
    }
}

/// A running agent process.
pub struct Agent {
    child: Child,
    /// Started as PID 1 of a new namespace, under `unshare`.
    pid1: bool,
    pub stdout: Lines,
    pub stderr: Lines,
    exit: Option<i32>,
}

pub const WAIT: Duration = Duration::from_secs(20);

impl Agent {
    /// The agent's pid as the tests see it (for `as_pid1`, the child of `unshare`).
    pub fn pid(&self) -> Pid {
        let started = Pid::from_raw(self.child.id() as i32);
        if !self.pid1 {
            return started;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some((pid, _)) = children_of(started).first() {
                return *pid;
            }
            assert!(Instant::now() < deadline, "unshare never forked the agent");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The agent's own JSON log lines.
    pub fn logs(&self) -> Vec<Value> {
        self.stdout
            .all()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("level").is_some() && v.get("target").is_some())
            .collect()
    }

    /// The agent's metrics lines so far, in order, each read by the
    /// Embedded Metric Format's rules: a line that breaks one fails here.
    pub fn metric_lines(&self) -> Vec<crate::emf::Line> {
        crate::emf::valid_lines(&self.stdout.all())
    }

    /// Waits until the agent has written `count` metrics lines; returns them.
    pub fn wait_metric_lines(&self, count: usize) -> Vec<crate::emf::Line> {
        let deadline = Instant::now() + WAIT;
        loop {
            let lines = self.metric_lines();
            if lines.len() >= count {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{} metrics lines, not {count}, within {WAIT:?}",
                lines.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a metrics line that satisfies `pred`; returns it.
    pub fn wait_metric_line(&self, pred: impl Fn(&crate::emf::Line) -> bool) -> crate::emf::Line {
        let parse = |text: &str| crate::emf::Line::parse(text).ok().filter(|l| pred(l));
        self.stdout
            .wait_for(WAIT, |text| {
                text.contains("\"_aws\"") && parse(text).is_some()
            })
            .and_then(|text| parse(&text))
            .unwrap_or_else(|| {
                panic!(
                    "no such metrics line; metrics lines: {:#?}\nstderr: {:#?}",
                    self.metric_lines(),
                    self.stderr.all()
                )
            })
    }

    /// Waits for an agent log line whose message contains `text`.
    pub fn wait_log(&self, text: &str) -> Value {
        let line = self
            .stdout
            .wait_for(WAIT, |l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .and_then(|v| {
                        v.get("message")
                            .and_then(|m| m.as_str())
                            .map(|m| m.contains(text))
                    })
                    .unwrap_or(false)
            })
            .unwrap_or_else(|| {
                panic!(
                    "no log line containing {text:?}; stdout: {:#?}\nstderr: {:#?}",
                    self.stdout.all(),
                    self.stderr.all()
                )
            });
        serde_json::from_str(&line).unwrap()
    }

    /// The address the HTTP server listens on, once it does.
    pub fn addr(&self) -> SocketAddr {
        let line = self.wait_log("serving /health");
        line["listen"]
            .as_str()
            .expect("listen field")
            .parse()
            .expect("listen address")
    }

    pub fn get(&self, path: &str) -> Response {
        http("GET", self.addr(), path, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `/status`, as the agent's own view.
    pub fn status(&self) -> Status {
        self.get("/status").status_view()
    }

    /// The pid of the child `/status` shows running, when one runs.
    pub fn child_pid(&self) -> Option<i32> {
        crate::views::child_pid(&self.status())
    }

    /// Polls `/status` until `pred` holds on its view; panics with the last
    /// answer after `timeout`.
    pub fn wait_status(&self, timeout: Duration, pred: impl Fn(&Status) -> bool) -> Status {
        self.wait_until("/status", timeout, |r| pred(&r.status_view()))
            .status_view()
    }

    /// Polls `/health` until it answers 200 saying `status` (`pass`, `warn`);
    /// its body.
    pub fn wait_health(&self, timeout: Duration, status: &str) -> HealthDoc {
        self.wait_health_saying(timeout, status, "")
    }

    /// [`Agent::wait_health`] until its output also holds `text`: another
    /// warning that comes first (the node's metrics not read yet, a first
    /// try still under way) is waited out, not taken for this one.
    pub fn wait_health_saying(&self, timeout: Duration, status: &str, text: &str) -> HealthDoc {
        self.wait_until("/health", timeout, |r| {
            r.status == 200 && {
                let health = r.health();
                health.status == status && health.output.contains(text)
            }
        })
        .health()
    }

    /// Polls `/status` until the agent is in `phase`; panics with the last
    /// answer after `timeout`.
    pub fn wait_phase(&self, timeout: Duration, phase: Phase) -> Status {
        self.wait_status(timeout, |s| s.phase == Reported::Known(phase))
    }

    /// Polls `GET path` until `pred` holds; panics with the last answer after `timeout`.
    pub fn wait_until(
        &self,
        path: &str,
        timeout: Duration,
        pred: impl Fn(&Response) -> bool,
    ) -> Response {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.get(path);
            if pred(&r) {
                return r;
            }
            if Instant::now() > deadline {
                panic!(
                    "GET {path} never satisfied the condition; last answer: {} {}",
                    r.status, r.body
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signal the agent");
    }

    /// The exit code (128+n for signal n), waiting at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        if self.exit.is_some() {
            return self.exit;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                use std::os::unix::process::ExitStatusExt;
                let code = status
                    .code()
                    .or_else(|| status.signal().map(|s| 128 + s))
                    .expect("an exit code or a signal");
                self.exit = Some(code);
                // The streams may still hold the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return self.exit;
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Like [`Agent::wait_exit`], panicking with the output when it does not exit.
    pub fn exit_code(&mut self) -> i32 {
        match self.wait_exit(WAIT) {
            Some(code) => code,
            None => panic!(
                "the agent did not exit within {WAIT:?}; stdout: {:#?}\nstderr: {:#?}",
                self.stdout.all(),
                self.stderr.all()
            ),
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.exit.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            if self.wait_exit(Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// One line of `/proc/<pid>/stat`, the fields the tests look at.
struct ProcStat {
    pid: Pid,
    state: char,
    ppid: i32,
    pgrp: i32,
}

/// Every process visible in `/proc`.
fn processes() -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
            let (_, after) = stat.rsplit_once(')')?;
            let mut fields = after.split_whitespace();
            Some(ProcStat {
                pid: Pid::from_raw(pid),
                state: fields.next()?.chars().next()?,
                ppid: fields.next()?.parse().ok()?,
                pgrp: fields.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Processes whose parent is `parent`, with their state letter (`Z` for zombies).
pub fn children_of(parent: Pid) -> Vec<(Pid, char)> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == parent.as_raw())
        .map(|p| (p.pid, p.state))
        .collect()
}

/// Processes in the process group `pgid`.
pub fn group_members(pgid: Pid) -> Vec<Pid> {
    processes()
        .into_iter()
        .filter(|p| p.pgrp == pgid.as_raw())
        .map(|p| p.pid)
        .collect()
}

/// A loopback port nothing listens on right now (bound, read, released), for
/// servers that cannot report the port they bound.
/// The names in directory `dir`.
pub fn file_names(dir: impl AsRef<std::path::Path>) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list the directory")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Every entry below `root` (directories too, symlinks not followed): its
/// name relative to `root`, its path and its metadata, sorted by name.
pub fn walk(root: &std::path::Path) -> Vec<(String, std::path::PathBuf, std::fs::Metadata)> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("list a directory").flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("stat an entry");
            if meta.is_dir() {
                dirs.push(path.clone());
            }
            let name = path.strip_prefix(root).unwrap().display().to_string();
            found.push((name, path, meta));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// A loopback address where nothing listens (the discard port): unlike a
/// port found free, no other test can take it in the meantime.
pub const NOBODY: &str = "127.0.0.1:9";

/// A loopback port nothing listens on now, for a server a test starts
/// later. Picked below the kernel's ephemeral range: a port found free in
/// that range can be handed out meanwhile as the local port of any outgoing
/// connection (the agent's own to moto among them), and the server meant
/// for it then cannot bind.
pub fn free_port() -> u16 {
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, span) = (ephemeral_from / 2, ephemeral_from / 2);
    for _ in 0..1000 {
        let port = from + rand::random::<u16>() % span;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {from}..{ephemeral_from}");
}

/// The outcome of a short command.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `agent doctor --json`'s report in `out`; panics with the output when it is not one.
pub fn doctor_report(out: &Output) -> DoctorReport {
    view_in(out, "agent doctor --json's report")
}

/// `agent keys --json`'s report in `out`; panics with the output when it is not one.
pub fn keys_report(out: &Output) -> KeysReport {
    view_in(out, "agent keys --json's report")
}

/// `agent config --json`'s settings in `out`; panics with the output when they are not.
pub fn settings_view(out: &Output) -> Settings {
    view_in(out, "agent config --json's settings")
}

/// `agent config --json`'s problems in `out`; panics with the output when they are not.
pub fn config_problems(out: &Output) -> ConfigProblems {
    view_in(out, "agent config --json's problems")
}

fn view_in<T: serde::de::DeserializeOwned>(out: &Output, what: &str) -> T {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not {what} ({e}); exit {}: {out:?}", out.code))
}

/// Runs `agent <args…>` to its end (at most [`WAIT`]) with a clean environment plus `env`.
pub fn agent_output(args: &[&str], env: &[(&str, &str)]) -> Output {
    AgentCommand::new(args)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .run()
}

/// The value of an unlabelled Prometheus sample, e.g. `agent_child_up`.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

/// A fresh ed25519 key pair in NEAR's text form: (secret key, public key).
pub fn keypair() -> (String, String) {
    let sk = near_crypto::SecretKey::from_random(near_crypto::KeyType::ED25519);
    (sk.to_string(), sk.public_key().to_string())
}

/// 16 random bytes as 32 hex characters: a secret store key.
pub fn store_key() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// 32 random bytes as 64 hex characters: a backup encryption key.
pub fn backup_key() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The upstream node environment of a valid testnet node (no secrets).
pub fn node_env(home: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("MPC_HOME_DIR", home.display().to_string()),
        ("MPC_ENV", "testnet".into()),
        ("MPC_ACCOUNT_ID", "node0.testnet".into()),
        ("MPC_CONTRACT_ID", "v1.signer-prod.testnet".into()),
        ("AGENT_SECRETS_JITTER", "0s".into()),
        // Never the public RPC from a test: tests that ask the chain set their stand-in.
        ("AGENT_NEAR_RPC_URL", format!("http://{NOBODY}")),
    ]
}

/// Serves one JSON document on every path of a loopback port, as the ECS
/// task metadata endpoint does for `/task`.
pub struct JsonServer {
    pub url: String,
}

impl JsonServer {
    pub fn start(body: serde_json::Value) -> JsonServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let body = body.to_string();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        JsonServer { url }
    }
}
