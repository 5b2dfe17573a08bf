//! A real AWS API on loopback: `moto` in server mode (from PyPI, installed into
//! `.venv` by `scripts/test`), started per test, and the real Rust SDK to
//! prepare it: secrets, EFS, IAM users, KMS keys, and the vault's buckets
//! (with and without Object Lock) and their objects read back.

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
    sdk: aws_config::SdkConfig,
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
        let mut child = command.spawn().expect("start moto_server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("moto_server ended ({status}) before it listened on {addr}");
            }
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
        let sdk = runtime.block_on(sdk_config(&format!("http://{addr}"), KEY_ID, SECRET_KEY));
        Moto {
            child,
            addr,
            runtime,
            client,
            sdk,
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
        self.sdk.clone()
    }

    /// The SDK configuration for this server with other credentials (an IAM user's).
    pub fn sdk_config_as(&self, key_id: &str, secret_key: &str) -> aws_config::SdkConfig {
        self.runtime
            .block_on(sdk_config(&self.endpoint(), key_id, secret_key))
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
        self.create_user(user, None)
    }

    /// An IAM user with access keys and one inline policy; returns (user
    /// ARN, key id, secret key). Spends three of the unchecked requests of
    /// [`Moto::with_iam_after`].
    pub fn create_user_with_policy(
        &self,
        user: &str,
        policy: &serde_json::Value,
    ) -> (String, String, String) {
        self.create_user(user, Some(policy))
    }

    fn create_user(
        &self,
        user: &str,
        policy: Option<&serde_json::Value>,
    ) -> (String, String, String) {
        let created = self.query(
            "iam",
            &format!("Action=CreateUser&UserName={user}&Version=2010-05-08"),
        );
        if let Some(policy) = policy {
            let document = form_encoded(&policy.to_string());
            self.query(
                "iam",
                &format!("Action=PutUserPolicy&UserName={user}&PolicyName={user}-policy&PolicyDocument={document}&Version=2010-05-08"),
            );
        }
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

    /// Puts `policy` as the inline policy of `user` (replacing the one
    /// [`Moto::create_user_with_policy`] gave it), asked as the IAM user whose
    /// keys are `as_user`: for once moto checks every request.
    pub fn put_user_policy_as(
        &self,
        as_user: (&str, &str),
        user: &str,
        policy: &serde_json::Value,
    ) {
        let document = form_encoded(&policy.to_string());
        self.query_as(
            as_user,
            "iam",
            &format!("Action=PutUserPolicy&UserName={user}&PolicyName={user}-policy&PolicyDocument={document}&Version=2010-05-08"),
        );
    }

    /// One query-protocol call signed with Signature Version 4 by the keys
    /// `(key id, secret key)` of an IAM user; returns the whole HTTP answer.
    pub fn query_as(
        &self,
        (key_id, secret_key): (&str, &str),
        service: &str,
        form: &str,
    ) -> String {
        use sha2::{Digest, Sha256};
        const DATE: &str = "20260101";
        let amz_date = format!("{DATE}T000000Z");
        let host = self.addr.to_string();
        let content_type = "application/x-www-form-urlencoded";
        let canonical_request = format!(
            "POST\n/\n\ncontent-type:{content_type}\nhost:{host}\nx-amz-date:{amz_date}\n\ncontent-type;host;x-amz-date\n{}",
            hex::encode(Sha256::digest(form.as_bytes()))
        );
        let scope = format!("{DATE}/{REGION}/{service}/aws4_request");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let mut key = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), DATE.as_bytes());
        for part in [REGION, service, "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        let signature = hex::encode(hmac_sha256(&key, to_sign.as_bytes()));
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
        );
        self.send(&format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\nX-Amz-Date: {amz_date}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ), service, &format!("POST / {form}"))
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
        let target = target
            .map(|t| format!("X-Amz-Target: {t}\r\n"))
            .unwrap_or_default();
        self.send(
            &format!(
                "{request} HTTP/1.1\r\nHost: {}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={KEY_ID}/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n{target}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                self.addr,
                body.len()
            ),
            service,
            &format!("{request} {body}"),
        )
    }

    /// Sends one whole HTTP request; the answer, which must be a 200.
    fn send(&self, http_request: &str, service: &str, what: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(self.addr).unwrap();
        // moto loads a service's backend on its first request: seconds on a busy machine.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream.write_all(http_request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{service} call {what} failed: {answer}"
        );
        answer
    }
}

/// An object of a bucket as S3 holds it.
#[derive(Debug)]
pub struct StoredObject {
    pub bytes: Vec<u8>,
    pub version_id: Option<String>,
    /// `aws:kms`, `AES256`, or none.
    pub encryption: Option<String>,
    pub kms_key: Option<String>,
    /// `x-amz-checksum-sha256`, base64.
    pub checksum_sha256: Option<String>,
    pub metadata: std::collections::HashMap<String, String>,
}

impl Moto {
    /// An S3 client of this server (path-style: the bucket in the path).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// The vault's S3 client as the agent makes it, with `sdk`'s credentials.
    pub fn vault_s3(&self, sdk: &aws_config::SdkConfig) -> entrypoint::vault::S3 {
        let env = self
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        entrypoint::vault::S3::s3(sdk, &env, Duration::from_secs(10))
    }

    /// The vault for `target` on this server, as the agent makes it.
    pub fn vault(&self, target: entrypoint::vault::VaultTarget) -> entrypoint::vault::Vault {
        entrypoint::vault::Vault::new(self.vault_s3(&self.sdk_config()), target)
    }

