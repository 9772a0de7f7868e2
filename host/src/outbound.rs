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
}

impl Connector {
    /// A connector writing audit records to `audit` (if given).
    pub fn new(audit: Option<AuditLog>) -> Arc<Self> {
        Arc::new(Connector {
            tokens: TokenCache::default(),
            clients: Mutex::new(HashMap::new()),
            pacers: Mutex::new(HashMap::new()),
            audit,
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
            requests: std::sync::atomic::AtomicU64::new(0),
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
        let uses_tls = std::iter::once(connection.login_base())
            .chain(
                connection
                    .services()
                    .iter()
                    .filter_map(|s| connection.service_base(s)),
            )
            .any(|base| base.starts_with("https://"));
        if !uses_tls {
            // Every endpoint is plain http (a simulator, a relay on loopback): the client never
            // verifies a certificate, so it need not read the system's trust store, which is
            // most of a CLI run's system time (measured: ~300 files read per run).
            builder = builder.tls_certs_only(Vec::<reqwest::Certificate>::new());
        }
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
    requests: std::sync::atomic::AtomicU64,
}

/// One call's facts for its audit record.
struct CallRecord {
    skill: String,
    service: String,
    method: &'static str,
    path: String,
    started: Instant,
    retries: u32,
}

enum Attempt {
    Answer(reqwest::Response),
    Transport(String),
    Timeout,
}

/// The answer retries settled on, its body not yet read.
struct Answer {
    response: reqwest::Response,
    record: CallRecord,
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

    /// API requests sent so far through this binding, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Performs one `http.send` for `skill`: the whole body is read (up to the cap).
    pub async fn send(
        self: &Arc<Self>,
        skill: &str,
        request: http::Request,
    ) -> Result<http::Response, http::HttpError> {
        let (status, headers, mut incoming) = self.send_streaming(skill, request).await?;
        let mut body = Vec::new();
        loop {
            let piece = incoming.read(u32::MAX).await?;
            if piece.is_empty() {
                break;
            }
            body.extend_from_slice(&piece);
        }
        Ok(http::Response {
            status,
            headers,
            body,
        })
    }

    /// Performs one `http.send-streaming` for `skill`: the answer's head now, its body as the
    /// guest reads it.
    pub async fn send_streaming(
        self: &Arc<Self>,
        skill: &str,
        request: http::Request,
    ) -> Result<(u16, Vec<(String, String)>, IncomingBody), http::HttpError> {
        let Answer { response, record } = self.exchange(skill, request).await?;
        let status = response.status().as_u16();
        let headers = header_list(&response);
        let body = IncomingBody {
            connection: self.clone(),
            response,
            pending: bytes::Bytes::new(),
            received: 0,
            status,
            record: Some(record),
            failed: None,
        };
        Ok((status, headers, body))
    }

    /// Policy, pacing, token, request, and retries, up to the head of the answer to hand over.
    async fn exchange(
        &self,
        skill: &str,
        request: http::Request,
    ) -> Result<Answer, http::HttpError> {
        let method = match request.method {
            http::Method::Get => "GET",
            http::Method::Post => "POST",
        };
        let mut record = CallRecord {
            skill: skill.to_string(),
            service: request.service.clone(),
            method,
            path: request.path_and_query.clone(),
            started: Instant::now(),
            retries: 0,
        };
        let url = match self
            .policy
            .resolve(&request.service, &request.path_and_query)
        {
            Ok(url) => url,
            Err(why) => {
                self.audit(&record, "denied", Some(&why), None, 0);
                return Err(http::HttpError::Denied(why));
            }
        };
        record.path = match url.query() {
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
                    &record,
                    "allowed",
                    Some("deadline reached while pacing"),
                    None,
                    0,
                );
                return Err(http::HttpError::Timeout);
            }
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                self.audit(&record, "allowed", Some("timeout"), None, 0);
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
                    self.audit(&record, "allowed", Some("token request failed"), None, 0);
                    return Err(if e.unreachable {
                        http::HttpError::Transport(e.message)
                    } else {
                        http::HttpError::Unauthorized(e.message)
                    });
                }
                Err(_) => {
                    self.audit(&record, "allowed", Some("timeout"), None, 0);
                    return Err(http::HttpError::Timeout);
                }
            };
            let method =
                reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
            let mut builder = self
                .client
                .request(method, url.clone())
                .bearer_auth(token.bearer());
            for (name, value) in &headers {
                builder = builder.header(name, value);
            }
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let attempt = match tokio::time::timeout(remaining, builder.send()).await {
                Err(_) => Attempt::Timeout,
                Ok(Ok(response)) => Attempt::Answer(response),
                Ok(Err(e)) if e.is_timeout() => Attempt::Timeout,
                Ok(Err(e)) => Attempt::Transport(error_chain(&e)),
            };
            let wait = match &attempt {
                Attempt::Answer(r) if r.status() == 401 && !refreshed => {
                    // The token may have been revoked or expired early: one fresh token, once.
                    refreshed = true;
                    stale_token = Some(token.serial);
                    record.retries += 1;
                    continue;
                }
                Attempt::Answer(r) if r.status() == 429 && record.retries < retry.max_retries => {
                    Some(
                        retry_after(&header_list(r))
                            .unwrap_or_else(|| backoff(retry, record.retries)),
                    )
                }
                Attempt::Answer(r)
                    if r.status().is_server_error() && record.retries < retry.max_retries =>
                {
                    Some(backoff(retry, record.retries))
                }
                Attempt::Transport(_) if record.retries < retry.max_retries => {
                    Some(backoff(retry, record.retries))
                }
                _ => None,
            };
            if let Some(wait) = wait
                && Instant::now() + wait < self.deadline
            {
                tracing::debug!(skill, path = %record.path, wait_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait).await;
                record.retries += 1;
                continue;
            }
            return match attempt {
                Attempt::Answer(response) => {
                    // An announced length over the cap is refused before any of it is read.
                    let cap = self.connection.max_response_bytes;
                    if response.content_length().is_some_and(|n| n > cap) {
                        let status = Some(response.status().as_u16());
                        self.audit(&record, "allowed", Some("response too large"), status, 0);
                        return Err(http::HttpError::TooLarge(cap));
                    }
                    Ok(Answer { response, record })
                }
                Attempt::Transport(why) => {
                    self.audit(&record, "allowed", Some(&why), None, 0);
                    Err(http::HttpError::Transport(why))
                }
                Attempt::Timeout => {
                    self.audit(&record, "allowed", Some("timeout"), None, 0);
                    Err(http::HttpError::Timeout)
                }
            };
        }
    }

    fn audit(
        &self,
        record: &CallRecord,
        decision: &str,
        reason: Option<&str>,
        status: Option<u16>,
        bytes: u64,
    ) {
        if let Some(log) = &self.connector.audit {
            log.write(&AuditRecord {
                time: jiff::Timestamp::now().to_string(),
                skill: &record.skill,
                tenant: &self.connection.tenant,
                connection: &self.connection.name,
                service: &record.service,
                method: record.method,
                path: &record.path,
                decision,
                reason,
                status,
                bytes,
                latency_ms: record.started.elapsed().as_millis() as u64,
                retries: record.retries,
            });
        }
    }
}

