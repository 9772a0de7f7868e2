//! What the operator is told when a skill reports an error: its kind becomes an exit code, and
//! upstream failures get the provider's guidance for the status.
//!
//! Threat: the guest writes the error's texts, as long as its memory allows. Each is cut to
//! [`ERROR_TEXT_CAP`] bytes here, before it is escaped, quoted in a JSON error document or
//! written to stderr, each of which makes it larger again.

use skillhost_contract::error::{Failure, Reason};

use crate::capabilities::log::truncate;
use skillhost_contract::types::SkillError;
use skillhost_upstream::providers::microsoft::{Api, guidance};

/// The most of one text of a skill's error that is kept (a message, an upstream code).
pub const ERROR_TEXT_CAP: usize = 4096;

/// `text` cut to [`ERROR_TEXT_CAP`] bytes at a character boundary, saying how much was cut.
fn bounded(text: String) -> String {
    if text.len() <= ERROR_TEXT_CAP {
        return text;
    }
    let kept = truncate(&text, ERROR_TEXT_CAP);
    format!("{kept}… ({} more bytes cut)", text.len() - kept.len())
}

/// `error` with each of its texts bounded.
fn bounded_error(error: SkillError) -> SkillError {
    use SkillError as E;
    match error {
        E::InvalidInput(m) => E::InvalidInput(bounded(m)),
        E::NotFound(m) => E::NotFound(bounded(m)),
        E::Denied(m) => E::Denied(bounded(m)),
        E::Unauthorized(m) => E::Unauthorized(bounded(m)),
        E::Forbidden(m) => E::Forbidden(bounded(m)),
        E::Throttled(m) => E::Throttled(bounded(m)),
        E::Upstream(mut u) => {
            u.code = bounded(u.code);
            u.message = bounded(u.message);
            E::Upstream(u)
        }
        E::Timeout(m) => E::Timeout(bounded(m)),
        E::Conflict(m) => E::Conflict(bounded(m)),
        E::Internal(m) => E::Internal(bounded(m)),
    }
}

/// The failure for `error` reported by skill `skill`, bound to a connection of `api` if any.
pub fn skill_error_failure(skill: &str, error: SkillError, api: Option<Api>) -> Failure {
    use SkillError as E;
    match bounded_error(error) {
        E::InvalidInput(m) => Failure::usage(format!("skill `{skill}` refused its input: {m}")),
        E::NotFound(m) => Failure::skill(format!("not found: {m}")).with_reason(Reason::NotFound),
        E::Denied(m) => Failure::sandbox(format!("skill `{skill}` was denied a capability: {m}")),
        E::Unauthorized(m) => {
            Failure::skill(format!("unauthorized: {m}")).with_hint(guidance(401, api))
        }
        E::Forbidden(m) => Failure::skill(format!("forbidden: {m}")).with_hint(guidance(403, api)),
        E::Throttled(m) => Failure::skill(format!("throttled: {m}"))
            .with_hint(guidance(429, api))
            .with_reason(Reason::Throttled),
        E::Upstream(u) if u.code == "IncompleteResponse" => Failure::skill(format!(
            "upstream error {} {}: {}",
            u.status, u.code, u.message
        ))
        .with_hint(
            "the service answered, but its answers kept arriving incomplete (cut short, stalled \
             or broken mid-body), as when a proxy, a load balancer or the remote agent drops \
             connections; run again, and check the network path if it persists",
        ),
        E::Upstream(u) => {
            let code = if u.code.is_empty() {
                String::new()
            } else {
                format!(" {}", u.code)
            };
            Failure::skill(format!("upstream error {}{code}: {}", u.status, u.message))
                .with_hint(guidance(u.status, api))
        }
        E::Timeout(m) => Failure::skill(format!("timed out: {m}")).with_reason(Reason::Timeout),
        E::Conflict(m) => Failure::skill(format!("conflict: {m}"))
            .with_hint(
                "another run is doing the same work now; run again once it has ended (the lock \
                 of a run that was killed expires by itself: within a minute unless --lock-ttl \
                 says otherwise)",
            )
            .with_reason(Reason::Conflict),
        E::Internal(m) => {
            Failure::skill(format!("skill `{skill}` failed: {m}")).with_reason(Reason::Internal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skillhost_contract::types::UpstreamError;

    #[test]
    fn an_error_text_over_the_cap_is_cut_at_a_character_and_says_how_much_was_cut() {
        // 4,095 ASCII bytes, then a 2-byte character across the cap, then 10,000 more bytes.
        let text = format!("{}é{}", "a".repeat(ERROR_TEXT_CAP - 1), "b".repeat(10_000));
        let failure = skill_error_failure("s", SkillError::Internal(text), None);
        assert_eq!(
            failure.message,
            format!(
                "skill `s` failed: {}… (10002 more bytes cut)",
                "a".repeat(ERROR_TEXT_CAP - 1)
            )
        );
    }

    #[test]
    fn an_upstream_error_has_its_code_and_message_each_cut() {
        let error = SkillError::Upstream(UpstreamError {
            status: 500,
            code: "C".repeat(ERROR_TEXT_CAP + 1),
            message: "m".repeat(ERROR_TEXT_CAP + 7),
        });
        let failure = skill_error_failure("s", error, None);
        assert_eq!(
            failure.message,
            format!(
                "upstream error 500 {}… (1 more bytes cut): {}… (7 more bytes cut)",
                "C".repeat(ERROR_TEXT_CAP),
                "m".repeat(ERROR_TEXT_CAP)
            )
        );
    }

    #[test]
    fn an_error_text_within_the_cap_is_kept_whole() {
        let text = "x".repeat(ERROR_TEXT_CAP);
        let failure = skill_error_failure("s", SkillError::NotFound(text.clone()), None);
        assert_eq!(failure.message, format!("not found: {text}"));
    }
}
