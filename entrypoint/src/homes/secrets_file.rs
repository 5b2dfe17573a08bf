//! `secrets.json` on the home, the keys the node signs and connects with:
//! written from the validated keys when absent; when it differs from them,
//! `AGENT_SECRETS_JSON` decides which side stays, and the drift is reported
//! with public keys only.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use near_crypto::{ED25519PublicKey, PublicKey};
use serde::Serialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::HomeError;
use super::atomic::{self, Previous, Written};
use super::beneath;
use super::owner::NodeUser;
use crate::check::Check;
use crate::config::SecretsJsonPolicy;
use crate::keys::{ChainFacts, P2pKeyMatch};
use crate::secrets::NodeKey;

const FILE: &str = "secrets.json";
const P2P: &str = "p2p_private_key";
const SIGNER: &str = "near_signer_key";
const RESPONDERS: &str = "near_responder_keys";

/// The public keys of one side (the file, or the validated secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
struct KeySet {
    p2p: PublicKey,
    signer: PublicKey,
    responders: Vec<PublicKey>,
}

/// One field that differs, by public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// `p2p_private_key`, `near_signer_key` or `near_responder_keys`.
    pub field: &'static str,
    pub file: Vec<String>,
    pub validated: Vec<String>,
}

/// What happened to `secrets.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretsJsonAction {
    /// It was absent; written from the validated keys.
    Created,
    /// It holds the validated keys.
    Unchanged,
    /// It differs (or cannot be parsed) and stays as it is.
    Kept,
    /// It differed (or could not be parsed) and now holds the validated keys; the old one is the backup.
    Replaced,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretsJsonOutcome {
    pub path: PathBuf,
    pub policy: SecretsJsonPolicy,
    pub action: SecretsJsonAction,
    pub written: Written,
    pub drift: Vec<Drift>,
    /// Why the file could not be read as node keys (never a key).
    pub unparsable: Option<String>,
    /// Which side won and why, in words.
    pub reason: String,
    /// The file's mode before it was narrowed to 0600.
    pub mode_was: Option<u32>,
}

impl SecretsJsonOutcome {
    /// `homes.secrets.json`, for what a boot did or, for a plan of
    /// [`plan_secrets_json`] (nothing written yet), what the next boot does.
    pub fn check(&self) -> Check {
        let id = "homes.secrets.json";
        let planned = self.written == Written::Unchanged;
        let mut cause = match self.action {
            SecretsJsonAction::Created if planned => {
                "no secrets.json yet: the next boot writes it from the validated keys".to_string()
            }
            SecretsJsonAction::Created => "wrote secrets.json from the validated keys".to_string(),
            SecretsJsonAction::Unchanged => "secrets.json holds the validated keys".to_string(),
            SecretsJsonAction::Kept | SecretsJsonAction::Replaced => {
                let what = match &self.unparsable {
                    Some(why) => format!("secrets.json cannot be used by the node ({why})"),
                    None if planned && self.action == SecretsJsonAction::Replaced => {
                        format!("secrets.json is stale ({})", self.describe_drift())
                    }
                    None => format!(
                        "secrets.json differs from the validated keys ({})",
                        self.describe_drift()
                    ),
                };
                let done = match self.action {
                    SecretsJsonAction::Kept => "kept the file",
                    _ if planned => {
                        "the next boot replaces it with the validated keys (the old file, with its private keys, is not kept)"
                    }
                    _ => "replaced it with the validated keys",
                };
                format!("{what}; {done}: {}", self.reason)
            }
        };
        if let Some(mode) = self.mode_was {
            cause.push_str(&format!("; narrowed its mode from {mode:04o} to 0600"));
        }
        if let Written::Replaced { backup: Some(b) } = &self.written {
            cause.push_str(&format!("; the previous file is {}", b.display()));
        }
        let detail = json!(self);
        let check = match (self.action, &self.unparsable) {
            (SecretsJsonAction::Created | SecretsJsonAction::Unchanged, _) => Check::ok(id, cause),
            (SecretsJsonAction::Kept, Some(_)) => Check::fail(
                id,
                cause,
                "set AGENT_SECRETS_JSON=replace (or reconcile) to write it from the validated keys, or fix the file",
            ),
            (SecretsJsonAction::Kept, None) => Check::warn(
                id,
                cause,
                "make Secrets Manager and secrets.json agree: update the secret to the keys the chain accepts, or set AGENT_SECRETS_JSON=replace",
            ),
            (SecretsJsonAction::Replaced, _) => Check::warn(
                id,
                cause,
                "nothing to do if this was intended; the old file is not kept, so its private keys are on the home no more",
            ),
        };
        check.with_detail(detail)
    }

