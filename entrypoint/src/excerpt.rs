//! Text from outside the agent (the node's output, an RPC's answer) made fit
//! to show: key-like strings redacted, control characters escaped, the length
//! bounded. Whatever the agent quotes of such text goes through here first.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex_lite::{Captures, Regex};

/// What a redacted string is replaced by.
pub const REDACTED: &str = "[redacted]";

/// A NEAR key in text form: `ed25519:` or `secp256k1:` and base58, public or secret.
static NEAR_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(ed25519|secp256k1):[1-9A-HJ-NP-Za-km-z]+").expect("a valid pattern")
});
/// 32 hex digits or more: the secret store key (32), the backup key (64), a raw seed.
static HEX_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[0-9a-fA-F]{32,}\b").expect("a valid pattern"));
/// A long run of base58, base64 or base64url characters; judged by [`looks_like_key`].
static ENCODED_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/_-]{40,}={0,2}").expect("a valid pattern"));

/// `text` with every key-like string replaced by [`REDACTED`]: NEAR keys
/// (`ed25519:…`, `secp256k1:…`, the public ones too), runs of 32 hex digits
/// or more, and runs of 40 base58/base64 characters or more that mix upper
/// case, lower case and digits (a 32-byte value is 43 or 44 of them).
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if NEAR_KEY.is_match(&out) {
        out = Cow::Owned(
            NEAR_KEY
                .replace_all(&out, |caps: &Captures| format!("{}:{REDACTED}", &caps[1]))
                .into_owned(),
        );
    }
    if HEX_RUN.is_match(&out) {
        out = Cow::Owned(HEX_RUN.replace_all(&out, REDACTED).into_owned());
    }
    if ENCODED_RUN
        .find_iter(&out)
        .any(|m| looks_like_key(m.as_str()))
    {
        out = Cow::Owned(
            ENCODED_RUN
                .replace_all(&out, |caps: &Captures| {
                    let run = &caps[0];
                    if looks_like_key(run) {
                        REDACTED.to_string()
                    } else {
                        run.to_string()
                    }
                })
                .into_owned(),
        );
    }
    out
}

/// Random base58/base64 mixes all three classes and has few of `+/_-`; a
/// long path or a `snake_case_identifier` does not.
fn looks_like_key(run: &str) -> bool {
    let has = |f: fn(&u8) -> bool| run.as_bytes().iter().any(f);
    let separators = run
        .bytes()
        .filter(|b| matches!(b, b'+' | b'/' | b'_' | b'-'))
        .count();
    has(u8::is_ascii_uppercase)
        && has(u8::is_ascii_lowercase)
        && has(u8::is_ascii_digit)
        && separators * 10 <= run.len()
}

/// At most `max` characters of `text`, redacted, on one line: control
/// characters (newlines included) escaped, the cut marked with how much was left out.
pub fn excerpt(text: &str, max: usize) -> String {
    let redacted = redact(text.trim());
    let mut out = String::with_capacity(redacted.len().min(max + 32));
    let mut shown = 0;
    for (at, c) in redacted.char_indices() {
        let piece: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.into()
        };
        let width = piece.chars().count();
        if shown + width > max {
            out.push_str(&format!("… [{} more bytes]", redacted.len() - at));
            return out;
        }
        shown += width;
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_control_characters_count_toward_the_bound() {
        let shown = excerpt(&"\u{1}".repeat(1000), 60);
        let kept = shown.split('…').next().unwrap_or_default();
        assert!(kept.chars().count() <= 60, "{shown}");
        assert!(shown.ends_with("more bytes]"), "{shown}");
    }

    const SECRET: &str = "ed25519:3D4YudUahN1nawWogh8pAKSj92sUNMdbZGjn7kERKzYoTy8tnFQuwoGUC51DowKqorvkr2pytJSnwuSbsNVfqygr";

    #[test]
    fn near_keys_are_redacted_public_and_secret() {
        let line = format!(
            "loaded {SECRET} and secp256k1:5ftgm7wYK5gtVqq1kxMGy7gSudkrfYCbpsjL6sH1nwx2oj5NR2JktohjzB6fbEhhRERQpiwJcpwnQjxtoX3GS3cQ, ok"
        );
        assert_eq!(
            redact(&line),
            "loaded ed25519:[redacted] and secp256k1:[redacted], ok"
        );
    }

    #[test]
    fn hex_runs_of_32_digits_or_more_are_redacted_shorter_ones_kept() {
        let store = "00112233445566778899aabbccddeeff";
        let backup = store.repeat(2);
        assert_eq!(
            redact(&format!("MPC_SECRET_STORE_KEY={store} backup {backup}")),
            "MPC_SECRET_STORE_KEY=[redacted] backup [redacted]"
        );
        assert_eq!(
            redact("commit 0123abcd at block 4242"),
            "commit 0123abcd at block 4242"
        );
    }

    #[test]
    fn long_base58_and_base64_values_are_redacted_paths_and_words_kept() {
        let base58 = "5ftgm7wYK5gtVqq1kxMGy7gSudkrfYCbpsjL6sH1nwx2";
        let base64 = "q80cZVr/Hu5gQ4xnb+PxZSm3Ki0JVMzI7TOwbqgrePI=";
        assert_eq!(
            redact(&format!("hash {base58} key {base64}.")),
            "hash [redacted] key [redacted]."
        );
        let kept = "/data/mpc/home/temporary_keys/keyshare_epoch_12_domain_0 near_indexer_streamer_messages_total";
        assert_eq!(redact(kept), kept);
    }

    #[test]
    fn an_excerpt_is_one_bounded_line() {
        assert_eq!(excerpt("  a\nb\u{1b}[31m  ", 100), "a\\nb\\u{1b}[31m");
        let long = "x".repeat(1000);
        let cut = excerpt(&long, 10);
        assert_eq!(cut, "xxxxxxxxxx… [990 more bytes]");
        assert_eq!(
            excerpt(&format!("key {SECRET}"), 200),
            "key ed25519:[redacted]"
        );
    }
}
