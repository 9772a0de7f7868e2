//! The `http.send` capability: a skill's request, resolved, authenticated, paced, retried, audited.
//!
//! Threat: the request comes from untrusted code and the answer from the network. The egress
//! policy runs before a token is fetched, so a denied request never carries one; guest headers
//! that could override authentication or routing are dropped; redirects are not followed (a
//! redirect would carry the bearer token to wherever it points); answers are size-capped; every
//! wait (pacing, `Retry-After`, backoff) stays inside the invocation's deadline. One tenant's
//! connection shares no token, client or pacer with another's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::audit::{AuditLog, AuditRecord};
use crate::auth::TokenCache;
use crate::bindings::{connection as wit_connection, http};
use crate::clouds::Api;
use crate::connections::Connection;
use crate::egress::{EgressPolicy, is_forbidden_header};
use crate::pacing::Pacer;

/// Retry behaviour for throttled and failed calls.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubles each retry, with up to 50% jitter.
    pub base_backoff: Duration,
    /// Longest single wait.
    pub max_backoff: Duration,
}

impl From<crate::connections::Retry> for RetryPolicy {
    fn from(retry: crate::connections::Retry) -> Self {
        RetryPolicy {
            max_retries: retry.max_retries,
            base_backoff: Duration::from_millis(retry.base_backoff_ms),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Process-wide state of outbound calls: the token cache, HTTP clients, pacers and audit log.
pub struct Connector {
    tokens: TokenCache,
    clients: Mutex<HashMap<String, reqwest::Client>>,
    pacers: Mutex<HashMap<(String, String), Arc<Pacer>>>,
    audit: Option<AuditLog>,
    max_body: u64,
}

impl Connector {
    /// A connector writing audit records to `audit` (if given), capping response bodies at
    /// 32 MiB.
    pub fn new(audit: Option<AuditLog>) -> Arc<Self> {
        Arc::new(Connector {
            tokens: TokenCache::default(),
            clients: Mutex::new(HashMap::new()),
            pacers: Mutex::new(HashMap::new()),
            audit,
            max_body: 32 << 20,
        })
    }

    /// The token cache (shared by every connection of the process).
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }

    /// Binds `connection` to one invocation ending at `deadline`.
    pub fn bind(
        self: &Arc<Self>,
        connection: Connection,
        deadline: Instant,
    ) -> Result<Arc<BoundConnection>, String> {
        let client = self.client(&connection)?;
        let pacer = self.pacer(&connection);
        let services = connection
            .services()
            .into_iter()
            .filter_map(|s| connection.service_base(&s).map(|base| (s, base)));
        let policy = EgressPolicy::new(services);
        Ok(Arc::new(BoundConnection {
            connector: self.clone(),
            connection,
            client,
            pacer,
            policy,
            deadline,
        }))
    }

    /// The HTTP client of `connection`, built on first use (TLS roots are loaded only then).
    pub fn client(&self, connection: &Connection) -> Result<reqwest::Client, String> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| "client table poisoned".to_string())?;
        if let Some(client) = clients.get(&connection.name) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tls_version_min(reqwest::tls::Version::TLS_1_2)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("skillhost/", env!("CARGO_PKG_VERSION")));
        builder = match &connection.remote_agent {
            Some(agent) => builder.proxy(reqwest::Proxy::all(agent).map_err(|e| {
                format!(
                    "connection `{}`: remote_agent {agent:?}: {e}",
                    connection.name
                )
            })?),
            // Never pick a proxy up from the environment: routing is the config's decision.
            None => builder.no_proxy(),
        };
        let client = builder.build().map_err(|e| {
            format!(
                "connection `{}`: cannot build an HTTP client: {}",
                connection.name,
                error_chain(&e)
            )
        })?;
        clients.insert(connection.name.clone(), client.clone());
        Ok(client)
    }

    fn pacer(&self, connection: &Connection) -> Arc<Pacer> {
        let key = (connection.tenant_id.clone(), connection.client_id.clone());
        match self.pacers.lock() {
            Ok(mut pacers) => pacers
                .entry(key)
                .or_insert_with(|| Arc::new(Pacer::new(connection.pacing)))
                .clone(),
            Err(_) => Arc::new(Pacer::new(connection.pacing)),
        }
    }
}

