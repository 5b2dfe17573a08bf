//! Parsers for setting values: durations, sizes, booleans, addresses, choices.
//! Each failure is a [`Rule`]: the rule the value broke and how to write it instead.

use std::net::SocketAddr;
use std::time::Duration;

use crate::check::Rule;

/// `500ms`, `2s`, `5m`, `1h`, or a bare number of seconds (`30`, `1.5`).
pub fn duration(value: &str) -> Result<Duration, Rule> {
    let refused = || {
        Rule::new(
            "must be a duration",
            "write it like 500ms, 2s, 5m, 1h, or a bare number of seconds",
        )
    };
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| refused());
    }
    humantime::parse_duration(value).map_err(|_| refused())
}

/// `10GiB`, `512MiB`, `1.5GB`, or bare bytes.
pub fn size(value: &str) -> Result<u64, Rule> {
    value
        .parse::<bytesize::ByteSize>()
        .map(|s| s.as_u64())
        .map_err(|_| {
            Rule::new(
                "must be a size",
                "write it like 10GiB, 512MiB, or a bare number of bytes",
            )
        })
}

/// `true`/`false`/`1`/`0`.
pub fn boolean(value: &str) -> Result<bool, Rule> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Rule::new("must be a boolean", "write true, false, 1 or 0")),
    }
}

/// `IP:PORT`, e.g. `0.0.0.0:8090` or `[::]:8090`.
pub fn socket_addr(value: &str) -> Result<SocketAddr, Rule> {
    value.parse().map_err(|_| {
        Rule::new(
            "must be an IP address and port",
            "write it like 0.0.0.0:8090 or [::]:8090 (host names are not resolved)",
        )
    })
}

/// An `http://host:port/path` URL.
pub fn http_url(value: &str) -> Result<String, Rule> {
    let refused = || {
        Rule::new(
            "must be an http:// URL with a host",
            "write it like http://127.0.0.1:8080/health",
        )
    };
    let uri: http::Uri = value.parse().map_err(|_| refused())?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(_)) => Ok(value.to_string()),
        _ => Err(refused()),
    }
}

/// Comma-separated `http://` or `https://` URLs with a host, at least one.
pub fn http_or_https_urls(value: &str) -> Result<Vec<String>, Rule> {
    // The entry is named by its place, not quoted: a URL may carry an API key.
    let refused = |what: String| {
        Rule::new(
            format!("{what} is not an http:// or https:// URL with a host"),
            "write one or more URLs separated by commas, e.g. https://rpc.testnet.near.org,http://10.0.0.5:3030",
        )
    };
    let urls: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(n, entry)| {
            let refused = || refused(format!("entry {}", n + 1));
            let uri: http::Uri = entry.parse().map_err(|_| refused())?;
            match (uri.scheme_str(), uri.host()) {
                (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(entry.to_string()),
                _ => Err(refused()),
            }
        })
        .collect::<Result<_, _>>()?;
    if urls.is_empty() {
        return Err(refused("the list".to_string()));
    }
    Ok(urls)
}

/// A duration longer than zero.
pub fn positive_duration(value: &str) -> Result<Duration, Rule> {
    match duration(value)? {
        d if d.is_zero() => Err(Rule::new(
            "must be longer than zero",
            "write it like 500ms, 5s or 1m",
        )),
        d => Ok(d),
    }
}

/// An amount of NEAR: `1 NEAR`, `0.5 NEAR`, `250 millinear`, `10 yoctoNEAR`.
pub fn near_amount(value: &str) -> Result<near_primitives::types::Balance, Rule> {
    value.parse().map_err(|_| {
        Rule::new(
            "must be an amount of NEAR with its unit",
            "write it like 1 NEAR, 0.5 NEAR, 250 millinear or 10 yoctoNEAR",
        )
    })
}

