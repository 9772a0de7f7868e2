//! Entra ID client-credentials tokens, cached per (tenant, connection, scope).
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

use crate::connections::Connection;

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

/// Cached tokens of every connection of a process.
#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<(String, String, String), Slot>>,
    serial: AtomicU64,
    requests: AtomicU64,
}

impl TokenCache {
    /// How many token requests this cache has sent (for diagnostics and tests).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
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
                    crate::outbound::error_chain(&e)
                ),
                unreachable: true,
            })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != 200 {
            return Err(AuthError::rejected(explain_entra_error(
                connection, scope, status, &text,
            )));
        }
        let parsed: TokenResponse = serde_json::from_str(&text).map_err(|_| {
            AuthError::rejected(format!(
                "connection `{}`: Entra ID answered 200 without a usable token",
                connection.name
            ))
        })?;
        let lifetime = Duration::from_secs(parsed.expires_in.seconds());
        // Refresh a few minutes early (a quarter of the lifetime for short-lived tokens) so a
        // token never expires in flight.
        let margin = Duration::from_secs(300).min(lifetime / 4);
        Ok(AccessToken {
            value: parsed.access_token,
            refresh_at: sent_at + lifetime.saturating_sub(margin),
            serial: self.serial.fetch_add(1, Ordering::Relaxed) + 1,
        })
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
    fn seconds(&self) -> u64 {
        match self {
            Seconds::Number(n) => *n,
            Seconds::Text(t) => t.trim().parse().unwrap_or(0),
        }
    }
}

#[derive(Deserialize, Default)]
struct EntraError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// Turns an Entra ID error answer into what the operator should do.
pub fn explain_entra_error(
    connection: &Connection,
    scope: &str,
    status: u16,
    body: &str,
) -> String {
    let parsed: EntraError = serde_json::from_str(body).unwrap_or_default();
    let name = &connection.name;
    let secret_place = match &connection.client_secret {
        crate::connections::SecretSource::Env(var) => format!("the environment variable {var}"),
        crate::connections::SecretSource::File(path) => format!("the file {}", path.display()),
    };
    let has = |code: u64| {
        parsed.error_codes.contains(&code)
            || parsed.error_description.contains(&format!("AADSTS{code}:"))
    };
    if has(7000215) || has(7000222) {
        return format!(
            "connection `{name}`: Entra ID rejected the client secret (AADSTS7000215: wrong or \
             expired). Create a new client secret for application {} in Entra ID > App \
             registrations > Certificates & secrets, then put its value in {secret_place}",
            connection.client_id
        );
    }
    if has(700016) {
        return format!(
            "connection `{name}`: application {} was not found in tenant {} (AADSTS700016). Check \
             client_id, and that the app is registered in, or consented to by, that tenant",
            connection.client_id, connection.tenant_id
        );
    }
    if has(90002) {
        return format!(
            "connection `{name}`: tenant {} was not found (AADSTS90002). Check tenant_id (Entra ID \
             > Overview > Tenant ID) and the connection's cloud ({})",
            connection.tenant_id,
            connection.cloud.name()
        );
    }
    if parsed.error == "invalid_scope" || has(70011) || has(500011) {
        return format!(
            "connection `{name}`: Entra ID rejected the scope {scope} (invalid_scope). Check the \
             connection's cloud ({}) and api ({})",
            connection.cloud.name(),
            connection.api.service()
        );
    }
    let detail = parsed.error_description.lines().next().unwrap_or("").trim();
    if parsed.error.is_empty() {
        format!("connection `{name}`: Entra ID answered HTTP {status} to the token request")
    } else {
        format!(
            "connection `{name}`: Entra ID refused the token request: {}: {detail}",
            parsed.error
        )
    }
}