    fn describe_drift(&self) -> String {
        self.drift
            .iter()
            .map(|d| {
                format!(
                    "{}: file {} vs validated {}",
                    d.field,
                    d.file.join(","),
                    d.validated.join(",")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What a boot would do to `secrets.json`, decided without writing: absent →
/// created from the validated keys; different → `policy` decides with `chain`
/// (the keys stage's `chain_facts()`, `None` when the chain could not be
/// asked). `written` is `Unchanged` in a plan. `agent doctor` shows plans.
pub fn plan_secrets_json(
    home: &Path,
    p2p: &NodeKey,
    signer: &NodeKey,
    policy: SecretsJsonPolicy,
    chain: Option<&ChainFacts>,
) -> Result<SecretsJsonOutcome, HomeError> {
    let path = home.join(FILE);
    let validated = KeySet {
        p2p: p2p.public.clone(),
        signer: signer.public.clone(),
        responders: vec![signer.public.clone()],
    };
    let outcome = |action, drift, unparsable, reason: &str| SecretsJsonOutcome {
        path: path.clone(),
        policy,
        action,
        written: Written::Unchanged,
        drift,
        unparsable,
        reason: reason.to_string(),
        mode_was: None,
    };
    let bytes =
        match beneath::read_file(home, Path::new(FILE)).map_err(HomeError::io("read", &path))? {
            Some(bytes) => bytes,
            None => {
                return Ok(outcome(
                    SecretsJsonAction::Created,
                    Vec::new(),
                    None,
                    "there was no secrets.json",
                ));
            }
        };
    Ok(match parse(&bytes) {
        Err(why) => match policy {
            SecretsJsonPolicy::Keep => outcome(
                SecretsJsonAction::Kept,
                Vec::new(),
                Some(why),
                "AGENT_SECRETS_JSON=keep",
            ),
            SecretsJsonPolicy::Reconcile | SecretsJsonPolicy::Replace => outcome(
                SecretsJsonAction::Replaced,
                Vec::new(),
                Some(why),
                "a file the node cannot read is replaced under AGENT_SECRETS_JSON=reconcile or replace",
            ),
        },
        Ok(file) => {
            let drift = drift(&file, &validated);
            if drift.is_empty() {
                outcome(
                    SecretsJsonAction::Unchanged,
                    drift,
                    None,
                    "the file holds the validated keys",
                )
            } else {
                let (replace, reason) = decide(policy, &file, &validated, chain);
                let action = if replace {
                    SecretsJsonAction::Replaced
                } else {
                    SecretsJsonAction::Kept
                };
                outcome(action, drift, None, &reason)
            }
        }
    })
}

/// Makes `<home>/secrets.json` what [`plan_secrets_json`] decides. Always
/// 0600; a replaced file is not kept (it holds private keys).
pub fn update_secrets_json(
    home: &Path,
    p2p: &NodeKey,
    signer: &NodeKey,
    policy: SecretsJsonPolicy,
    chain: Option<&ChainFacts>,
    user: &NodeUser,
) -> Result<SecretsJsonOutcome, HomeError> {
    apply(
        plan_secrets_json(home, p2p, signer, policy, chain)?,
        p2p,
        signer,
        user,
    )
}

/// Carries out a plan of [`plan_secrets_json`] made for `p2p` and `signer`.
pub fn apply(
    mut plan: SecretsJsonOutcome,
    p2p: &NodeKey,
    signer: &NodeKey,
    user: &NodeUser,
) -> Result<SecretsJsonOutcome, HomeError> {
    if matches!(
        plan.action,
        SecretsJsonAction::Created | SecretsJsonAction::Replaced
    ) {
        plan.written = atomic::write_file(
            home_of(&plan.path)?,
            Path::new(FILE),
            contents(p2p, signer).as_bytes(),
            0o600,
            // No copy of the old file: it holds private keys the node no longer uses.
            Previous::Discard,
            user,
        )
        .map_err(HomeError::io("write", &plan.path))?;
    } else {
        plan.mode_was = atomic::restrict_mode(home_of(&plan.path)?, Path::new(FILE), 0o600, user)
            .map_err(HomeError::io("chmod", &plan.path))?;
    }
    Ok(plan)
}

/// The home a plan's `<home>/secrets.json` is in.
fn home_of(path: &Path) -> Result<&Path, HomeError> {
    path.parent().ok_or_else(|| {
        HomeError::io("write", path)(std::io::Error::from(std::io::ErrorKind::InvalidInput))
    })
}

/// The keys the node will run with if `secrets.json` stays as it is: the
/// file's signer and p2p public keys when it exists, is readable, differs from
/// the validated keys, and `policy` (with `chain`) keeps it; `None` when the
/// validated keys will be used. Reads only.
pub fn kept_keys(
    home: &Path,
    p2p: &NodeKey,
    signer: &NodeKey,
    policy: SecretsJsonPolicy,
    chain: Option<&ChainFacts>,
) -> Result<Option<(PublicKey, PublicKey)>, HomeError> {
    let path = home.join(FILE);
    let Some(bytes) =
        beneath::read_file(home, Path::new(FILE)).map_err(HomeError::io("read", &path))?
    else {
        return Ok(None);
    };
    let Ok(file) = parse(&bytes) else {
        return Ok(None);
    };
    let validated = KeySet {
        p2p: p2p.public.clone(),
        signer: signer.public.clone(),
        responders: vec![signer.public.clone()],
    };
    if drift(&file, &validated).is_empty() || decide(policy, &file, &validated, chain).0 {
        return Ok(None);
    }
    Ok(Some((file.signer, file.p2p)))
}

/// The file as start.sh writes it (indented JSON), built in wiped memory.
fn contents(p2p: &NodeKey, signer: &NodeKey) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(512));
    out.push_str("{\n  \"");
    out.push_str(P2P);
    out.push_str("\": ");
    push_json_string(&mut out, p2p.secret.expose());
    out.push_str(",\n  \"");
    out.push_str(SIGNER);
    out.push_str("\": ");
    push_json_string(&mut out, signer.secret.expose());
    out.push_str(",\n  \"");
    out.push_str(RESPONDERS);
    out.push_str("\": [\n    ");
    push_json_string(&mut out, signer.secret.expose());
    out.push_str("\n  ]\n}\n");
    out
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The public keys in the file; the reason names the field and the rule, never a value.
fn parse(bytes: &[u8]) -> Result<KeySet, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "not JSON: syntax error at line {} column {}",
            e.line(),
            e.column()
        )
    })?;
    let field = |name: &str| value.get(name).ok_or_else(|| format!("{name} is missing"));
    let key = |name: &str, v: &Value| -> Result<PublicKey, String> {
        let text = v
            .as_str()
            .ok_or_else(|| format!("{name} is not a string"))?;
        public_key_of(text).map_err(|rule| format!("{name} {rule}"))
    };
    let responders = field(RESPONDERS)?
        .as_array()
        .ok_or_else(|| format!("{RESPONDERS} is not a list"))?
        .iter()
        .map(|v| key(RESPONDERS, v))
        .collect::<Result<Vec<_>, _>>()?;
    if responders.is_empty() {
        return Err(format!("{RESPONDERS} is empty"));
    }
    Ok(KeySet {
        p2p: key(P2P, field(P2P)?)?,
        signer: key(SIGNER, field(SIGNER)?)?,
        responders,
    })
}

