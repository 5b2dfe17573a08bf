//! The one shape every verdict takes: `agent run` holds or stops on it,
//! `agent doctor` prints it, `/status` serves it; and the [`Rule`] a refused
//! value broke.

use serde::{Deserialize, Serialize};

/// Outcome of one check, ordered from least to most telling: a stage with
/// one check ok and another skipped is ok.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Skipped,
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skipped => "skipped",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    /// How bad it is, as `/health` and the metrics count: 0 ok or skipped,
    /// 1 warn, 2 fail.
    pub fn severity(self) -> u8 {
        match self {
            Status::Ok | Status::Skipped => 0,
            Status::Warn => 1,
            Status::Fail => 2,
        }
    }
}

/// One named verdict: what was looked at, what was found, and what to do about it.
///
/// `cause` and `fix` are single lines written for the operator. They never carry
/// secret material; stages put public keys and fingerprints in them instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier, `stage.subject` (e.g. `config.MPC_ENV`, `keys.access_key`).
    pub id: String,
    pub status: Status,
    pub cause: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Observed values that back the verdict (public keys, sizes, state names).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl Check {
    fn new(id: impl Into<String>, status: Status, cause: impl Into<String>) -> Self {
        Check {
            id: id.into(),
            status,
            cause: cause.into(),
            fix: None,
            detail: serde_json::Value::Null,
        }
    }

    pub fn ok(id: impl Into<String>, cause: impl Into<String>) -> Self {
        Self::new(id, Status::Ok, cause)
    }

    pub fn skipped(id: impl Into<String>, cause: impl Into<String>) -> Self {
        Self::new(id, Status::Skipped, cause)
    }

    pub fn warn(id: impl Into<String>, cause: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(id, Status::Warn, cause).with_fix(fix)
    }

    pub fn fail(id: impl Into<String>, cause: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(id, Status::Fail, cause).with_fix(fix)
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// `cause` and, when there is one, `fix`, on one line for logs and errors.
    pub fn summary(&self) -> String {
        match &self.fix {
            Some(fix) => format!("{}: {} (fix: {})", self.id, self.cause, fix),
            None => format!("{}: {}", self.id, self.cause),
        }
    }
}

/// An error and its sources on one line, for a check's cause.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    // Some errors span lines (the SDK lists every credential provider tried).
    parts
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The worst status among `checks` (skipped only when all are), `Ok` when there are none.
pub fn worst<'a>(checks: impl IntoIterator<Item = &'a Check>) -> Status {
    checks
        .into_iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Ok)
}

/// Why a value was refused, for a person: the rule and a fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub rule: String,
    pub fix: String,
}

impl Rule {
    pub fn new(rule: impl Into<String>, fix: impl Into<String>) -> Self {
        Rule {
            rule: rule.into(),
            fix: fix.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_orders_fail_above_warn_above_skipped() {
        let checks = [
            Check::ok("a", "fine"),
            Check::skipped("b", "not asked"),
            Check::warn("c", "low", "raise it"),
        ];
        assert_eq!(worst(&checks), Status::Warn);
        assert_eq!(worst(&checks[..2]), Status::Ok);
        assert_eq!(worst(&checks[1..2]), Status::Skipped);
        assert_eq!(worst(&[]), Status::Ok);
    }

    #[test]
    fn summary_carries_cause_and_fix() {
        let c = Check::fail("config.MPC_ENV", "unknown chain", "use testnet");
        assert_eq!(
            c.summary(),
            "config.MPC_ENV: unknown chain (fix: use testnet)"
        );
    }
}
