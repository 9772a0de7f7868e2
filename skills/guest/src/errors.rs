//! HTTP answers and host errors as typed skill errors, so the operator gets the right guidance.
//!
//! The host turns each [`SkillError`] case into an exit code and a hint (401: the credentials,
//! 403: admin consent of the connection's permission, 404: not found, 429: throttled, 5xx: the
//! service). A skill that reports an answer or a host error through these functions gets that
//! guidance; a hand-written catch-all turns a missing secret into "the service could not be
//! reached".

use serde_json::Value;

use crate::{HttpError, SkillError, UpstreamError};

/// The most of an error answer's body quoted when it holds no OData error message.
const QUOTED_BODY: usize = 300;

/// The error for a request the host could not complete (`http.send` and friends returned `Err`).
pub fn fetch_error(error: HttpError) -> SkillError {
    match error {
        HttpError::Denied(why) => SkillError::Denied(why),
        HttpError::Unauthorized(why) => SkillError::Unauthorized(why),
        HttpError::Timeout => {
            SkillError::Timeout("the invocation's deadline passed while waiting for the API".into())
        }
        HttpError::TooLarge(cap) => SkillError::Upstream(UpstreamError {
            status: 200,
            code: "ResponseTooLarge".into(),
            message: format!(
                "the answer exceeded the host's cap of {cap} bytes; use a smaller page_size"
            ),
        }),
        // The host words a body that was cut short, stalled or broke after the service answered
        // as "the answer ...": the service was reached, so it is not reported as unreachable.
        HttpError::Transport(why) if why.starts_with("the answer ") => {
            SkillError::Upstream(UpstreamError {
                status: 200,
                code: "IncompleteResponse".into(),
                message: why,
            })
        }
        HttpError::Transport(why) => SkillError::Upstream(UpstreamError {
            status: 0,
            code: "Unreachable".into(),
            message: why,
        }),
    }
}

/// The error for an answer of `service` with a status other than 2xx, reading the OData error
/// body (`{"error": {"code", "message"}}`) when there is one.
pub fn status_error(service: &str, status: u16, body: &[u8]) -> SkillError {
    let (code, message) = odata_error(body);
    match status {
        401 => SkillError::Unauthorized(format!(
            "the {service} service rejected the token (401): {message}"
        )),
        403 => SkillError::Forbidden(format!(
            "the application lacks a permission the {service} service requires (403): {message}"
        )),
        404 => SkillError::NotFound(message),
        429 => SkillError::Throttled(format!(
            "the {service} service is still throttling after the host's retries: {message}"
        )),
        _ => SkillError::Upstream(UpstreamError {
            status,
            code,
            message,
        }),
    }
}

/// The code and message of an OData error body, or an empty code and the start of the body.
pub fn odata_error(body: &[u8]) -> (String, String) {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = parsed["error"]["code"].as_str().unwrap_or("").to_string();
    let message = match parsed["error"]["message"].as_str() {
        Some(message) => message.to_string(),
        None => String::from_utf8_lossy(&body[..body.len().min(QUOTED_BODY)]).into_owned(),
    };
    (code, message)
}

/// A 2xx body of `service` as JSON; a body that is not JSON is an upstream error.
pub fn parse_json_body(service: &str, status: u16, body: &[u8]) -> Result<Value, SkillError> {
    serde_json::from_slice(body).map_err(|e| {
        SkillError::Upstream(UpstreamError {
            status,
            code: "InvalidJson".into(),
            message: format!("the {service} service answered with a body that is not JSON: {e}"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_troubleshooting_table() {
        let body = br#"{"error":{"code":"ResourceNotFound","message":"Incident 5 was not found"}}"#;
        assert!(
            matches!(status_error("defender", 404, body), SkillError::NotFound(m) if m == "Incident 5 was not found")
        );
        assert!(
            matches!(status_error("graph", 403, b"{}"), SkillError::Forbidden(m) if m.starts_with("the application lacks a permission the graph service requires (403)"))
        );
        assert!(matches!(
            status_error("defender", 401, b"{}"),
            SkillError::Unauthorized(_)
        ));
        assert!(matches!(
            status_error("defender", 429, b"{}"),
            SkillError::Throttled(_)
        ));
        match status_error(
            "defender",
            503,
            br#"{"error":{"code":"ServiceUnavailable","message":"down"}}"#,
        ) {
            SkillError::Upstream(u) => assert_eq!(
                (u.status, u.code.as_str(), u.message.as_str()),
                (503, "ServiceUnavailable", "down")
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_secret_is_unauthorized_not_unreachable() {
        let why = "connection `sim`: the client secret variable ACME is not set".to_string();
        assert!(
            matches!(fetch_error(HttpError::Unauthorized(why.clone())), SkillError::Unauthorized(m) if m == why)
        );
    }

    #[test]
    fn a_damaged_answer_is_incomplete_and_a_lost_service_unreachable() {
        match fetch_error(HttpError::Transport(
            "the answer was cut short after 10 of 20 bytes".into(),
        )) {
            SkillError::Upstream(u) => {
                assert_eq!((u.status, u.code.as_str()), (200, "IncompleteResponse"))
            }
            other => panic!("{other:?}"),
        }
        match fetch_error(HttpError::Transport("connection refused".into())) {
            SkillError::Upstream(u) => assert_eq!((u.status, u.code.as_str()), (0, "Unreachable")),
            other => panic!("{other:?}"),
        }
    }
}
