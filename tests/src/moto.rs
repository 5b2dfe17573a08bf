//! A real AWS API on loopback: `moto` in server mode (from PyPI, installed into
//! `.venv` by `scripts/test`), started per test, and the real Rust SDK to
//! prepare it.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::primitives::Blob;

use crate::harness::free_port;

pub const REGION: &str = "eu-west-1";
const KEY_ID: &str = "AKIDTESTTESTTESTTEST";
const SECRET_KEY: &str = "test-secret-key-for-moto";

/// A moto server on 127.0.0.1.
pub struct Moto {
    child: Child,
    pub addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    client: Client,
}

/// Where `moto_server` is: `$MOTO_SERVER`, or the workspace's `.venv`.
fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return path.into();
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    assert!(
        path.exists(),
        "{} is missing: scripts/test installs moto into .venv (or set MOTO_SERVER)",
        path.display()
    );
    path
}

/// What a secret holds.
pub enum Value<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// With IAM enforced after the first `unchecked` requests (moto's
    /// `INITIAL_NO_AUTH_ACTION_COUNT`).
    pub fn with_iam_after(unchecked: u32) -> Moto {
        Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", &unchecked.to_string())])
    }

    fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = free_port();
        let mut command = Command::new(moto_server());
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start moto_server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not listen on {addr} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(sdk_client(&format!("http://{addr}"), KEY_ID, SECRET_KEY));
        Moto {
            child,
            addr,
            runtime,
            client,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The environment an agent needs to use this server with static test credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Creates a secret; returns its ARN.
    pub fn create_secret(&self, name: &str, value: Value) -> String {
        let request = self.client.create_secret().name(name);
        let request = match value {
            Value::Text(s) => request.secret_string(s),
            Value::Binary(b) => request.secret_binary(Blob::new(b)),
        };
        let out = self.runtime.block_on(request.send()).expect("CreateSecret");
        out.arn().expect("an ARN").to_string()
    }

    /// Puts a new current version; the previous one becomes AWSPREVIOUS. Returns the version id.
    pub fn put_secret_value(&self, name: &str, value: &str) -> String {
        let out = self
            .runtime
            .block_on(
                self.client
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value)
                    .send(),
            )
            .expect("PutSecretValue");
        out.version_id().expect("a version id").to_string()
    }

    /// The current value of a secret, as an agent would read it.
    pub fn secret_value(&self, name: &str) -> Option<String> {
        self.runtime
            .block_on(self.client.get_secret_value().secret_id(name).send())
            .ok()
            .and_then(|o| o.secret_string().map(str::to_string))
    }

    /// A VPC and a subnet in `zone` (moto accepts loopback ranges, so the
    /// mount targets made in it answer on 127.0.0.1); returns the subnet id.
    pub fn subnet(&self, zone: &str, cidr: &str) -> String {
        let vpc = self.vpc(cidr);
        self.subnet_in(&vpc, zone, cidr)
    }

    /// A VPC of `cidr`; returns its id.
    pub fn vpc(&self, cidr: &str) -> String {
        xml(
            &self.query(
                "ec2",
                &format!("Action=CreateVpc&CidrBlock={cidr}&Version=2016-11-15"),
            ),
            "vpcId",
        )
    }

    /// A subnet of `vpc` in `zone`; returns its id.
    pub fn subnet_in(&self, vpc: &str, zone: &str, cidr: &str) -> String {
        let subnet = self.query(
            "ec2",
            &format!("Action=CreateSubnet&VpcId={vpc}&CidrBlock={cidr}&AvailabilityZone={zone}&Version=2016-11-15"),
        );
        xml(&subnet, "subnetId")
    }

    /// The SDK configuration for this server, for the clients this module has no helper for.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        self.runtime.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(self.endpoint())
                .region(aws_config::Region::new(REGION))
                .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                    KEY_ID, SECRET_KEY, None, None, "test",
                ))
                .load(),
        )
    }

    /// Runs `future` (an SDK call) to its end.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// An EFS file system with one mount target per `(subnet, ip)`; returns its id.
    pub fn efs(&self, targets: &[(&str, &str)]) -> String {
        let efs = aws_sdk_efs::Client::new(&self.sdk_config());
        self.runtime.block_on(async {
            let id = efs
                .create_file_system()
                .creation_token(format!("home-{}", rand::random::<u32>()))
                .send()
                .await
                .expect("CreateFileSystem")
                .file_system_id()
                .to_string();
            for (subnet, ip) in targets {
                efs.create_mount_target()
                    .file_system_id(&id)
                    .subnet_id(*subnet)
                    .ip_address(*ip)
                    .send()
                    .await
                    .expect("CreateMountTarget");
            }
            id
        })
    }

    /// An IAM user with access keys and no permission at all; returns (user ARN, key id, secret key).
    /// Spends two of the unchecked requests of [`Moto::with_iam_after`].
    pub fn create_user_without_permissions(&self, user: &str) -> (String, String, String) {
        let created = self.query(
            "iam",
            &format!("Action=CreateUser&UserName={user}&Version=2010-05-08"),
        );
        let keys = self.query(
            "iam",
            &format!("Action=CreateAccessKey&UserName={user}&Version=2010-05-08"),
        );
        (
            xml(&created, "Arn"),
            xml(&keys, "AccessKeyId"),
            xml(&keys, "SecretAccessKey"),
        )
    }

    /// One query-protocol call (IAM, EC2, SNS, CloudWatch); returns the whole HTTP answer.
    pub fn query(&self, service: &str, form: &str) -> String {
        self.call(
            "POST /",
            service,
            "application/x-www-form-urlencoded",
            None,
            form,
        )
    }

    /// One REST call (S3, path style): `request` is the method and the path
    /// (`GET /bucket?versioning`); returns the whole HTTP answer.
    pub fn rest(&self, service: &str, request: &str, body: &str) -> String {
        self.call(request, service, "application/xml", None, body)
    }

    /// One JSON-protocol call (ECS, KMS, EventBridge): `target` is the operation's
    /// `X-Amz-Target`; returns the answer's body.
    pub fn json_call(
        &self,
        service: &str,
        target: &str,
        body: &serde_json::Value,
    ) -> serde_json::Value {
        let answer = self.call(
            "POST /",
            service,
            "application/x-amz-json-1.1",
            Some(target),
            &body.to_string(),
        );
        let (_, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{target}: {e}: {body}"))
    }

    /// One call over HTTP/1.1. moto routes it by the credential scope of the
    /// Authorization header; it checks no signature while requests are
    /// unchecked.
    fn call(
        &self,
        request: &str,
        service: &str,
        content_type: &str,
        target: Option<&str>,
        body: &str,
    ) -> String {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(self.addr).unwrap();
        // moto loads a service's backend on its first request: seconds on a busy machine.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let target = target
            .map(|t| format!("X-Amz-Target: {t}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "{request} HTTP/1.1\r\nHost: {}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={KEY_ID}/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n{target}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{service} call {request} {body} failed: {answer}"
        );
        answer
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Secrets Manager client for `endpoint` with static credentials.
pub async fn sdk_client(endpoint: &str, key_id: &str, secret_key: &str) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            key_id, secret_key, None, None, "test",
        ))
        .load()
        .await;
    Client::new(&config)
}

/// The text of the first `<tag>` in `text`.
pub fn xml(text: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {text}"))
        + open.len();
    let end = text[start..].find(&format!("</{tag}>")).unwrap() + start;
    text[start..end].to_string()
}
