//! What the operator is told when a skill reports an error: its kind becomes an exit code, and
//! upstream failures get the provider's guidance for the status.

use skillhost_contract::error::{Failure, Reason};
use skillhost_contract::types::SkillError;
use skillhost_upstream::providers::microsoft::{Api, guidance};

/// The failure for `error` reported by skill `skill`, bound to a connection of `api` if any.
pub fn skill_error_failure(skill: &str, error: SkillError, api: Option<Api>) -> Failure {
    use SkillError as E;
    match error {
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