/// The public key of `ed25519:<base58 of secret ‖ public>`, checked the way
/// the node checks it (the public half must belong to the secret half).
fn public_key_of(text: &str) -> Result<PublicKey, &'static str> {
    let encoded = text
        .strip_prefix("ed25519:")
        .ok_or("must start with ed25519:")?;
    let bytes = Zeroizing::new(
        bs58::decode(encoded)
            .into_vec()
            .map_err(|_| "is not base58")?,
    );
    let pair: &[u8; 64] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| "must hold 64 bytes (secret ‖ public)")?;
    let signing = ed25519_dalek::SigningKey::from_keypair_bytes(pair)
        .map_err(|_| "has a public half that does not belong to its secret half")?;
    Ok(PublicKey::ED25519(ED25519PublicKey(
        signing.verifying_key().to_bytes(),
    )))
}

fn drift(file: &KeySet, validated: &KeySet) -> Vec<Drift> {
    let show = |keys: &[PublicKey]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    let mut drift = Vec::new();
    for (field, f, v) in [
        (
            P2P,
            std::slice::from_ref(&file.p2p),
            std::slice::from_ref(&validated.p2p),
        ),
        (
            SIGNER,
            std::slice::from_ref(&file.signer),
            std::slice::from_ref(&validated.signer),
        ),
        (RESPONDERS, &file.responders[..], &validated.responders[..]),
    ] {
        if f != v {
            drift.push(Drift {
                field,
                file: show(f),
                validated: show(v),
            });
        }
    }
    drift
}