/// An EFS file system id, `fs-` and hex.
/// A KMS key as S3 takes it: a key id, a key ARN, `alias/NAME` or an alias ARN.
pub fn kms_key(value: &str) -> Result<String, Rule> {
    const FIX: &str = "name the key by its id (1234abcd-12ab-34cd-56ef-1234567890ab), its ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) or an alias (alias/mpc-keyshare-vault)";
    let shaped = |c: char| c.is_ascii_alphanumeric() || "-_/:".contains(c);
    if value.is_empty() || value.len() > 2048 || !value.chars().all(shaped) {
        return Err(Rule::new("is not a KMS key id, ARN or alias", FIX));
    }
    let key_id = |id: &str| {
        id.strip_prefix("mrk-")
            .unwrap_or(id)
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-')
    };
    let alias = |name: &str| !name.is_empty() && !name.starts_with("aws/");
    let arn = value
        .strip_prefix("arn:aws")
        .map(|rest| rest.rsplit(':').next());
    let valid = match arn {
        Some(Some(resource)) => match resource.split_once('/') {
            Some(("key", id)) => key_id(id),
            Some(("alias", name)) => alias(name),
            _ => false,
        },
        Some(None) => false,
        None => match value.strip_prefix("alias/") {
            Some(name) => alias(name),
            None => key_id(value),
        },
    };
    if !valid {
        return Err(Rule::new(
            "is not a KMS key id, key ARN or alias of a customer key (aws/… aliases are AWS's own keys)",
            FIX,
        ));
    }
    Ok(value.to_string())
}

/// A CloudWatch namespace: 1 to 255 letters, digits and `.-_/#:`, not `AWS/…`.
pub fn cloudwatch_namespace(value: &str) -> Result<String, Rule> {
    const FIX: &str = "use 1 to 255 letters, digits and . - _ / # : (the stack's is MpcAgent)";
    let shaped = |c: char| c.is_ascii_alphanumeric() || ".-_/#:".contains(c);
    if value.is_empty() || value.len() > 255 || !value.chars().all(shaped) {
        return Err(Rule::new("is not a CloudWatch namespace", FIX));
    }
    if value.starts_with("AWS/") {
        return Err(Rule::new(
            "names a namespace of AWS's own services (AWS/…)",
            FIX,
        ));
    }
    Ok(value.to_string())
}

/// A CloudWatch dimension value: 1 to 255 printable characters.
pub fn cloudwatch_dimension(value: &str) -> Result<String, Rule> {
    if value.is_empty() || value.len() > 255 || value.chars().any(char::is_control) {
        return Err(Rule::new(
            "is not a CloudWatch dimension value",
            "use 1 to 255 printable characters, e.g. the node's name",
        ));
    }
    Ok(value.to_string())
}

pub fn efs_id(value: &str) -> Result<String, Rule> {
    match value.strip_prefix("fs-") {
        Some(rest) if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(value.to_string())
        }
        _ => Err(Rule::new(
            "is not an EFS file system id",
            "write it like fs-0123456789abcdef0 (aws efs describe-file-systems lists them)",
        )),
    }
}

/// One of `allowed`; a near miss is named in the fix.
pub fn choice<'a>(value: &str, allowed: &[&'a str]) -> Result<&'a str, Rule> {
    if let Some(hit) = allowed.iter().find(|a| **a == value) {
        return Ok(hit);
    }
    let list = allowed.join(", ");
    let fix = match suggest(value, allowed.iter().copied()) {
        Some(near) => format!("did you mean {near}? allowed: {list}"),
        None => format!("use one of: {list}"),
    };
    Err(Rule::new(format!("must be one of {list}"), fix))
}

/// The candidate a mistyped `value` most likely meant, if one is close.
pub fn suggest<'a>(value: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = value.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let c = candidate.to_ascii_lowercase();
        let distance = if !lower.is_empty() && (c.contains(&lower) || lower.contains(&c)) {
            // `localnet` → `mpc-localnet`: one is a part of the other.
            1
        } else {
            strsim::levenshtein(&lower, &c)
        };
        let tolerance = (c.len() / 3).max(2);
        if distance <= tolerance && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// A wait that may be unbounded: `forever`, or a duration (`None` is forever).
