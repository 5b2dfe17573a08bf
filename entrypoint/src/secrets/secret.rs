//! Types that hold secret material: they cannot be printed, they zeroize on
//! drop, and the only way to the value is an explicit `expose()`.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A secret value (a key in text form). `Debug` and `Display` show a
/// fingerprint, never the value; the memory is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(value.into()))
    }

    /// The value itself, for the one place that needs it (the child's
    /// environment, `secrets.json`, a decryption).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short identifier that cannot reveal the value: the first 8 hex digits
    /// of SHA-256 over a fixed label and the value.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"mpc-agent secret fingerprint v1\0");
        hasher.update(self.0.as_bytes());
        hex::encode(&hasher.finalize()[..4])
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(sha256:{}…)", self.fingerprint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[redacted sha256:{}…]", self.fingerprint())
    }
}

/// An ed25519 key pair as NEAR writes it (`ed25519:` + base58 of secret ‖ public),
/// with its public key known to match the secret half.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeKey {
    pub secret: Secret,
    pub public: near_crypto::PublicKey,
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("public", &self.public.to_string())
            .field("secret", &self.secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("0123456789abcdef0123456789abcdef");
        for shown in [format!("{s:?}"), format!("{s}"), format!("{s:#?}")] {
            assert!(!shown.contains("0123456789abcdef"), "{shown}");
            assert!(shown.contains(&s.fingerprint()), "{shown}");
        }
        assert_eq!(s.expose(), "0123456789abcdef0123456789abcdef");
    }

    #[test]
    fn fingerprints_tell_values_apart_and_are_stable() {
        let a = Secret::new("a");
        assert_eq!(a.fingerprint(), Secret::new("a").fingerprint());
        assert_ne!(a.fingerprint(), Secret::new("b").fingerprint());
        assert_eq!(a.fingerprint().len(), 8);
    }
}
