//! What an AWS error answer says beyond its code, read the same way for
//! every service: the message of an XML body, and who an access denial
//! names as the caller.

/// The `<Message>` of an XML error body (what S3 and the query-protocol
/// APIs send, and what moto sends for a denial whatever the service).
pub fn xml_message(body: Option<&[u8]>) -> Option<String> {
    let text = std::str::from_utf8(body?).ok()?;
    let start = text.find("<Message>")? + "<Message>".len();
    let end = text[start..].find("</Message>")? + start;
    Some(text[start..end].to_string())
}

/// ` for <principal ARN>` when a denial's message names the caller, and
/// what to say when it looks like the execution role (the agent runs with
/// the task role); both empty otherwise.
pub fn denied_principal(message: &str) -> (String, &'static str) {
    let principal = message
        .split_whitespace()
        .find(|w| w.starts_with("arn:aws:sts::") || w.starts_with("arn:aws:iam::"))
        .map(|p| format!(" for {}", p.trim_end_matches([',', '.'])))
        .unwrap_or_default();
    let execution_role = if principal.to_ascii_lowercase().contains("execution") {
        " — the principal looks like the execution role: the agent runs with the task role"
    } else {
        ""
    };
    (principal, execution_role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_error_messages_are_read() {
        let body = b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>User: x is not authorized</Message></Error></ErrorResponse>";
        assert_eq!(
            xml_message(Some(body)).as_deref(),
            Some("User: x is not authorized")
        );
        assert_eq!(xml_message(Some(b"{}")), None);
    }

    #[test]
    fn the_caller_of_a_denial_is_named_and_an_execution_role_spotted() {
        let (principal, hint) = denied_principal(
            "User: arn:aws:sts::1:assumed-role/ecsTaskExecutionRole/x is not authorized",
        );
        assert_eq!(
            principal,
            " for arn:aws:sts::1:assumed-role/ecsTaskExecutionRole/x"
        );
        assert!(hint.contains("execution role"));
        assert_eq!(denied_principal("Access Denied"), (String::new(), ""));
    }
}
