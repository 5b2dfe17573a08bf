//! What an AWS error answer says, read the same way for every service: its
//! status, code and message (from the SDK's metadata, or the XML body when it
//! found none), and who an access denial names as the caller.

use aws_smithy_runtime_api::client::result::ServiceError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// A service's error answer.
pub struct Answer {
    pub status: u16,
    /// Empty when the answer named none.
    pub code: String,
    pub message: String,
}

impl Answer {
    pub fn of<E: ProvideErrorMetadata>(ctx: &ServiceError<E, Response>) -> Answer {
        Answer {
            status: ctx.raw().status().as_u16(),
            code: ctx.err().code().unwrap_or_default().to_string(),
            message: ctx
                .err()
                .message()
                .map(str::to_string)
                .or_else(|| xml_message(ctx.raw().body().bytes()))
                .unwrap_or_default(),
        }
    }
}

/// The `<Message>` of an XML error body (what S3 and the query-protocol
/// APIs send, and what moto sends for a denial whatever the service).
fn xml_message(body: Option<&[u8]>) -> Option<String> {
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
