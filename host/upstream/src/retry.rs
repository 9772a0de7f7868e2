//! When a failed or throttled call is tried again, and after how long.
//!
//! 429 honours `Retry-After` (seconds or an HTTP date, at most an hour); 5xx and transport
//! errors back off exponentially with jitter, so that many invocations retrying at once spread
//! out. The caller never waits past its deadline.

use std::time::Duration;

use crate::connections::Retry;

/// Retry behaviour for throttled and failed calls.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubles each retry, with up to 50% jitter.
    pub base_backoff: Duration,
    /// Longest single wait.
    pub max_backoff: Duration,
    /// How long a body may go without a byte before it counts as stalled.
    pub read_idle: Duration,
}

impl From<Retry> for RetryPolicy {
    fn from(retry: Retry) -> Self {
        RetryPolicy {
            max_retries: retry.max_retries,
            base_backoff: Duration::from_millis(retry.base_backoff_ms),
            max_backoff: Duration::from_secs(30),
            read_idle: Duration::from_millis(retry.read_idle_timeout_ms),
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    let value = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))?
        .1
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// The wait before retry number `retries + 1`.
pub fn backoff(policy: RetryPolicy, retries: u32) -> Duration {
    let exp = policy.base_backoff.saturating_mul(1u32 << retries.min(16));
    let capped = exp.min(policy.max_backoff);
    capped.mul_f64(0.5 + fastrand::f64() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_ignores_garbage() {
        let h = |v: &str| vec![("retry-after".to_string(), v.to_string())];
        assert_eq!(retry_after(&h("3")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&h("0.5")), Some(Duration::from_millis(500)));
        assert_eq!(retry_after(&h("soon")), None);
        assert_eq!(retry_after(&[]), None);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 4,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            read_idle: Duration::from_secs(1),
        };
        let first = backoff(p, 0);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let third = backoff(p, 2);
        assert!(third >= Duration::from_millis(150) && third <= Duration::from_millis(300));
    }
}
