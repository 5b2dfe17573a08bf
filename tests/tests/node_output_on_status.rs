//! What the node prints reaches `/status` only redacted and bounded: a key
//! the node prints appears in no HTTP answer of the agent nor in doctor's
//! report; with `AGENT_STATUS_LOG_TAIL=never` no client gets the tail at all;
//! the loopback clients that do get it (the default) see key-like strings
//! redacted, in the tail and in the reasons the agent draws from it; and one
//! `/status` carries at most 64 KiB of lines.

use agent_tests::harness::{Agent, AgentCommand, WAIT, keypair};
use agent_tests::node_fixture::NodeFixture;
use agent_tests::standin_node::Behavior;
use agent_tests::views::reason;

/// What the node prints: a secret key, its public key in the fatal line
/// the agent turns into a reason, and a 64-hex key.
struct Printed {
    secret: String,
    public: String,
    hex: String,
}

impl Printed {
    fn new() -> Printed {
        let (secret, public) = keypair();
        Printed {
            secret,
            public,
            hex: agent_tests::harness::backup_key(),
        }
    }

    fn behavior(&self) -> Behavior {
        Behavior {
            stdout: vec![
                format!("starting with MPC_ACCOUNT_SK={}", self.secret),
                format!(
                    "InvalidTx(InvalidAccessKeyError(AccessKeyNotFound {{ account_id: node0.test.near, public_key: {} }}))",
                    self.public
                ),
            ],
            stderr: vec![format!("backup key {} loaded", self.hex)],
            ..Behavior::default()
        }
    }

    /// Every form of the printed keys that must not be shown.
    fn needles(&self) -> Vec<&str> {
        vec![
            &self.secret,
            self.secret.strip_prefix("ed25519:").unwrap(),
            self.public.strip_prefix("ed25519:").unwrap(),
            &self.hex,
            &self.hex[..32],
        ]
    }

    fn assert_absent(&self, what: &str, text: &str) {
        assert!(!text.is_empty(), "{what}: nothing to search");
        for needle in self.needles() {
            assert!(
                !text.contains(needle),
                "{what} shows a printed key:\n{text}"
            );
        }
    }
}

/// Starts the node printing `printed` and waits until the agent has read
/// its lines (the fatal one became a reason).
fn started(node: &NodeFixture, printed: &Printed, tail: &str) -> Agent {
    node.behave(&printed.behavior());
    let agent = node.run().env("AGENT_STATUS_LOG_TAIL", tail).start();
    agent.wait_status(WAIT, |s| reason(&s.reasons, "AccessKeyNotFound").is_some());
    agent
}

fn every_answer(agent: &Agent) -> Vec<(&'static str, String)> {
    [
        "/status", "/health", "/ready", "/metrics", "/config", "/nowhere",
    ]
    .into_iter()
    .map(|path| (path, agent.get(path).body))
    .collect()
}

#[test]
fn with_the_tail_never_served_a_key_the_node_prints_appears_in_no_answer() {
    let node = NodeFixture::new();
    let printed = Printed::new();
    let agent = started(&node, &printed, "never");
    let status = agent.status();
    assert!(status.log_tail.is_empty(), "{status:#?}");
    assert!(
        status
            .log_tail_withheld
            .as_deref()
            .unwrap()
            .contains("AGENT_STATUS_LOG_TAIL=never"),
        "{status:#?}"
    );
    for (path, body) in every_answer(&agent) {
        printed.assert_absent(path, &body);
    }
    // The passthrough is the node's own output, unchanged: the keys are there.
    assert!(
        agent
            .stdout
            .all()
            .iter()
            .any(|l| l.contains(&printed.secret))
    );
    let out = AgentCommand::new([
        "doctor",
        "--json",
        "--from",
        &format!("http://{}", agent.addr()),
    ])
    .envs(node.env())
    .envs(node.secret_env())
    .run();
    assert!(
        out.stdout.contains("agent.reason.AccessKeyNotFound"),
        "{}",
        out.stdout
    );
    printed.assert_absent("doctor --json", &out.stdout);
}

#[test]
fn the_tail_loopback_clients_get_is_redacted_and_so_are_the_reasons() {
    let node = NodeFixture::new();
    let printed = Printed::new();
    let agent = started(&node, &printed, "loopback");
    let status = agent.status();
    assert!(status.log_tail_withheld.is_none(), "{status:#?}");
    let tail: Vec<&str> = status.log_tail.iter().map(|l| l.line.as_str()).collect();
    assert!(
        tail.contains(&"starting with MPC_ACCOUNT_SK=ed25519:[redacted]"),
        "{tail:#?}"
    );
    assert!(tail.contains(&"backup key [redacted] loaded"), "{tail:#?}");
    let access = reason(&status.reasons, "AccessKeyNotFound").unwrap();
    assert!(
        access
            .line
            .as_deref()
            .unwrap()
            .contains("public_key: ed25519:[redacted]"),
        "{access:#?}"
    );
    for (path, body) in every_answer(&agent) {
        printed.assert_absent(path, &body);
    }
}

#[test]
fn one_status_carries_at_most_64_kib_of_the_newest_lines() {
    let node = NodeFixture::new();
    let lines: Vec<String> = (0..200)
        .map(|n| format!("line {n:03} {}", "x".repeat(4000)))
        .collect();
    node.behave(&Behavior {
        stdout: lines,
        ..Behavior::default()
    });
    let agent = node.run().start();
    let status = agent.wait_until("/status", WAIT, |r| r.body.contains("line 199"));
    let tail = status.status_view().log_tail;
    let text: usize = tail.iter().map(|l| l.line.len()).sum();
    println!(
        "{} lines, {text} bytes of text, /status {} bytes",
        tail.len(),
        status.body.len()
    );
    assert!(text <= 64 * 1024, "{text} bytes of lines");
    assert!(
        status.body.len() < 96 * 1024,
        "/status is {} bytes",
        status.body.len()
    );
    let kept = |prefix: &str| tail.iter().any(|l| l.line.starts_with(prefix));
    assert!(kept("line 199 "), "the newest lines are kept");
    assert!(!kept("line 000 "), "the oldest lines give way");
}