pub fn wait_limit(value: &str) -> Result<Option<Duration>, Rule> {
    if value == "forever" {
        return Ok(None);
    }
    duration(value).map(Some).map_err(|_| {
        Rule::new(
            "must be a duration or forever",
            "write it like 10m, 1h, or forever",
        )
    })
}

/// A user to run as: a name from the passwd database, or numeric ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSpec {
    Name(String),
    /// `UID` alone takes the group from the passwd entry of that uid.
    Ids {
        uid: u32,
        gid: Option<u32>,
    },
}

/// `mpc`, `1000` or `1000:1000`.
pub fn user_spec(value: &str) -> Result<UserSpec, Rule> {
    let refused = || {
        Rule::new(
            "must be a user name, a UID or UID:GID",
            "write it like mpc, 1000 or 1000:1000",
        )
    };
    let number = |v: &str| v.parse::<u32>().map_err(|_| refused());
    if let Some((uid, gid)) = value.split_once(':') {
        return Ok(UserSpec::Ids {
            uid: number(uid)?,
            gid: Some(number(gid)?),
        });
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(UserSpec::Ids {
            uid: number(value)?,
            gid: None,
        });
    }
    let valid = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid && !value.starts_with('-') {
        Ok(UserSpec::Name(value.to_string()))
    } else {
        Err(refused())
    }
}

/// How many exits within which window make a crash loop: `5/300s`, `5/5m`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrashLoop {
    pub exits: u32,
    pub window: Duration,
}

pub fn crash_loop(value: &str) -> Result<CrashLoop, Rule> {
    let refused = || {
        Rule::new(
            "must be EXITS/WINDOW with at least 2 exits",
            "write it like 5/300s (5 exits within 300 seconds)",
        )
    };
    let (exits, window) = value.split_once('/').ok_or_else(refused)?;
    let exits: u32 = exits.trim().parse().map_err(|_| refused())?;
    let window = duration(window.trim()).map_err(|_| refused())?;
    if exits < 2 || window.is_zero() {
        return Err(refused());
    }
    Ok(CrashLoop { exits, window })
}

/// Restart delay range: the first delay, doubled on each crash up to the second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

