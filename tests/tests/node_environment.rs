//! The node's environment through `agent run`: the agent's own, less its
//! settings (`AGENT_*`), AWS credentials and the secrets it hands over itself.
//! The operator's variables (a foreign chain's token, the proxy) reach the
//! node, its `init` and its `--help`; `/status` names what was passed, never
//! a value.

use agent_tests::harness::WAIT;
use agent_tests::node_fixture::NodeFixture;
use agent_tests::standin_node::{ENV_LOG, env_log};
use agent_tests::views::launch_summary;

const TOKEN_VALUE: &str = "foreign-chain-token-3f9a";
const ACCESS_KEY: &str = "AKIAENVTEST000000000";
const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMIenvtestKEY000000000000000000";

#[test]
fn the_operators_variables_reach_every_node_command_and_agent_settings_and_aws_credentials_do_not()
{
    let node = NodeFixture::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let agent = node
        .run()
        .env(ENV_LOG, log.path())
        .env("ETHEREUM_PROVIDER_TOKEN", TOKEN_VALUE)
        .env("HTTPS_PROXY", "http://127.0.0.1:3128")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_SESSION_TOKEN", "session-token-envtest")
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.23/v1/credentials",
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "auth-token-envtest")
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token")
        .start();
    agent.wait_until("/ready", WAIT, |r| r.status == 200);

    let commands = env_log(log.path());
    let ran: Vec<&str> = commands.iter().map(|c| c.command.as_str()).collect();
    for expected in ["--help", "init", "start"] {
        assert!(ran.contains(&expected), "{expected} ran: {ran:?}");
    }
    let withheld = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "MPC_ACCOUNT_SK",
        "MPC_P2P_PRIVATE_KEY",
    ];
    for logged in &commands {
        let (command, names) = (&logged.command, &logged.env);
        for passed in [
            "ETHEREUM_PROVIDER_TOKEN",
            "HTTPS_PROXY",
            "NO_PROXY",
            "AWS_REGION",
        ] {
            assert!(
                names.iter().any(|n| n == passed),
                "{command} got {passed}: {names:?}"
            );
        }
        for name in names {
            assert!(
                !name.starts_with("AGENT_") && !withheld.contains(&name.as_str()),
                "{command} got {name}"
            );
        }
        let store_key = names.iter().any(|n| n == "MPC_SECRET_STORE_KEY");
        assert_eq!(
            store_key,
            command == "start",
            "only the node itself gets the store key ({command}: {names:?})"
        );
    }

    let status = agent.get("/status");
    let launch = launch_summary(&status.status_view());
    let passed: Vec<&str> = launch.env.iter().map(String::as_str).collect();
    assert!(passed.contains(&"ETHEREUM_PROVIDER_TOKEN"), "{passed:?}");
    assert!(!passed.contains(&"AWS_SECRET_ACCESS_KEY"), "{passed:?}");
    for value in [TOKEN_VALUE, ACCESS_KEY, SECRET_ACCESS_KEY] {
        assert!(!status.body.contains(value), "/status shows no value");
    }
}
