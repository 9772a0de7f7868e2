//! Maps API answers and host errors to typed skill errors, following the troubleshooting table:
//! 401 credentials, 403 admin consent, 400 request format, 404 not found, 429 throttled, 5xx
//! service.

use serde_json::Value;
use skillhost_guest::{HttpError, SkillError, UpstreamError};

use crate::params::Api;

/// The error for a non-200 answer of `api`.
pub fn api_error(api: Api, status: u16, body: &[u8]) -> SkillError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = parsed["error"]["code"].as_str().unwrap_or("").to_string();
    let message = parsed["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    match status {
        401 => SkillError::Unauthorized(format!(
            "the {} API rejected the token (401): {message}",
            api.service()
        )),
        403 => SkillError::Forbidden(format!(
            "the application lacks the {} permission (403): {message}",
            api.permission()
        )),
        404 => SkillError::NotFound(message),
        429 => SkillError::Throttled(format!(
            "the {} API is still throttling after retries: {message}",
            api.service()
        )),
        _ => SkillError::Upstream(UpstreamError {
            status,
            code,
            message,
        }),
    }
}

/// The error for a request the host could not complete.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_troubleshooting_table() {
        let body = br#"{"error":{"code":"ResourceNotFound","message":"Incident 5 was not found"}}"#;
        assert!(
            matches!(api_error(Api::Defender, 404, body), SkillError::NotFound(m) if m == "Incident 5 was not found")
        );
        assert!(
            matches!(api_error(Api::Graph, 403, b"{}"), SkillError::Forbidden(m) if m.contains("SecurityIncident.Read.All"))
        );
        assert!(matches!(
            api_error(Api::Defender, 401, b"{}"),
            SkillError::Unauthorized(_)
        ));
        assert!(matches!(
            api_error(Api::Defender, 429, b"{}"),
            SkillError::Throttled(_)
        ));
        match api_error(
            Api::Defender,
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
}
