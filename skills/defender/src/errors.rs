//! Maps API answers to typed skill errors, following the troubleshooting table: 401
//! credentials, 403 admin consent (naming the API's permission), 400 request format, 404 not
//! found, 429 throttled, 5xx service. Host errors map through the SDK's
//! [`skillhost_guest::errors::fetch_error`], re-exported here.

use skillhost_guest::errors::odata_error;
use skillhost_guest::{SkillError, UpstreamError};

/// The error for a request the host could not complete: the SDK's mapping, shared by every skill.
pub use skillhost_guest::errors::fetch_error;

use crate::params::Api;

/// The error for a non-200 answer of `api`.
pub fn api_error(api: Api, status: u16, body: &[u8]) -> SkillError {
    let (code, message) = odata_error(body);
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