    /// A symmetric KMS key, with `alias` (`alias/…`) when given; returns its key id and ARN.
    pub fn create_kms_key(&self, alias: Option<&str>) -> (String, String) {
        let kms = aws_sdk_kms::Client::new(&self.sdk_config());
        self.runtime.block_on(async {
            let key = kms
                .create_key()
                .description("mpc keyshare vault")
                .send()
                .await
                .expect("CreateKey");
            let metadata = key.key_metadata().expect("key metadata");
            let (id, arn) = (
                metadata.key_id().to_string(),
                metadata.arn().expect("an ARN").to_string(),
            );
            if let Some(alias) = alias {
                kms.create_alias()
                    .alias_name(alias)
                    .target_key_id(&id)
                    .send()
                    .await
                    .expect("CreateAlias");
            }
            (id, arn)
        })
    }

    /// A bucket without Object Lock (and without versioning).
    pub fn create_bucket(&self, bucket: &str) {
        self.runtime
            .block_on(self.create_bucket_request(bucket).send())
            .expect("CreateBucket");
    }

    /// A bucket with Object Lock (which turns versioning on) and a default
    /// retention of `days` in GOVERNANCE mode.
    pub fn create_locked_bucket(&self, bucket: &str, days: i32) {
        use aws_sdk_s3::types::{
            DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
            ObjectLockRule,
        };
        self.runtime.block_on(async {
            self.create_bucket_request(bucket)
                .object_lock_enabled_for_bucket(true)
                .send()
                .await
                .expect("CreateBucket");
            let retention = DefaultRetention::builder()
                .mode(ObjectLockRetentionMode::Governance)
                .days(days)
                .build();
            self.s3()
                .put_object_lock_configuration()
                .bucket(bucket)
                .object_lock_configuration(
                    ObjectLockConfiguration::builder()
                        .object_lock_enabled(ObjectLockEnabled::Enabled)
                        .rule(
                            ObjectLockRule::builder()
                                .default_retention(retention)
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await
                .expect("PutObjectLockConfiguration");
        });
    }

    /// Sets `bucket`'s default encryption to SSE-KMS under `kms_key`.
    pub fn default_encryption(&self, bucket: &str, kms_key: &str) {
        use aws_sdk_s3::types::{
            ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
            ServerSideEncryptionRule,
        };
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(kms_key)
            .build()
            .expect("an algorithm");
        let config = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(by_default)
                    .build(),
            )
            .build()
            .expect("rules");
        self.runtime
            .block_on(
                self.s3()
                    .put_bucket_encryption()
                    .bucket(bucket)
                    .server_side_encryption_configuration(config)
                    .send(),
            )
            .expect("PutBucketEncryption");
    }

    fn create_bucket_request(
        &self,
        bucket: &str,
    ) -> aws_sdk_s3::operation::create_bucket::builders::CreateBucketFluentBuilder {
        use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
        self.s3()
            .create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(REGION))
                    .build(),
            )
    }

    /// Puts `bytes` under `key` as another writer would (no checksum, no metadata).
    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        self.runtime
            .block_on(
                self.s3()
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(bytes.to_vec().into())
                    .send(),
            )
            .expect("PutObject");
    }

    /// The current version of an object, read back with its checksum.
    pub fn object(&self, bucket: &str, key: &str) -> StoredObject {
        self.runtime.block_on(async {
            let got = self
                .s3()
                .get_object()
                .bucket(bucket)
                .key(key)
                .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
                .send()
                .await
                .expect("GetObject");
            StoredObject {
                version_id: got.version_id().map(str::to_string),
                encryption: got.server_side_encryption().map(|e| e.as_str().to_string()),
                kms_key: got.ssekms_key_id().map(str::to_string),
                checksum_sha256: got.checksum_sha256().map(str::to_string),
                metadata: got.metadata().cloned().unwrap_or_default(),
                bytes: got.body.collect().await.expect("the body").to_vec(),
            }
        })
    }

    /// Every version of every object under `prefix`: (key, version id, size), newest first per key.
    pub fn versions(&self, bucket: &str, prefix: &str) -> Vec<(String, String, i64)> {
        let listed = self
            .runtime
            .block_on(
                self.s3()
                    .list_object_versions()
                    .bucket(bucket)
                    .prefix(prefix)
                    .send(),
            )
            .expect("ListObjectVersions");
        listed
            .versions()
            .iter()
            .map(|v| {
                (
                    v.key().unwrap_or_default().to_string(),
                    v.version_id().unwrap_or_default().to_string(),
                    v.size().unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// The vault at `location` (`s3://…`) for the fixture's node
/// ([`crate::node_fixture::ACCOUNT`]), naming `kms_key` on each upload.
pub fn vault_target(location: &str, kms_key: Option<&str>) -> entrypoint::vault::VaultTarget {
    entrypoint::vault::VaultTarget {
        location: entrypoint::keyshare::location(location).expect("a vault location"),
        account: crate::node_fixture::ACCOUNT.to_string(),
        contract: crate::node_fixture::CONTRACT.to_string(),
        kms_key: kms_key.map(str::to_string),
    }
}

/// HMAC-SHA256 (RFC 2104) of `data` under `key`.
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Secrets Manager client for `endpoint` with static credentials.
pub async fn sdk_client(endpoint: &str, key_id: &str, secret_key: &str) -> Client {
    Client::new(&sdk_config(endpoint, key_id, secret_key).await)
}

/// The SDK configuration for `endpoint` with static credentials.
async fn sdk_config(endpoint: &str, key_id: &str, secret_key: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            key_id, secret_key, None, None, "test",
        ))
        .load()
        .await
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
