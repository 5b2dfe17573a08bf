//! The name mpc-node gives a keyshare file, `epoch_<E>_with_<D>_domains`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A keyshare file's name: the epoch of its keyset and how many domains it
/// holds. Ordered by epoch, then domains, so the greatest is the newest (a
/// keyset gains domains within an epoch, `vote_add_domains`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyshareName {
    pub epoch: u64,
    pub domains: u64,
}

impl KeyshareName {
    /// `name` when it is exactly what the node writes: decimal numbers as
    /// `u64` formats them (no sign, no leading zero), nothing before or after.
    pub fn parse(name: &str) -> Option<KeyshareName> {
        let rest = name.strip_prefix("epoch_")?;
        let (epoch, rest) = rest.split_once("_with_")?;
        let domains = rest.strip_suffix("_domains")?;
        let parsed = KeyshareName {
            epoch: decimal(epoch)?,
            domains: decimal(domains)?,
        };
        (parsed.to_string() == name).then_some(parsed)
    }
}

/// Digits only: `u64::from_str` would also take a leading `+`.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for KeyshareName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch_{}_with_{}_domains", self.epoch, self.domains)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_name_the_node_writes_reads_back(epoch: u64, domains: u64) {
            let name = KeyshareName { epoch, domains };
            prop_assert_eq!(KeyshareName::parse(&name.to_string()), Some(name));
        }

        #[test]
        fn a_parsed_name_is_written_back_unchanged(text in "\\PC*") {
            if let Some(name) = KeyshareName::parse(&text) {
                prop_assert_eq!(name.to_string(), text);
            }
        }
    }
}
