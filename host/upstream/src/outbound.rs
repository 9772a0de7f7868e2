//! One skill request, from the guest's words to the answer's head: resolved, paced,
//! authenticated, sent, retried and audited.
//!
//! Threat: the request comes from untrusted code and the answer from the network. The egress
//! policy runs before a token is fetched, so a denied request never carries one; guest headers
//! that could override authentication or routing are dropped; redirects are not followed (see
//! [`crate::client`]); answers are size-capped; every wait (pacing, `Retry-After`, backoff) stays
//! inside the invocation's deadline. One tenant's connection shares no token, client or pacer
//! with another's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use reqwest::Url;
use skillhost_contract::types::{ConnectionInfo, HttpError, HttpRequest, HttpResponse, Method};

use crate::audit::{AuditLog, AuditTrail, CallRecord};
use crate::auth::{AccessToken, TokenCache};
use crate::body::IncomingBody;
use crate::client::error_chain;
use crate::connections::Connection;
use crate::egress::{EgressPolicy, is_forbidden_header};
use crate::pacing::Pacer;
use crate::providers::microsoft::Api;
use crate::retry::{RetryPolicy, backoff, retry_after};

/// Process-wide state of outbound calls: the token cache, HTTP clients, pacers and audit log.
pub struct Connector {
    tokens: TokenCache,
    clients: Mutex<HashMap<String, reqwest::Client>>,
    pacers: Mutex<HashMap<(String, String), Arc<Pacer>>>,
    audit: Option<Arc<AuditLog>>,
}