/// What the chain says about one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Rejected,
    Unknown,
}

/// Whether to replace the file, and why. Under `reconcile` only the keys the
/// chain checks decide (the signer against the account's access keys, the
/// p2p key against the contract's participant key), and only where the two
/// sides differ: the side with an accepted key and no rejected one wins; when
/// both or neither do, the chain cannot tell and the file stays.
fn decide(
    policy: SecretsJsonPolicy,
    file: &KeySet,
    validated: &KeySet,
    chain: Option<&ChainFacts>,
) -> (bool, String) {
    match policy {
        SecretsJsonPolicy::Keep => return (false, "AGENT_SECRETS_JSON=keep".to_string()),
        SecretsJsonPolicy::Replace => return (true, "AGENT_SECRETS_JSON=replace".to_string()),
        SecretsJsonPolicy::Reconcile => {}
    }
    let signer_differs = file.signer != validated.signer;
    let p2p_differs = file.p2p != validated.p2p;
    if !signer_differs && !p2p_differs {
        return (
            false,
            "only near_responder_keys differ, which the chain does not check".to_string(),
        );
    }
    let Some(chain) = chain else {
        return (
            false,
            "the chain could not be asked, so it cannot tell which keys are right".to_string(),
        );
    };
    let verdicts = |side: &KeySet| {
        let acceptance = chain.accepts(&side.signer, &side.p2p);
        let signer = if acceptance.signer_key {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        };
        let p2p = match acceptance.p2p_key {
            P2pKeyMatch::Registered => Verdict::Accepted,
            P2pKeyMatch::Differs => Verdict::Rejected,
            P2pKeyMatch::NoEntry => Verdict::Unknown,
        };
        (signer, p2p)
    };
    let (file_said, validated_said) = (verdicts(file), verdicts(validated));
    let judge = |(signer, p2p): (Verdict, Verdict)| {
        let mut decisive = Vec::new();
        if signer_differs {
            decisive.push(signer);
        }
        if p2p_differs {
            decisive.push(p2p);
        }
        decisive.contains(&Verdict::Accepted) && !decisive.contains(&Verdict::Rejected)
    };
    let mut facts = Vec::new();
    if signer_differs {
        facts.push(format!(
            "signer key: file {} {}, validated {} {}",
            file.signer,
            said(file_said.0, "an access key of the account"),
            validated.signer,
            said(validated_said.0, "an access key of the account"),
        ));
    }
    if p2p_differs {
        facts.push(format!(
            "p2p key: file {} {}, validated {} {}",
            file.p2p,
            said(file_said.1, "the contract's participant key"),
            validated.p2p,
            said(validated_said.1, "the contract's participant key"),
        ));
    }
    let facts = facts.join("; ");
    match (judge(validated_said), judge(file_said)) {
        (true, false) => (
            true,
            format!("the chain accepts the validated keys ({facts})"),
        ),
        (false, true) => (
            false,
            format!("the chain accepts the file's keys, so the secrets are stale ({facts})"),
        ),
        _ => (false, format!("the chain cannot tell ({facts})")),
    }
}

