//! Where the vault is (`s3://BUCKET[/PREFIX]`) and the key of each object in
//! it: `PREFIX/<MPC_ACCOUNT_ID>/<keyshare file name>`.

use std::fmt;

use serde::Serialize;

use super::KeyshareName;
use crate::check::Rule;

/// A bucket and an optional prefix inside it, without slashes at its ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VaultLocation {
    pub bucket: String,
    pub prefix: Option<String>,
}

/// `s3://BUCKET` or `s3://BUCKET/PREFIX` (a trailing `/` is dropped).
pub fn location(value: &str) -> Result<VaultLocation, Rule> {
    let example = "write it like s3://mpc-keyshare-vault or s3://mpc-keyshare-vault/mainnet";
    let Some(rest) = value.strip_prefix("s3://") else {
        return Err(Rule::new("must be an s3:// URL", example));
    };
    let (bucket, prefix) = match rest.split_once('/') {
        Some((bucket, prefix)) => (bucket, prefix.trim_end_matches('/')),
        None => (rest, ""),
    };
    bucket_name(bucket)?;
    let prefix = if prefix.is_empty() {
        None
    } else {
        Some(prefix_of(prefix)?.to_string())
    };
    Ok(VaultLocation {
        bucket: bucket.to_string(),
        prefix,
    })
}

/// S3's rules for a bucket name (general purpose buckets).
fn bucket_name(bucket: &str) -> Result<(), Rule> {
    let refused = |rule: &str| {
        Rule::new(
            format!("names a bucket that {rule}"),
            "a bucket name is 3 to 63 lowercase letters, digits, dots and hyphens, beginning and ending with a letter or digit (e.g. s3://mpc-keyshare-vault)",
        )
    };
    if bucket.is_empty() {
        return Err(Rule::new(
            "has no bucket",
            "write it like s3://mpc-keyshare-vault",
        ));
    }
    if !(3..=63).contains(&bucket.len()) {
        return Err(refused("is not 3 to 63 characters long"));
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(refused(
            "has characters other than lowercase letters, digits, dots and hyphens",
        ));
    }
    let ends = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !ends(bucket.bytes().next()) || !ends(bucket.bytes().last()) {
        return Err(refused("does not begin and end with a letter or digit"));
    }
    if bucket.contains("..") {
        return Err(refused("has two dots in a row"));
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(refused("is an IP address"));
    }
    Ok(())
}

/// Path segments of S3's safe characters, none empty, none `.` or `..`.
fn prefix_of(prefix: &str) -> Result<&str, Rule> {
    let refused = |rule: &str| {
        Rule::new(
            format!("has a prefix that {rule}"),
            "write the prefix as segments of letters, digits and ! - _ . * ' ( ) separated by single slashes (e.g. s3://mpc-keyshare-vault/mainnet/nodes)",
        )
    };
    for segment in prefix.split('/') {
        if segment.is_empty() {
            return Err(refused("has an empty segment (two slashes in a row)"));
        }
        if segment == "." || segment == ".." {
            return Err(refused("has a . or .. segment"));
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!-_.*'()".contains(&b))
        {
            return Err(refused(
                "has characters other than letters, digits and ! - _ . * ' ( )",
            ));
        }
    }
    Ok(prefix)
}

impl VaultLocation {
    /// `PREFIX/<account>/`: where one account's keyshares are.
    pub fn account_prefix(&self, account: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}/{account}/"),
            None => format!("{account}/"),
        }
    }

    /// `PREFIX/<account>/<name>`.
    pub fn object_key(&self, account: &str, name: KeyshareName) -> String {
        format!("{}{name}", self.account_prefix(account))
    }

    /// `s3://BUCKET/KEY`, for messages.
    pub fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

impl fmt::Display for VaultLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.prefix {
            Some(prefix) => write!(f, "s3://{}/{prefix}", self.bucket),
            None => write!(f, "s3://{}", self.bucket),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: KeyshareName = KeyshareName {
        epoch: 3,
        domains: 2,
    };

    #[test]
    fn a_bucket_alone_and_a_bucket_with_a_prefix() {
        let bare = location("s3://mpc-vault").unwrap();
        assert_eq!(bare.prefix, None);
        assert_eq!(
            bare.object_key("node0.near", NAME),
            "node0.near/epoch_3_with_2_domains"
        );
        assert_eq!(bare.to_string(), "s3://mpc-vault");
        assert_eq!(location("s3://mpc-vault/").unwrap(), bare);
        let prefixed = location("s3://mpc-vault/mainnet/nodes/").unwrap();
        assert_eq!(prefixed.prefix.as_deref(), Some("mainnet/nodes"));
        assert_eq!(
            prefixed.object_key("node0.near", NAME),
            "mainnet/nodes/node0.near/epoch_3_with_2_domains"
        );
        assert_eq!(prefixed.to_string(), "s3://mpc-vault/mainnet/nodes");
    }

    #[test]
    fn what_s3_would_refuse_is_refused_with_a_fix() {
        for bad in [
            "mpc-vault",
            "https://mpc-vault.s3.amazonaws.com",
            "s3://",
            "s3:///prefix",
            "s3://ab",
            "s3://MPC-vault",
            "s3://mpc_vault",
            "s3://-mpc-vault",
            "s3://mpc..vault",
            "s3://192.168.0.1",
            "s3://mpc-vault//x",
            "s3://mpc-vault/a/../b",
            "s3://mpc-vault/a b",
        ] {
            let rule = location(bad).unwrap_err();
            assert!(
                rule.fix.starts_with("write") || rule.fix.starts_with("a bucket"),
                "{bad}: {rule:?}"
            );
        }
    }
}
