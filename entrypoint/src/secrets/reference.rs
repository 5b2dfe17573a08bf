//! Where a secret lives in Secrets Manager: a name or ARN, optionally with the
//! ECS `valueFrom` suffix `:json-key:version-stage:version-id`.

use serde::Serialize;

use crate::check::Rule;

/// A parsed secret id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretRef {
    /// What GetSecretValue takes: the name, or the ARN up to the name suffix.
    pub secret_id: String,
    /// The field of a JSON secret to read; `None` reads the secret's own name.
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

impl SecretRef {
    /// Parses `name`, `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`, either
    /// followed by `:json-key:version-stage:version-id` (each part optional).
    pub fn parse(value: &str) -> Result<SecretRef, Rule> {
        let value = value.trim();
        let parts: Vec<&str> = value.split(':').collect();
        let (secret_id, rest) = if value.starts_with("arn:") {
            if parts.len() < 7
                || parts[2] != "secretsmanager"
                || parts[5] != "secret"
                || parts[6].is_empty()
            {
                return Err(Rule::new(
                    "is not a Secrets Manager secret ARN",
                    "write arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, optionally followed by :json-key:version-stage:version-id",
                ));
            }
            (parts[..7].join(":"), &parts[7..])
        } else {
            (parts[0].to_string(), &parts[1..])
        };
        if secret_id.is_empty() {
            return Err(Rule::new("is empty", "give the secret's name or ARN"));
        }
        if rest.len() > 3 {
            return Err(Rule::new(
                "has too many `:`-separated parts",
                "after the name or ARN only :json-key:version-stage:version-id may follow",
            ));
        }
        let part = |i: usize| rest.get(i).filter(|p| !p.is_empty()).map(|p| p.to_string());
        let reference = SecretRef {
            secret_id,
            json_key: part(0),
            version_stage: part(1),
            version_id: part(2),
        };
        if reference.version_stage.is_some() && reference.version_id.is_some() {
            return Err(Rule::new(
                "names both a version stage and a version id",
                "give one of them (e.g. …:json-key:AWSPREVIOUS: or …:json-key::VERSION-ID)",
            ));
        }
        Ok(reference)
    }

    /// Validates a setting's value; the setting keeps the text.
    pub fn check(value: &str) -> Result<String, Rule> {
        SecretRef::parse(value).map(|_| value.trim().to_string())
    }

    /// The id for secret `name` from a fleet template such as `mpc-node-0-{name_lower}`.
    pub fn from_template(template: &str, name: &str) -> Result<SecretRef, Rule> {
        SecretRef::parse(
            &template
                .replace("{name_lower}", &name.to_ascii_lowercase())
                .replace("{name}", name),
        )
    }

    pub fn check_template(value: &str) -> Result<String, Rule> {
        if !value.contains("{name}") && !value.contains("{name_lower}") {
            return Err(Rule::new(
                "has neither {name} nor {name_lower}",
                "write it like mpc-node-0-{name} (→ mpc-node-0-MPC_ACCOUNT_SK) or mpc-node-0-{name_lower}",
            ));
        }
        SecretRef::from_template(value, "MPC_ACCOUNT_SK").map(|_| value.trim().to_string())
    }

    /// The id as written, with its selectors, for reports.
    pub fn describe(&self) -> String {
        let mut s = self.secret_id.clone();
        if let Some(k) = &self.json_key {
            s.push_str(&format!(" (JSON key {k})"));
        }
        if let Some(v) = &self.version_stage {
            s.push_str(&format!(" (stage {v})"));
        }
        if let Some(v) = &self.version_id {
            s.push_str(&format!(" (version {v})"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mpc/node0-AbCdEf";

    #[test]
    fn a_plain_name_is_the_id() {
        let r = SecretRef::parse("mpc-node-0-MPC_ACCOUNT_SK").unwrap();
        assert_eq!(r.secret_id, "mpc-node-0-MPC_ACCOUNT_SK");
        assert_eq!(r.json_key, None);
    }

    #[test]
    fn an_arn_with_the_ecs_value_from_suffix() {
        let r = SecretRef::parse(&format!("{ARN}:MPC_ACCOUNT_SK:AWSPREVIOUS:")).unwrap();
        assert_eq!(r.secret_id, ARN);
        assert_eq!(r.json_key.as_deref(), Some("MPC_ACCOUNT_SK"));
        assert_eq!(r.version_stage.as_deref(), Some("AWSPREVIOUS"));
        assert_eq!(r.version_id, None);
        let r = SecretRef::parse(&format!("{ARN}::AWSCURRENT")).unwrap();
        assert_eq!(r.json_key, None);
        assert_eq!(r.version_stage.as_deref(), Some("AWSCURRENT"));
        assert_eq!(SecretRef::parse(ARN).unwrap().secret_id, ARN);
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert!(SecretRef::parse("arn:aws:s3:::bucket").is_err());
        assert!(SecretRef::parse(&format!("{ARN}:k:AWSCURRENT:v1")).is_err());
        assert!(SecretRef::parse(&format!("{ARN}:a:b:c:d")).is_err());
        assert!(SecretRef::parse("").is_err());
    }

    #[test]
    fn templates_take_both_name_conventions() {
        assert_eq!(
            SecretRef::from_template("mpc-node-0-{name}", "MPC_ACCOUNT_SK")
                .unwrap()
                .secret_id,
            "mpc-node-0-MPC_ACCOUNT_SK"
        );
        assert_eq!(
            SecretRef::from_template("mpc-node-0-{name_lower}", "MPC_ACCOUNT_SK")
                .unwrap()
                .secret_id,
            "mpc-node-0-mpc_account_sk"
        );
        assert!(SecretRef::check_template("mpc-node-0").is_err());
    }
}
