//! The rules a secret must keep, each failure named with its likely cause.
//! No rule ever quotes the value: only its length and what it looks like.

use base64::Engine;
use near_crypto::{ED25519PublicKey, PublicKey};
use zeroize::Zeroizing;

use super::{NodeKey, Secret};
use crate::check::Rule;

/// What a placeholder looks like, if `value` is one.
pub fn placeholder(value: &str) -> Option<&'static str> {
    let v = value.trim();
    if v.is_empty() {
        return Some(if value.is_empty() {
            "is empty"
        } else {
            "is only whitespace"
        });
    }
    let bare = v
        .strip_prefix("ed25519:")
        .unwrap_or(v)
        .trim_matches(|c| c == '"' || c == '\'')
        .to_ascii_lowercase();
    const WORDS: [&str; 14] = [
        "placeholder",
        "changeme",
        "change-me",
        "change_me",
        "todo",
        "tbd",
        "dummy",
        "secret",
        "example",
        "test",
        "none",
        "null",
        "undefined",
        "replace-me",
    ];
    if WORDS.contains(&bare.as_str())
        || bare.starts_with("placeholder")
        || bare.starts_with("changeme")
    {
        return Some("is a placeholder word");
    }
    if bare.starts_with('<') && bare.ends_with('>') {
        return Some("is a <placeholder>");
    }
    if bare.starts_with("${") && bare.ends_with('}') {
        return Some("is an unexpanded ${VARIABLE}");
    }
    if bare.len() >= 3 && bare.chars().all(|c| c == 'x') {
        return Some("is a run of x (xxx…)");
    }
    None
}