fn said(verdict: Verdict, what: &str) -> String {
    match verdict {
        Verdict::Accepted => format!("is {what}"),
        Verdict::Rejected => format!("is not {what}"),
        Verdict::Unknown => "(the account is not a participant: unknown)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use near_crypto::PublicKeyHandle;

    use super::*;

    fn key() -> (String, PublicKey) {
        let sk = near_crypto::SecretKey::from_random(near_crypto::KeyType::ED25519);
        (sk.to_string(), sk.public_key())
    }

    #[test]
    fn keys_parse_to_their_public_half_and_bad_ones_say_why() {
        let (text, public) = key();
        assert_eq!(public_key_of(&text), Ok(public));
        assert_eq!(
            public_key_of("secp256k1:abc"),
            Err("must start with ed25519:")
        );
        assert_eq!(public_key_of("ed25519:0OIl"), Err("is not base58"));
        assert_eq!(
            public_key_of("ed25519:3yZe7d"),
            Err("must hold 64 bytes (secret ‖ public)")
        );
        let (other, _) = key();
        let mixed = {
            let a = bs58::decode(&text[8..]).into_vec().unwrap();
            let b = bs58::decode(&other[8..]).into_vec().unwrap();
            format!(
                "ed25519:{}",
                bs58::encode([&a[..32], &b[32..]].concat()).into_string()
            )
        };
        assert_eq!(
            public_key_of(&mixed),
            Err("has a public half that does not belong to its secret half")
        );
    }

    #[test]
    fn parse_errors_never_show_the_file() {
        let (text, _) = key();
        let bad = format!(
            "{{\"p2p_private_key\": 5, \"near_signer_key\": \"{text}\", \"near_responder_keys\": [\"{text}\"]}}"
        );
        let why = parse(bad.as_bytes()).unwrap_err();
        assert_eq!(why, "p2p_private_key is not a string");
        let truncated = &bad[..bad.len() - 10];
        let why = parse(truncated.as_bytes()).unwrap_err();
        assert!(why.starts_with("not JSON: syntax error at line 1"), "{why}");
        assert!(!why.contains(&text[8..20]));
    }

    fn set(p2p: &PublicKey, signer: &PublicKey) -> KeySet {
        KeySet {
            p2p: p2p.clone(),
            signer: signer.clone(),
            responders: vec![signer.clone()],
        }
    }

    #[test]
    fn reconcile_lets_the_chain_decide_only_on_what_differs() {
        let (_, p2p) = key();
        let (_, old_signer) = key();
        let (_, new_signer) = key();
        let file = set(&p2p, &old_signer);
        let validated = set(&p2p, &new_signer);
        let facts = |keys: &[&PublicKey]| ChainFacts {
            access_keys: keys.iter().map(|k| PublicKeyHandle::from(*k)).collect(),
            participant_p2p_key: None,
        };
        let r = SecretsJsonPolicy::Reconcile;
        assert!(decide(r, &file, &validated, Some(&facts(&[&new_signer]))).0);
        assert!(!decide(r, &file, &validated, Some(&facts(&[&old_signer]))).0);
        let (replace, why) = decide(
            r,
            &file,
            &validated,
            Some(&facts(&[&old_signer, &new_signer])),
        );
        assert!(!replace);
        assert!(why.starts_with("the chain cannot tell"), "{why}");
        assert!(!decide(r, &file, &validated, None).0);
        assert!(decide(SecretsJsonPolicy::Replace, &file, &validated, None).0);
        assert!(
            !decide(
                SecretsJsonPolicy::Keep,
                &file,
                &validated,
                Some(&facts(&[&new_signer]))
            )
            .0
        );
    }

    #[test]
    fn a_p2p_key_the_contract_rejects_loses_even_with_a_good_signer() {
        let (_, signer) = key();
        let (_, registered) = key();
        let (_, stray) = key();
        let file = set(&registered, &signer);
        let validated = set(&stray, &signer);
        let chain = ChainFacts {
            access_keys: vec![PublicKeyHandle::from(&signer)],
            participant_p2p_key: Some(registered.clone()),
        };
        let (replace, why) = decide(
            SecretsJsonPolicy::Reconcile,
            &file,
            &validated,
            Some(&chain),
        );
        assert!(!replace);
        assert!(why.contains(&registered.to_string()), "{why}");
        assert!(
            why.contains("is not the contract's participant key"),
            "{why}"
        );
    }
}