impl Connector {
    /// A connector writing audit records to `audit` (if given).
    pub fn new(audit: Option<AuditLog>) -> Arc<Self> {
        Arc::new(Connector {
            tokens: TokenCache::default(),
            clients: Mutex::new(HashMap::new()),
            pacers: Mutex::new(HashMap::new()),
            audit: audit.map(Arc::new),
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
        let audit = AuditTrail::new(self.audit.clone(), &connection.tenant, &connection.name);
        Ok(Arc::new(BoundConnection {
            connector: self.clone(),
            connection,
            client,
            pacer,
            policy,
            audit,
            deadline,
            requests: AtomicU64::new(0),
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
        let client = crate::client::build(connection)?;
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
    audit: AuditTrail,
    deadline: Instant,
    requests: AtomicU64,
}

/// The head of an answer, its body still to be read.
pub struct StreamedAnswer {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: IncomingBody,
}

/// What one attempt at a call came to.
enum Attempt {
    Answer(reqwest::Response),
    Transport(String),
    Timeout,
}

/// What to do after an attempt.
enum Step {
    /// The token was refused: get a fresh one and try again at once.
    RefreshToken,
    /// Try again after this wait.
    Wait(std::time::Duration),
    /// This attempt is the outcome.
    Settle,
}

/// A request the policy allowed, ready to send as many times as retries need.
struct Call {
    method: reqwest::Method,
    url: Url,
    scope: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl BoundConnection {
    /// What `connection.info` tells the guest.
    pub fn info(&self) -> ConnectionInfo {
        ConnectionInfo {
            name: self.connection.name.clone(),
            tenant: self.connection.tenant.clone(),
            cloud: self.connection.cloud.name().to_string(),
            api: self.connection.api.flavour(),
            services: self.connection.services(),
        }
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// API requests sent so far through this binding, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Performs one `http.send` for `skill`: the whole body is read (up to the cap). A body cut
    /// short or stalled is fetched again, within the retry budget and the deadline: nothing of it
    /// reached the guest yet.
    pub async fn send(&self, skill: &str, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let retry = RetryPolicy::from(self.connection.retry);
        let mut refetched = 0;
        loop {
            let StreamedAnswer {
                status,
                headers,
                body: mut incoming,
            } = self.send_streaming(skill, request.clone()).await?;
            let why = match read_all(&mut incoming).await {
                Ok(body) => {
                    return Ok(HttpResponse {
                        status,
                        headers,
                        body,
                    });
                }
                Err(HttpError::Transport(why)) => why,
                Err(other) => return Err(other),
            };
            let wait = backoff(retry, refetched);
            if refetched >= retry.max_retries || Instant::now() + wait >= self.deadline {
                return Err(HttpError::Transport(format!(
                    "{why}; fetched {} times",
                    refetched + 1
                )));
            }
            tracing::debug!(
                skill,
                wait_ms = wait.as_millis() as u64,
                "{why}; fetching again"
            );
            tokio::time::sleep(wait).await;
            refetched += 1;
        }
    }

    /// Performs one `http.send-streaming` for `skill`: the answer's head now, its body as the
    /// guest reads it.
    pub async fn send_streaming(
        &self,
        skill: &str,
        request: HttpRequest,
    ) -> Result<StreamedAnswer, HttpError> {
        let (response, record) = self.exchange(skill, request).await?;
        let status = response.status().as_u16();
        let headers = header_list(&response);
        let body = IncomingBody::new(
            response,
            self.connection.max_response_bytes,
            self.deadline,
            RetryPolicy::from(self.connection.retry).read_idle,
            self.audit.clone(),
            record,
        );
        Ok(StreamedAnswer {
            status,
            headers,
            body,
        })
    }

    /// Policy, then pacing, token, request and retries, up to the head of the answer to hand over.
    async fn exchange(
        &self,
        skill: &str,
        request: HttpRequest,
    ) -> Result<(reqwest::Response, CallRecord), HttpError> {
        let mut record = CallRecord {
            skill: skill.to_string(),
            service: request.service.clone(),
            method: request.method.as_str(),
            path: request.path_and_query.clone(),
            started: Instant::now(),
            retries: 0,
        };
        let call = self.admit(request, &mut record)?;
        let retry = RetryPolicy::from(self.connection.retry);
        let mut stale_token = None;
        let mut refreshed = false;
        loop {
            self.pace(&record).await?;
            let token = self.token(&call.scope, stale_token, &record).await?;
            let attempt = self.attempt(&call, &token).await;
            match next_step(&attempt, retry, record.retries, &mut refreshed) {
                Step::RefreshToken => {
                    // The token may have been revoked or expired early: one fresh token, once.
                    stale_token = Some(token.serial);
                    record.retries += 1;
                }
                Step::Wait(wait) if Instant::now() + wait < self.deadline => {
                    tracing::debug!(skill, path = %record.path, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                    record.retries += 1;
                }
                Step::Wait(_) | Step::Settle => return self.settle(attempt, record),
            }
        }
    }

    /// Resolves the request through the egress policy; a denial is audited and returned.
    fn admit(&self, request: HttpRequest, record: &mut CallRecord) -> Result<Call, HttpError> {
        let url = match self
            .policy
            .resolve(&request.service, &request.path_and_query)
        {
            Ok(url) => url,
            Err(why) => {
                self.audit.record(record, "denied", Some(&why), None, 0);
                return Err(HttpError::Denied(why));
            }
        };
        record.path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let api = Api::of_service(&request.service).unwrap_or(self.connection.api);
        Ok(Call {
            method: match request.method {
                Method::Get => reqwest::Method::GET,
                Method::Post => reqwest::Method::POST,
            },
            url,
            scope: self.connection.cloud.scope(api),
            headers: request
                .headers
                .into_iter()
                .filter(|(name, _)| !is_forbidden_header(name))
                .collect(),
            body: request.body,
        })
    }

    /// Waits for the connection's pacing to allow one more call, within the deadline.
    async fn pace(&self, record: &CallRecord) -> Result<(), HttpError> {
        if self.pacer.acquire(self.deadline).await.is_ok() {
            return Ok(());
        }
        tracing::warn!(
            "connection `{}`: the next call would wait past the deadline to stay within {} calls \
             per minute and {} per hour; raise --timeout, or the connection's pacing if the \
             service allows more",
            self.connection.name,
            self.connection.pacing.per_minute,
            self.connection.pacing.per_hour
        );
        self.audit.record(
            record,
            "allowed",
            Some("deadline reached while pacing"),
            None,
            0,
        );
        Err(HttpError::Timeout)
    }

    /// A token for `scope`, within the deadline; `stale` names one the API just refused.
    async fn token(
        &self,
        scope: &str,
        stale: Option<u64>,
        record: &CallRecord,
    ) -> Result<AccessToken, HttpError> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            self.audit
                .record(record, "allowed", Some("timeout"), None, 0);
            return Err(HttpError::Timeout);
        }
        let request = self
            .connector
            .tokens
            .token(&self.client, &self.connection, scope, stale);
        match tokio::time::timeout(remaining, request).await {
            Ok(Ok(token)) => Ok(token),
            Ok(Err(e)) => {
                self.audit
                    .record(record, "allowed", Some("token request failed"), None, 0);
                Err(if e.unreachable {
                    HttpError::Transport(e.message)
                } else {
                    HttpError::Unauthorized(e.message)
                })
            }
            Err(_) => {
                self.audit
                    .record(record, "allowed", Some("timeout"), None, 0);
                Err(HttpError::Timeout)
            }
        }
    }

    /// Sends the call once with `token`.
    async fn attempt(&self, call: &Call, token: &AccessToken) -> Attempt {
        let mut builder = self
            .client
            .request(call.method.clone(), call.url.clone())
            .bearer_auth(token.bearer());
        for (name, value) in &call.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &call.body {
            builder = builder.body(body.clone());
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, builder.send()).await {
            Err(_) => Attempt::Timeout,
            Ok(Ok(response)) => Attempt::Answer(response),
            Ok(Err(e)) if e.is_timeout() => Attempt::Timeout,
            Ok(Err(e)) => Attempt::Transport(error_chain(&e)),
        }
    }

    /// Turns the final attempt into the outcome, auditing the failures (an answer's record is
    /// written when its body ends).
    fn settle(
        &self,
        attempt: Attempt,
        record: CallRecord,
    ) -> Result<(reqwest::Response, CallRecord), HttpError> {
        match attempt {
            Attempt::Answer(response) => {
                // An announced length over the cap is refused before any of it is read.
                let cap = self.connection.max_response_bytes;
                if response.content_length().is_some_and(|n| n > cap) {
                    let status = Some(response.status().as_u16());
                    self.audit
                        .record(&record, "allowed", Some("response too large"), status, 0);
                    return Err(HttpError::TooLarge(cap));
                }
                Ok((response, record))
            }
            Attempt::Transport(why) => {
                self.audit.record(&record, "allowed", Some(&why), None, 0);
                Err(HttpError::Transport(why))
            }
            Attempt::Timeout => {
                self.audit
                    .record(&record, "allowed", Some("timeout"), None, 0);
                Err(HttpError::Timeout)
            }
        }
    }
}

/// The retry rules: one token refresh on 401; 429 after `Retry-After` (or backoff); 5xx and
/// transport errors after backoff; all within `retry.max_retries`.
fn next_step(attempt: &Attempt, retry: RetryPolicy, retries: u32, refreshed: &mut bool) -> Step {
    let can_retry = retries < retry.max_retries;
    match attempt {
        Attempt::Answer(r) if r.status() == 401 && !*refreshed => {
            *refreshed = true;
            Step::RefreshToken
        }
        Attempt::Answer(r) if r.status() == 429 && can_retry => {
            Step::Wait(retry_after(&header_list(r)).unwrap_or_else(|| backoff(retry, retries)))
        }
        Attempt::Answer(r) if r.status().is_server_error() && can_retry => {
            Step::Wait(backoff(retry, retries))
        }
        Attempt::Transport(_) if can_retry => Step::Wait(backoff(retry, retries)),
        _ => Step::Settle,
    }
}

/// Every byte of `body`.
async fn read_all(body: &mut IncomingBody) -> Result<Vec<u8>, HttpError> {
    let mut all = Vec::new();
    loop {
        let piece = body.read(u32::MAX).await?;
        if piece.is_empty() {
            return Ok(all);
        }
        all.extend_from_slice(&piece);
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