/// One connection, bound to one invocation and its deadline.
pub struct BoundConnection {
    connector: Arc<Connector>,
    connection: Connection,
    client: reqwest::Client,
    pacer: Arc<Pacer>,
    policy: EgressPolicy,
    deadline: Instant,
}

enum Attempt {
    Answer(http::Response),
    Transport(String),
    Timeout,
    TooLarge(u64),
}

impl BoundConnection {
    /// What `connection.info` tells the guest.
    pub fn info(&self) -> wit_connection::ConnectionInfo {
        wit_connection::ConnectionInfo {
            name: self.connection.name.clone(),
            tenant: self.connection.tenant.clone(),
            cloud: self.connection.cloud.name().to_string(),
            api: match self.connection.api {
                Api::Defender => wit_connection::ApiFlavour::Defender,
                Api::Graph => wit_connection::ApiFlavour::Graph,
            },
            services: self.connection.services(),
        }
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Performs one `http.send` for `skill`.
    pub async fn send(
        &self,
        skill: &str,
        request: http::Request,
    ) -> Result<http::Response, http::HttpError> {
        let started = Instant::now();
        let method = match request.method {
            http::Method::Get => "GET",
            http::Method::Post => "POST",
        };
        let url = match self
            .policy
            .resolve(&request.service, &request.path_and_query)
        {
            Ok(url) => url,
            Err(why) => {
                self.audit(
                    skill,
                    &request.service,
                    method,
                    &request.path_and_query,
                    "denied",
                    Some(&why),
                    None,
                    0,
                    started,
                    0,
                );
                return Err(http::HttpError::Denied(why));
            }
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let api = if request.service == "graph" {
            Api::Graph
        } else {
            Api::Defender
        };
        let scope = self.connection.cloud.scope(api);
        let headers: Vec<(String, String)> = request
            .headers
            .into_iter()
            .filter(|(name, _)| !is_forbidden_header(name))
            .collect();

        let retry = RetryPolicy::from(self.connection.retry);
        let mut retries = 0u32;
        let mut stale_token = None;
        let mut refreshed = false;
        loop {
            if self.pacer.acquire(self.deadline).await.is_err() {
                tracing::warn!(
                    "connection `{}`: the next call would wait past the deadline to stay within \
                     {} calls per minute and {} per hour; raise --timeout, or the connection's \
                     pacing if the service allows more",
                    self.connection.name,
                    self.connection.pacing.per_minute,
                    self.connection.pacing.per_hour
                );
                self.audit(
                    skill,
                    &request.service,
                    method,
                    &path,
                    "allowed",
                    Some("deadline reached while pacing"),
                    None,
                    0,
                    started,
                    retries,
                );
                return Err(http::HttpError::Timeout);
            }
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(http::HttpError::Timeout);
            }
            let token = match tokio::time::timeout(
                remaining,
                self.connector
                    .tokens
                    .token(&self.client, &self.connection, &scope, stale_token),
            )
            .await
            {
                Ok(Ok(token)) => token,
                Ok(Err(e)) => {
                    self.audit(
                        skill,
                        &request.service,
                        method,
                        &path,
                        "allowed",
                        Some("token request failed"),
                        None,
                        0,
                        started,
                        retries,
                    );
                    return Err(http::HttpError::Unauthorized(e.0));
                }
                Err(_) => return Err(http::HttpError::Timeout),
            };
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            let mut builder = self
                .client
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET),
                    url.clone(),
                )
                .timeout(remaining.max(Duration::from_millis(1)))
                .bearer_auth(token.bearer());
            for (name, value) in &headers {
                builder = builder.header(name, value);
            }
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            let attempt = self.attempt(builder).await;
            let wait = match &attempt {
                Attempt::Answer(r) if r.status == 401 && !refreshed => {
                    // The token may have been revoked or expired early: one fresh token, once.
                    refreshed = true;
                    stale_token = Some(token.serial);
                    retries += 1;
                    continue;
                }
                Attempt::Answer(r) if r.status == 429 && retries < retry.max_retries => {
                    Some(retry_after(&r.headers).unwrap_or_else(|| backoff(retry, retries)))
                }
                Attempt::Answer(r) if r.status >= 500 && retries < retry.max_retries => {
                    Some(backoff(retry, retries))
                }
                Attempt::Transport(_) if retries < retry.max_retries => {
                    Some(backoff(retry, retries))
                }
                _ => None,
            };
            if let Some(wait) = wait
                && Instant::now() + wait < self.deadline
            {
                tracing::debug!(skill, path = %path, wait_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait).await;
                retries += 1;
                continue;
            }
            return match attempt {
                Attempt::Answer(response) => {
                    self.audit(
                        skill,
                        &request.service,
                        method,
                        &path,
                        "allowed",
                        None,
                        Some(response.status),
                        response.body.len() as u64,
                        started,
                        retries,
                    );
                    Ok(response)
                }
                Attempt::Transport(why) => {
                    self.audit(
                        skill,
                        &request.service,
                        method,
                        &path,
                        "allowed",
                        Some(&why),
                        None,
                        0,
                        started,
                        retries,
                    );
                    Err(http::HttpError::Transport(why))
                }
                Attempt::Timeout => {
                    self.audit(
                        skill,
                        &request.service,
                        method,
                        &path,
                        "allowed",
                        Some("timeout"),
                        None,
                        0,
                        started,
                        retries,
                    );
                    Err(http::HttpError::Timeout)
                }
                Attempt::TooLarge(cap) => {
                    self.audit(
                        skill,
                        &request.service,
                        method,
                        &path,
                        "allowed",
                        Some("response too large"),
                        None,
                        cap,
                        started,
                        retries,
                    );
                    Err(http::HttpError::TooLarge(cap))
                }
            };
        }
    }

    async fn attempt(&self, builder: reqwest::RequestBuilder) -> Attempt {
        let cap = self.connector.max_body;
        let mut response = match builder.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Attempt::Timeout,
            Err(e) => return Attempt::Transport(error_chain(&e)),
        };
        if response.content_length().is_some_and(|n| n > cap) {
            return Attempt::TooLarge(cap);
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > cap {
                        return Attempt::TooLarge(cap);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Attempt::Timeout,
                Err(e) => return Attempt::Transport(error_chain(&e)),
            }
        }
        Attempt::Answer(http::Response {
            status,
            headers,
            body,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn audit(
        &self,
        skill: &str,
        service: &str,
        method: &str,
        path: &str,
        decision: &str,
        reason: Option<&str>,
        status: Option<u16>,
        bytes: u64,
        started: Instant,
        retries: u32,
    ) {
        if let Some(log) = &self.connector.audit {
            log.write(&AuditRecord {
                time: jiff::Timestamp::now().to_string(),
                skill,
                tenant: &self.connection.tenant,
                connection: &self.connection.name,
                service,
                method,
                path,
                decision,
                reason,
                status,
                bytes,
                latency_ms: started.elapsed().as_millis() as u64,
                retries,
            });
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
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

fn backoff(policy: RetryPolicy, retries: u32) -> Duration {
    let exp = policy.base_backoff.saturating_mul(1u32 << retries.min(16));
    let capped = exp.min(policy.max_backoff);
    // Up to 50% jitter so that many invocations retrying at once spread out.
    capped.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// An error and its causes on one line (reqwest hides TLS and connection causes in `source()`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
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
        };
        let first = backoff(p, 0);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let third = backoff(p, 2);
        assert!(third >= Duration::from_millis(150) && third <= Duration::from_millis(300));
    }
}
