//! Entra ID client-credentials tokens, cached per (tenant, connection and its definition, scope).
//!
//! Threat: the client secret and the bearer tokens are the tenant's keys. They live only here and
//! in the one request header that carries them: never in a guest, an error, a log line or an
//! audit record (Entra's own error text is relayed, our request body never is). Tokens are
//! cached per connection and scope, so one tenant's token is never attached to another's call,
//! and a single refresh at a time per key means a burst of invocations makes one token request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::client::error_chain;
use crate::connections::Connection;
use crate::providers::microsoft::explain_entra_error;

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub struct AccessToken {
    value: String,
    refresh_at: Instant,
    /// Distinguishes tokens, so a 401 invalidates only the token that got it.
    pub serial: u64,
}

impl AccessToken {
    /// The value for the `Authorization: Bearer` header.
    pub fn bearer(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessToken(#{}, <redacted>)", self.serial)
    }
}

/// Why no token could be obtained; the message says what to fix and holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    /// What went wrong and what to do.
    pub message: String,
    /// Entra ID could not be reached at all (a network problem, not a credential problem).
    pub unreachable: bool,
}

impl AuthError {
    fn rejected(message: String) -> Self {
        AuthError {
            message,
            unreachable: false,
        }
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<AccessToken>>>;

/// The longest a token is cached, whatever lifetime its answer claims.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Cached tokens of every connection of a process.
#[derive(Default)]
pub struct TokenCache {
    /// By tenant, connection name, the definition's [`Connection::fingerprint`], and scope.
    slots: Mutex<HashMap<(String, String, u64, String), Slot>>,
    serial: AtomicU64,
    requests: AtomicU64,
}

impl TokenCache {
    /// How many token requests this cache has sent (for diagnostics and tests).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Drops the cached tokens of connection `name`.
    pub fn forget(&self, name: &str) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.retain(|(_, connection, _, _), _| connection != name);
        }
    }

    /// A valid token for `connection` and `scope`. `stale` names a token the API just refused
    /// (401): if it is still the cached one, a new one is fetched.
    pub async fn token(
        &self,
        client: &reqwest::Client,
        connection: &Connection,
        scope: &str,
        stale: Option<u64>,
    ) -> Result<AccessToken, AuthError> {
        let key = (
            connection.tenant.clone(),
            connection.name.clone(),
            connection.fingerprint(),
            scope.to_string(),
        );
        let slot = match self.slots.lock() {
            Ok(mut slots) => slots.entry(key).or_default().clone(),
            Err(_) => return Err(AuthError::rejected("token cache poisoned".into())),
        };
        // Holding the slot's lock across the request is what makes concurrent callers wait for
        // one refresh instead of each sending their own.
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
            && Some(token.serial) != stale
        {
            return Ok(token.clone());
        }
        let token = self.request(client, connection, scope).await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    async fn request(
        &self,
        client: &reqwest::Client,
        connection: &Connection,
        scope: &str,
    ) -> Result<AccessToken, AuthError> {
        let secret = connection
            .client_secret
            .read(&connection.name)
            .map_err(|f| {
                AuthError::rejected(match f.hint {
                    Some(hint) => format!("{}; {hint}", f.message),
                    None => f.message,
                })
            })?;
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            connection.login_base().trim_end_matches('/'),
            connection.tenant_id
        );
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &connection.client_id)
            .append_pair("client_secret", secret.expose())
            .append_pair("scope", scope)
            .append_pair("grant_type", "client_credentials")
            .finish();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let sent_at = Instant::now();
        let response = client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| AuthError {
                message: format!(
                    "connection `{}`: cannot reach Entra ID at {}: {}",
                    connection.name,
                    connection.login_base(),
                    error_chain(&e)
                ),
                unreachable: true,
            })?;
        let status = response.status().as_u16();
        let text = read_capped(response).await.map_err(|why| AuthError {
            message: format!(
                "the answer of Entra ID at {} for connection `{}` {why}",
                connection.login_base(),
                connection.name,
            ),
            unreachable: true,
        })?;
        if status != 200 {
            return Err(AuthError::rejected(explain_entra_error(
                &connection.token_request_context(),
                scope,
                status,
                &text,
            )));
        }
        let parsed: TokenResponse = serde_json::from_str(&text).map_err(|_| {
            AuthError::rejected(format!(
                "connection `{}`: Entra ID answered 200 without a usable token",
                connection.name
            ))
        })?;
        let lifetime = parsed.expires_in.lifetime().ok_or_else(|| {
            AuthError::rejected(format!(
                "connection `{}`: Entra ID answered 200 with a token whose expires_in is not a \
                 positive number of seconds; check that the connection's login endpoint is Entra \
                 ID (or a relay that passes its answer through unchanged)",
                connection.name
            ))
        })?;
        // Refresh a few minutes early (a quarter of the lifetime for short-lived tokens) so a
        // token never expires in flight.
        let margin = Duration::from_secs(300).min(lifetime / 4);
        Ok(AccessToken {
            value: parsed.access_token,
            // At most a day: a lifetime the service made up cannot overflow the clock.
            refresh_at: sent_at
                .checked_add(lifetime.min(MAX_TOKEN_LIFETIME).saturating_sub(margin))
                .unwrap_or(sent_at),
            serial: self.serial.fetch_add(1, Ordering::Relaxed) + 1,
        })
    }
}

/// The most of a token endpoint's answer that is read: a token answer is a few KiB.
const TOKEN_ANSWER_CAP: usize = 256 << 10;

/// The answer's body as text, at most [`TOKEN_ANSWER_CAP`] bytes; the error says what went wrong.
async fn read_capped(mut response: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > TOKEN_ANSWER_CAP {
                    return Err(format!(
                        "was larger than {TOKEN_ANSWER_CAP} bytes, more than any token answer"
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(String::from_utf8_lossy(&body).into_owned()),
            Err(e) => return Err(format!("was cut short: {}", error_chain(&e))),
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Seconds,
}

/// v2 answers `expires_in` as a number, v1 as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    /// The lifetime, if it is a positive whole number of seconds (as Entra ID sends it).
    fn lifetime(&self) -> Option<Duration> {
        let seconds = match self {
            Seconds::Number(n) => *n,
            Seconds::Text(t) => t.trim().parse().ok()?,
        };
        (seconds > 0).then(|| Duration::from_secs(seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifetime(body: &str) -> Option<Duration> {
        serde_json::from_str::<TokenResponse>(body)
            .ok()
            .and_then(|t| t.expires_in.lifetime())
    }

    #[test]
    fn expires_in_is_read_as_a_number_or_a_string_and_nothing_else() {
        assert_eq!(
            lifetime(r#"{"access_token":"t","expires_in":3599}"#),
            Some(Duration::from_secs(3599))
        );
        assert_eq!(
            lifetime(r#"{"access_token":"t","expires_in":"3599"}"#),
            Some(Duration::from_secs(3599))
        );
        for bad in [
            r#"{"access_token":"t"}"#,
            r#"{"access_token":"t","expires_in":0}"#,
            r#"{"access_token":"t","expires_in":"soon"}"#,
        ] {
            assert_eq!(lifetime(bad), None, "{bad}");
        }
    }
}