/// The body of a streamed answer, read as the guest asks; its audit record is written when it
/// ends (read to the end, failed, or dropped).
pub struct IncomingBody {
    connection: Arc<BoundConnection>,
    response: reqwest::Response,
    pending: bytes::Bytes,
    received: u64,
    status: u16,
    record: Option<CallRecord>,
    failed: Option<http::HttpError>,
}

impl IncomingBody {
    /// Up to `max` more bytes; empty when the body is complete. After an error, every later
    /// read returns the same error, so a cut-short body is never mistaken for a complete one.
    pub async fn read(&mut self, max: u32) -> Result<Vec<u8>, http::HttpError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.record.is_none() {
            return Ok(Vec::new());
        }
        if self.pending.is_empty() {
            match read_chunk(&mut self.response, self.connection.deadline).await {
                Ok(Some(chunk)) => self.pending = chunk,
                Ok(None) => {
                    self.finish(None);
                    return Ok(Vec::new());
                }
                Err(error) => return Err(self.fail("body not received", error)),
            }
        }
        let n = self.pending.len().min(max.max(1) as usize);
        let cap = self.connection.connection.max_response_bytes;
        if self.received + n as u64 > cap {
            return Err(self.fail("response too large", http::HttpError::TooLarge(cap)));
        }
        self.received += n as u64;
        Ok(self.pending.split_to(n).to_vec())
    }

    fn fail(&mut self, reason: &str, error: http::HttpError) -> http::HttpError {
        self.finish(Some(reason));
        self.failed = Some(error.clone());
        error
    }

    /// Writes the audit record (once), with the bytes handed out so far.
    fn finish(&mut self, reason: Option<&str>) {
        if let Some(record) = self.record.take() {
            self.connection
                .audit(&record, "allowed", reason, Some(self.status), self.received);
        }
    }
}

impl Drop for IncomingBody {
    fn drop(&mut self) {
        self.finish(Some("body not read to the end"));
    }
}

/// The next chunk of `response`, bounded by `deadline`.
async fn read_chunk(
    response: &mut reqwest::Response,
    deadline: Instant,
) -> Result<Option<bytes::Bytes>, http::HttpError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(remaining, response.chunk()).await {
        Err(_) => Err(http::HttpError::Timeout),
        Ok(Ok(chunk)) => Ok(chunk),
        Ok(Err(e)) if e.is_timeout() => Err(http::HttpError::Timeout),
        Ok(Err(e)) => Err(http::HttpError::Transport(error_chain(&e))),
    }
}

fn header_list(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
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