/// What `s` is made of, in words, without any of it.
fn alphabet(s: &str) -> &'static str {
    if s.is_empty() {
        "empty"
    } else if s.chars().all(|c| c.is_ascii_lowercase()) {
        "lower-case letters"
    } else if s.chars().all(|c| c.is_ascii_alphabetic()) {
        "letters"
    } else if s.chars().all(|c| c.is_ascii_alphanumeric()) {
        "letters and digits"
    } else if s.is_ascii() {
        "not only letters and digits"
    } else {
        "not only ASCII"
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn looks_base64(s: &str) -> bool {
    (s.contains('+') || s.contains('/') || s.ends_with('='))
        && base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}

/// `ed25519:` + base58 of 64 bytes (secret ‖ public), the public half derived from the secret half.
pub fn ed25519_key(value: &str) -> Result<NodeKey, Rule> {
    const FORMAT: &str = "write the key as NEAR does: ed25519: followed by the base58 of 64 bytes (secret ‖ public), e.g. from `near generate-key` or ~/.near-credentials/*.json private_key";
    let value = value.trim();
    let (prefix, body) = match value.split_once(':') {
        Some((prefix, body)) => (Some(prefix), body),
        None => (None, value),
    };
    match prefix {
        Some("ed25519") => {}
        Some("secp256k1") => {
            return Err(Rule::new(
                "is a secp256k1 key; the node's keys are ed25519",
                FORMAT,
            ));
        }
        Some(p) if p.eq_ignore_ascii_case("ed25519") => {
            return Err(Rule::new(
                "has the ed25519 prefix in capitals; NEAR writes it in lower case",
                FORMAT,
            ));
        }
        // Its shape, never its text: the part before `:` may be key material.
        Some(p) => {
            return Err(Rule::new(
                format!(
                    "has another prefix before `:` ({} characters, {}), not ed25519; the node's keys are ed25519",
                    p.chars().count(),
                    alphabet(p)
                ),
                FORMAT,
            ));
        }
        None if is_hex(body) => {
            return Err(Rule::new(
                format!(
                    "is {} hex characters, not a NEAR key (openssl rand -hex output?)",
                    body.len()
                ),
                FORMAT,
            ));
        }
        None if looks_base64(body) => {
            return Err(Rule::new(
                "looks like base64 (openssl rand -base64 output?), not a NEAR key",
                FORMAT,
            ));
        }
        None => {}
    }
    let bytes = Zeroizing::new(bs58::decode(body).into_vec().map_err(|_| {
        if is_hex(body) {
            Rule::new("is hex after ed25519:, where base58 belongs", FORMAT)
        } else {
            Rule::new("is not base58 after the prefix", FORMAT)
        }
    })?);
    let keypair: &[u8; 64] = match bytes.len() {
        64 => bytes.as_slice().try_into().expect("length checked"),
        32 => {
            return Err(Rule::new(
                "holds 32 bytes: a public key or a bare seed where the 64-byte secret key (secret ‖ public) belongs",
                FORMAT,
            ));
        }
        n => {
            return Err(Rule::new(
                format!("decodes to {n} bytes; a NEAR secret key has 64"),
                FORMAT,
            ));
        }
    };
    if prefix.is_none() {
        return Err(Rule::new(
            "is base58 of 64 bytes without the ed25519: prefix",
            "put ed25519: in front of it",
        ));
    }
    let signing = ed25519_dalek::SigningKey::from_keypair_bytes(keypair).map_err(|_| {
        Rule::new(
            "has a public half that does not belong to its secret half (a corrupted or spliced key)",
            "copy the whole key again from its source",
        )
    })?;
    let public = PublicKey::ED25519(ED25519PublicKey(signing.verifying_key().to_bytes()));
    Ok(NodeKey {
        secret: Secret::new(format!("ed25519:{body}")),
        public,
    })
}

/// Store keys published in near/mpc, with where (beside the run of `A` of
/// `deployment/testnet/*.toml` and `docs/localnet/docker-envs/*.env`, which
/// [`publicly_known_hex`] finds as one byte repeated).
const PUBLISHED_STORE_KEYS: [(&str, &str); 1] = [(
    "bd399143f5b3126098b0eaa023a0e730",
    "deployment/cvm-deployment/ci-config.toml and scripts/check-mpc-node-docker-starts.sh",
)];

/// Why a valid hex key (`hex_key`'s output) is one anyone can know: one byte
/// repeated (near/mpc's templates use 32 × `A` for the store key and 64 zeros
/// for the backup key), or a value near/mpc publishes.
pub fn publicly_known_hex(key: &Secret) -> Option<String> {
    let bytes = Zeroizing::new(hex::decode(key.expose()).ok()?);
    if bytes.windows(2).all(|pair| pair[0] == pair[1]) {
        return Some(format!(
            "is one byte repeated {} times, as in near/mpc's published templates: anyone can guess it",
            bytes.len()
        ));
    }
    PUBLISHED_STORE_KEYS
        .iter()
        .find(|(published, _)| *published == key.expose())
        .map(|(_, place)| {
            format!("is the store key published in near/mpc's {place}: anyone can read it")
        })
}

/// Why a valid ed25519 key is one anyone can derive: its secret half is one byte repeated.
pub fn publicly_known_ed25519(key: &NodeKey) -> Option<String> {
    let body = key.secret.expose().strip_prefix("ed25519:")?;
    let bytes = Zeroizing::new(bs58::decode(body).into_vec().ok()?);
    let secret = bytes.get(..32)?;
    secret.windows(2).all(|pair| pair[0] == pair[1]).then(|| {
        "has a secret half of one byte repeated 32 times: anyone can derive it".to_string()
    })
}

/// Exactly `2 × bytes` hex characters; `what` names the key in the fix.
pub fn hex_key(value: &str, bytes: usize, what: &str) -> Result<Secret, Rule> {
    let chars = bytes * 2;
    let fix = format!(
        "write the {bytes}-byte {what} as {chars} hex characters (e.g. openssl rand -hex {bytes})"
    );
    let v = value.trim();
    if let Some(rest) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X"))
        && is_hex(rest)
    {
        return Err(Rule::new(
            "starts with 0x",
            format!("drop the 0x prefix; {fix}"),
        ));
    }
    if is_hex(v) {
        if v.len() == chars {
            return Ok(Secret::new(v.to_ascii_lowercase()));
        }
        let hint = match (v.len(), bytes) {
            (64, 16) => " (32 bytes: the backup encryption key, or an AES-256 key?)",
            (32, 32) => " (16 bytes: the secret store key?)",
            _ => "",
        };
        return Err(Rule::new(
            format!("is {} hex characters, not {chars}{hint}", v.len()),
            fix,
        ));
    }
    if looks_base64(v) {
        return Err(Rule::new("looks like base64, not hex", fix));
    }
    Err(Rule::new(
        format!(
            "has characters that are not hex ({} characters in all)",
            v.len()
        ),
        fix,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A real key pair in NEAR's text form, made for this test.
    fn keypair() -> (String, String) {
        let sk = near_crypto::SecretKey::from_seed(near_crypto::KeyType::ED25519, "validate tests");
        (sk.to_string(), sk.public_key().to_string())
    }

    #[test]
    fn a_near_key_is_accepted_and_its_public_key_derived() {
        let (sk, pk) = keypair();
        let key = ed25519_key(&sk).unwrap();
        assert_eq!(key.public.to_string(), pk);
        assert_eq!(key.secret.expose(), sk);
        assert!(
            ed25519_key(&format!("  {sk}\n")).is_ok(),
            "surrounding whitespace is trimmed"
        );
    }

    #[test]
    fn likely_mistakes_are_named() {
        let (sk, pk) = keypair();
        let body = sk.strip_prefix("ed25519:").unwrap();
        let rule = |v: &str| ed25519_key(v).unwrap_err().rule;
        assert!(rule(body).contains("without the ed25519: prefix"));
        assert!(rule(&pk).contains("32 bytes: a public key or a bare seed"));
        assert!(rule(&format!("secp256k1:{body}")).contains("secp256k1"));
        assert!(rule(&"ab".repeat(32)).contains("64 hex characters"));
        assert!(rule("q83vEjRWeJ+rze8SNFZ4kDzKTSyVPIZJ9uQlX0N6g1M=").contains("base64"));
        assert!(rule("ed25519:0OIl").contains("not base58"));
        // Secret half of one key, public half of another.
        let other =
            near_crypto::SecretKey::from_seed(near_crypto::KeyType::ED25519, "other").to_string();
        let mut spliced = bs58::decode(body).into_vec().unwrap();
        spliced[32..].copy_from_slice(
            &bs58::decode(other.strip_prefix("ed25519:").unwrap())
                .into_vec()
                .unwrap()[32..],
        );
        let spliced = format!("ed25519:{}", bs58::encode(&spliced).into_string());
        assert!(rule(&spliced).contains("does not belong to its secret half"));
    }

    #[test]
    fn keys_anyone_can_know_are_named_without_their_value() {
        for known in [
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "11111111111111111111111111111111",
            "BD399143F5B3126098B0EAA023A0E730",
        ] {
            let key = hex_key(known, 16, "k").unwrap();
            let why = publicly_known_hex(&key).expect(known);
            assert!(
                !why.to_ascii_lowercase()
                    .contains(&known[..8].to_ascii_lowercase()),
                "{why}"
            );
        }
        let zeros = hex_key(&"0".repeat(64), 32, "k").unwrap();
        assert!(
            publicly_known_hex(&zeros)
                .unwrap()
                .contains("repeated 32 times")
        );
        let repeated_byte = hex_key(&"12".repeat(32), 32, "k").unwrap();
        assert!(publicly_known_hex(&repeated_byte).is_some());
        assert!(
            publicly_known_hex(&hex_key("00112233445566778899aabbccddeeff", 16, "k").unwrap())
                .is_none()
        );

        let (sk, _) = keypair();
        assert!(publicly_known_ed25519(&ed25519_key(&sk).unwrap()).is_none());
        let weak = near_crypto::SecretKey::ED25519(near_crypto::ED25519SecretKey(
            ed25519_dalek::SigningKey::from_bytes(&[7; 32]).to_keypair_bytes(),
        ));
        let weak = ed25519_key(&weak.to_string()).unwrap();
        assert!(
            publicly_known_ed25519(&weak)
                .unwrap()
                .contains("secret half")
        );
    }

    #[test]
    fn rules_never_quote_the_value() {
        let (sk, _) = keypair();
        let body = sk.strip_prefix("ed25519:").unwrap();
        for bad in [
            body.to_string(),
            format!("x{sk}"),
            format!("ed25519:{}", &body[..40]),
        ] {
            let rule = ed25519_key(&bad).unwrap_err();
            assert!(
                !rule.rule.contains(&body[..20]) && !rule.fix.contains(&body[..20]),
                "{rule:?}"
            );
        }
    }

    #[test]
    fn hex_keys_have_an_exact_length() {
        assert_eq!(
            hex_key("00112233445566778899AABBCCDDEEFF", 16, "k")
                .unwrap()
                .expose(),
            "00112233445566778899aabbccddeeff"
        );
        assert!(
            hex_key(&"a".repeat(64), 16, "k")
                .unwrap_err()
                .rule
                .contains("backup encryption key")
        );
        assert!(
            hex_key(&format!("0x{}", "a".repeat(32)), 16, "k")
                .unwrap_err()
                .fix
                .starts_with("drop the 0x")
        );
        assert!(
            hex_key("q83vEjRWeJ+rze8SNFZ4kA==", 16, "k")
                .unwrap_err()
                .rule
                .contains("base64")
        );
        assert!(
            hex_key(&"g".repeat(32), 16, "k")
                .unwrap_err()
                .rule
                .contains("not hex")
        );
        assert!(hex_key(&"a".repeat(64), 32, "k").is_ok());
    }

    #[test]
    fn placeholders_are_recognised() {
        for p in [
            "",
            "  ",
            "PLACEHOLDER",
            "ChangeMe",
            "todo",
            "<your key here>",
            "xxxxxxxx",
            "dummy",
            "ed25519:CHANGEME",
            "${MPC_ACCOUNT_SK}",
            "\"placeholder\"",
        ] {
            assert!(placeholder(p).is_some(), "{p:?}");
        }
        let (sk, _) = keypair();
        assert_eq!(placeholder(&sk), None);
        assert_eq!(placeholder(&"ab".repeat(16)), None);
    }

    #[test]
    fn another_prefix_is_described_by_its_shape_not_quoted() {
        let (sk, _) = keypair();
        let body = sk.strip_prefix("ed25519:").unwrap();
        let rule = ed25519_key(&format!("QXZKJQ:{body}")).unwrap_err();
        assert_eq!(
            rule.rule,
            "has another prefix before `:` (6 characters, letters), not ed25519; the node's keys are ed25519"
        );
        // `7x`: letters and digits whatever the random key's first characters.
        let rule = ed25519_key(&format!("7x{}:{}", &body[..28], &body[28..])).unwrap_err();
        assert!(
            rule.rule.contains("30 characters, letters and digits"),
            "{rule:?}"
        );
        assert!(!rule.rule.contains(&body[..6]), "{rule:?}");
        assert!(
            ed25519_key(&format!("ED25519:{body}"))
                .unwrap_err()
                .rule
                .contains("capitals")
        );
    }

    proptest! {
        /// Whatever stands before and after the `:`, no rule repeats it
        /// (upper-case Q, X, Z, J, K appear in no rule or fix text).
        #[test]
        fn no_rule_quotes_a_prefix_or_a_body(
            prefix in "[QXZJK]{1,16}",
            body in "[QXZJK1-9]{8,90}",
            separator in proptest::sample::select(vec![":", ""]),
        ) {
            let value = format!("{prefix}{separator}{body}");
            for rule in [
                ed25519_key(&value).err(),
                hex_key(&value, 16, "k").err(),
                hex_key(&value, 32, "k").err(),
            ].into_iter().flatten() {
                let text = format!("{} {}", rule.rule, rule.fix);
                prop_assert!(!text.contains(&prefix) && !text.contains(&body[..8]), "{text}");
            }
        }

        #[test]
        fn key_parsing_never_panics(s in ".{0,200}") {
            let _ = ed25519_key(&s);
            let _ = placeholder(&s);
        }

        #[test]
        fn hex_parsing_never_panics(s in "[0-9a-fA-Fx +/=:]{0,100}") {
            let _ = hex_key(&s, 16, "k");
            let _ = hex_key(&s, 32, "k");
        }

        #[test]
        fn base58_of_any_64_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 64)) {
            let _ = ed25519_key(&format!("ed25519:{}", bs58::encode(&bytes).into_string()));
        }
    }
}
