//! The container tests' Docker: images built locally (no registry is
//! reachable) — the Debian base from `docker/base-image`, an image shaped like
//! the node's with the stand-in `mpc-node`, and the product image from
//! `docker/Dockerfile` with the agent built on the host — and containers run
//! on the host network, so that they reach the loopback moto and RPC stand-in.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::harness::{Output, agent_bin, standin_node_bin};

pub const NODE_IMAGE: &str = "mpc-agent-local/standins:test";
pub const AGENT_IMAGE: &str = "mpc-agent-local/agent:test";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Why the container tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "no Docker engine answers: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("no docker command: {e}")),
    }
}

/// `docker …` to its end.
pub fn docker(args: &[&str]) -> Output {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// `docker …` that must succeed; its stdout.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert_eq!(out.code, 0, "docker {args:?} failed: {}", out.stderr);
    out.stdout
}

/// Builds the images once per test process (`docker/local-images`).
pub fn images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let rpc = crate::harness::bin_dir().join("near-rpc");
        let out = Command::new(repo().join("docker/local-images"))
            .args(["test"])
            .arg(agent_bin())
            .arg(standin_node_bin())
            .arg(rpc)
            .output()
            .expect("docker/local-images");
        assert!(
            out.status.success(),
            "docker/local-images failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// A container of the agent image, removed (with its anonymous volumes) when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d --network host` of the agent image with `env` and `extra` options.
    pub fn run(env: &[(&str, String)], extra: &[&str]) -> Container {
        images();
        let name = format!("mpc-agent-test-{}", rand::random::<u32>());
        let mut args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            name.clone(),
            "--network".into(),
            "host".into(),
        ];
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(AGENT_IMAGE.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker_ok(&args);
        Container { name }
    }

    pub fn inspect(&self, format: &str) -> String {
        docker_ok(&["inspect", "-f", format, &self.name])
    }

    pub fn health(&self) -> String {
        self.inspect("{{.State.Health.Status}}")
    }

    pub fn logs(&self) -> String {
        let out = docker(&["logs", &self.name]);
        format!("{}\n{}", out.stdout, out.stderr)
    }

    /// Polls until `pred` holds for the container's inspected `format`.
    pub fn wait_for(&self, format: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.inspect(format);
            if pred(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{} never satisfied the condition on {format}: last {value}; logs:\n{}",
                self.name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec", &self.name];
        all.extend_from_slice(args);
        docker(&all)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.name]);
    }
}

/// A named volume, removed when dropped.
pub struct Volume {
    pub name: String,
}

impl Volume {
    pub fn new() -> Volume {
        let name = format!("mpc-agent-test-{}", rand::random::<u32>());
        docker_ok(&["volume", "create", &name]);
        Volume { name }
    }

    /// Writes `files` (path relative to the volume → content) through a throwaway container.
    pub fn write(&self, files: &[(&str, &str)]) {
        images();
        let script: String = files
            .iter()
            .map(|(path, content)| format!("cat > /v/{path} <<'EOF'\n{content}\nEOF\n"))
            .collect();
        self.shell(&script);
    }

    /// Every file with its size and modification time (ns), the lock holder record aside.
    pub fn snapshot(&self) -> String {
        self.shell(
            "cd /v && find . -type f ! -name holder.json -exec stat -c '%n %s %Y %y' {} + | sort",
        )
    }

    /// Runs `script` in a throwaway container with the volume at `/v`.
    fn shell(&self, script: &str) -> String {
        docker_ok(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/v", self.name),
            "--entrypoint",
            "sh",
            NODE_IMAGE,
            "-c",
            script,
        ])
    }
}

impl Default for Volume {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = docker(&["volume", "rm", "-f", &self.name]);
    }
}