pub fn backoff(value: &str) -> Result<Backoff, Rule> {
    let refused = || {
        Rule::new(
            "must be INITIAL..MAX with INITIAL ≤ MAX",
            "write it like 1s..60s",
        )
    };
    let (initial, max) = value.split_once("..").ok_or_else(refused)?;
    let initial = duration(initial.trim()).map_err(|_| refused())?;
    let max = duration(max.trim()).map_err(|_| refused())?;
    if initial > max {
        return Err(refused());
    }
    Ok(Backoff { initial, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kms_key_is_an_id_an_arn_or_a_customer_alias() {
        for good in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "alias/mpc-keyshare-vault",
            "arn:aws:kms:eu-west-1:111122223333:alias/mpc-keyshare-vault",
        ] {
            assert_eq!(kms_key(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "alias/aws/s3",
            "alias/",
            "my key",
            "arn:aws:kms:eu-west-1:1:bucket/x",
            "xyz",
        ] {
            assert!(kms_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cloudwatch_namespace_is_ours_and_well_formed() {
        assert_eq!(cloudwatch_namespace("MpcAgent").as_deref(), Ok("MpcAgent"));
        assert!(cloudwatch_namespace("Mpc/Agent:1").is_ok());
        for bad in ["", "AWS/EC2", "has space", &"x".repeat(256)] {
            assert!(cloudwatch_namespace(bad).is_err(), "{bad}");
        }
        assert!(cloudwatch_dimension("node0.near").is_ok());
        assert!(cloudwatch_dimension("").is_err());
        assert!(cloudwatch_dimension("a\u{7}b").is_err());
    }

    #[test]
    fn durations_take_units_and_bare_seconds() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(duration("soon").is_err());
        assert!(duration("-1").is_err());
    }

    #[test]
    fn sizes_take_binary_units_and_bare_bytes() {
        assert_eq!(size("10GiB"), Ok(10 << 30));
        assert_eq!(size("512MiB"), Ok(512 << 20));
        assert_eq!(size("4096"), Ok(4096));
        assert!(size("lots").is_err());
    }

    #[test]
    fn booleans_are_strict() {
        assert_eq!(boolean("true"), Ok(true));
        assert_eq!(boolean("0"), Ok(false));
        assert!(boolean("yes").is_err());
    }

    #[test]
    fn near_misses_are_suggested() {
        let chains = ["mpc-localnet", "testnet", "mainnet"];
        assert_eq!(suggest("localnet", chains), Some("mpc-localnet"));
        assert_eq!(suggest("testent", chains), Some("testnet"));
        assert_eq!(suggest("Mainnet", chains), Some("mainnet"));
        assert_eq!(suggest("banana-republic", chains), None);
        let err = choice("localnet", &chains).unwrap_err();
        assert!(
            err.fix.starts_with("did you mean mpc-localnet?"),
            "{}",
            err.fix
        );
    }

    #[test]
    fn crash_loop_and_backoff_forms() {
        assert_eq!(
            crash_loop("5/300s"),
            Ok(CrashLoop {
                exits: 5,
                window: Duration::from_secs(300)
            })
        );
        assert!(crash_loop("1/10s").is_err());
        assert!(crash_loop("5").is_err());
        assert_eq!(
            backoff("1s..60s"),
            Ok(Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60)
            })
        );
        assert!(backoff("10s..1s").is_err());
    }

    #[test]
    fn waits_are_durations_or_forever() {
        assert_eq!(wait_limit("forever"), Ok(None));
        assert_eq!(wait_limit("10m"), Ok(Some(Duration::from_secs(600))));
        assert!(wait_limit("never").is_err());
    }

    #[test]
    fn users_are_names_or_ids() {
        assert_eq!(user_spec("mpc"), Ok(UserSpec::Name("mpc".into())));
        assert_eq!(
            user_spec("1000"),
            Ok(UserSpec::Ids {
                uid: 1000,
                gid: None
            })
        );
        assert_eq!(
            user_spec("1000:1001"),
            Ok(UserSpec::Ids {
                uid: 1000,
                gid: Some(1001)
            })
        );
        assert!(user_spec("1000:").is_err());
        assert!(user_spec("a b").is_err());
        assert!(user_spec("-x").is_err());
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(http_url("http://127.0.0.1:8080/health").is_ok());
        assert!(http_url("https://example.com/").is_err());
        assert!(http_url("127.0.0.1:8080").is_err());
    }

    #[test]
    fn url_lists_take_http_and_https_in_order() {
        assert_eq!(
            http_or_https_urls("https://rpc.testnet.near.org, http://10.0.0.5:3030/"),
            Ok(vec![
                "https://rpc.testnet.near.org".to_string(),
                "http://10.0.0.5:3030/".to_string()
            ])
        );
        assert!(http_or_https_urls("rpc.testnet.near.org").is_err());
        assert!(http_or_https_urls("ftp://rpc.example").is_err());
        assert!(http_or_https_urls(" , ").is_err());
        let err = http_or_https_urls("https://ok.example,localhost:3030/v3/KEY").unwrap_err();
        assert!(err.rule.starts_with("entry 2 "), "{}", err.rule);
        assert!(!err.rule.contains("KEY"), "{}", err.rule);
    }

    #[test]
    fn near_amounts_take_a_unit() {
        use near_primitives::types::Balance;
        assert_eq!(near_amount("1 NEAR").unwrap(), Balance::from_near(1));
        assert_eq!(
            near_amount("0.5 near").unwrap(),
            Balance::from_millinear(500)
        );
        assert_eq!(
            near_amount("10 yoctoNEAR").unwrap(),
            Balance::from_yoctonear(10)
        );
        assert!(near_amount("1").is_err());
        assert!(near_amount("lots NEAR").is_err());
    }

    #[test]
    fn positive_durations_refuse_zero() {
        assert_eq!(positive_duration("5s"), Ok(Duration::from_secs(5)));
        assert!(positive_duration("0s").is_err());
        assert!(positive_duration("0").is_err());
    }
}
