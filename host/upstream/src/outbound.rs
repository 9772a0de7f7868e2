//! One skill request, from the guest's words to the answer's head: resolved, paced,
//! authenticated, sent, retried and audited.
//!
//! Threat: the request comes from untrusted code and the answer from the network. The egress
//! policy runs before a token is fetched, so a denied request never carries one, and a denial is
//! final (never retried); guest headers that could override authentication or routing are
//! dropped, headers outside the allow-list, oversized or malformed requests and calls to the
//! login service are denied (see [`crate::egress`]); redirects are not followed (see
//! [`crate::client`]); answers are size-capped; every wait (pacing, `Retry-After`, backoff) stays
//! inside the invocation's deadline, and a pacing wait that would pass it is reported as pacing.
//! One invocation may make at most [`CallLimits::max_requests`] requests (denied ones count), and
//! its audit records are capped (see [`crate::audit`]), so a skill looping on refused calls can
//! neither spin the host forever nor fill its disk. One tenant's connection shares no token,
//! client or pacer with another's. With pacing kept in a shared store, a call the store cannot
//! pace is not sent (see [`crate::pacing::PacingBackend`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use reqwest::Url;
use skillhost_contract::types::{ConnectionInfo, HttpError, HttpRequest, HttpResponse, Method};
use tracing::Instrument;

use crate::audit::{
    AuditLog, AuditTrail, CallRecord, DEFAULT_MAX_AUDIT_BYTES, DEFAULT_MAX_FIELD_BYTES, OpenRecord,
};
use crate::auth::{AccessToken, TokenCache};
use crate::body::IncomingBody;
use crate::client::error_chain;
use crate::connections::Connection;
use crate::egress::{Admitted, EgressPolicy, RequestLimits};
use crate::pacing::{
    ConnectionPacer, Pacer, PacingBackend, PacingFailure, PacingRefusal, SharedPacer, Window,
};
use crate::providers::microsoft::Api;
use crate::retry::{RetryPolicy, backoff, retry_after};

/// Process-wide state of outbound calls: the token cache, HTTP clients, pacers and audit log.
pub struct Connector {
    tokens: TokenCache,
    /// By connection name and definition ([`Connection::fingerprint`]).
    clients: Mutex<HashMap<(String, u64), reqwest::Client>>,
    pacers: Mutex<HashMap<(String, String), Arc<Pacer>>>,
    pacing: std::sync::OnceLock<PacingBackend>,
    audit: std::sync::OnceLock<Arc<AuditLog>>,
}

impl Connector {
    /// A connector writing audit records to `audit` (if given).
    pub fn new(audit: Option<AuditLog>) -> Arc<Self> {
        let connector = Connector {
            tokens: TokenCache::default(),
            clients: Mutex::new(HashMap::new()),
            pacers: Mutex::new(HashMap::new()),
            pacing: std::sync::OnceLock::new(),
            audit: std::sync::OnceLock::new(),
        };
        if let Some(log) = audit {
            let _ = connector.audit.set(Arc::new(log));
        }
        Arc::new(connector)
    }

    /// Starts writing audit records of connections bound from now on to `log`; false if this
    /// connector already had a log (which stays).
    pub fn set_audit(&self, log: AuditLog) -> bool {
        self.audit.set(Arc::new(log)).is_ok()
    }

    /// Like [`Connector::set_audit`], for a log the caller writes to as well.
    pub fn set_audit_shared(&self, log: Arc<AuditLog>) -> bool {
        self.audit.set(log).is_ok()
    }

    /// Keeps the pacing of connections bound from now on in `backend` (unset:
    /// [`PacingBackend::InMemory`]); false if this connector already had one (which stays).
    /// Set it before the first bind: bindings made before keep the pacing they had.
    pub fn set_pacing(&self, backend: PacingBackend) -> bool {
        self.pacing.set(backend).is_ok()
    }

    /// The token cache (shared by every connection of the process).
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }

    /// Binds `connection` to one invocation ending at `deadline`, under the default
    /// [`CallLimits`].
    pub fn bind(
        self: &Arc<Self>,
        connection: Connection,
        deadline: Instant,
    ) -> Result<Arc<BoundConnection>, String> {
        self.bind_with_limits(connection, deadline, CallLimits::default())
    }

    /// Binds `connection` to one invocation ending at `deadline`, under `limits`.
    pub fn bind_with_limits(
        self: &Arc<Self>,
        connection: Connection,
        deadline: Instant,
        limits: CallLimits,
    ) -> Result<Arc<BoundConnection>, String> {
        let client = self.client(&connection)?;
        let pacer = self.pacer(&connection);
        let services = connection
            .services()
            .into_iter()
            .filter_map(|s| connection.service_base(&s).map(|base| (s, base)));
        let policy =
            EgressPolicy::new(services, &connection.login_base()).with_limits(limits.request);
        let audit = AuditTrail::with_caps(
            self.audit.get().cloned(),
            &connection.tenant,
            &connection.name,
            limits.max_audit_bytes,
            limits.max_audit_field_bytes,
        );
        Ok(Arc::new(BoundConnection {
            connector: self.clone(),
            connection,
            client,
            pacer,
            policy,
            audit,
            deadline,
            limits,
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            pacing_refusal: Mutex::new(None),
            ahead_pacing_refusal: Mutex::new(None),
            prefetched: Mutex::new(None),
            next_link: Mutex::new(None),
            untaken: AtomicBool::new(false),
            unsent: AtomicBool::new(false),
        }))
    }

    /// The HTTP client of `connection`, built on first use (TLS roots are loaded only then).
    pub fn client(&self, connection: &Connection) -> Result<reqwest::Client, String> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| "client table poisoned".to_string())?;
        let key = (connection.name.clone(), connection.fingerprint());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = crate::client::build(connection)?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Forgets the HTTP client and cached tokens of connection `name` (its definition changed:
    /// a reloaded config). Pacers stay: they belong to the app registration, not the name.
    pub fn forget(&self, name: &str) {
        if let Ok(mut clients) = self.clients.lock() {
            clients.retain(|(connection, _), _| connection != name);
        }
        self.tokens.forget(name);
    }

    fn pacer(&self, connection: &Connection) -> ConnectionPacer {
        if let Some(PacingBackend::Store(store)) = self.pacing.get() {
            return ConnectionPacer::Shared(SharedPacer::new(
                store.clone(),
                &connection.tenant_id,
                &connection.client_id,
                connection.pacing,
            ));
        }
        let key = (connection.tenant_id.clone(), connection.client_id.clone());
        ConnectionPacer::Local(match self.pacers.lock() {
            Ok(mut pacers) => pacers
                .entry(key)
                .or_insert_with(|| Arc::new(Pacer::new(connection.pacing)))
                .clone(),
            Err(_) => Arc::new(Pacer::new(connection.pacing)),
        })
    }
}

/// What one invocation may do through its bound connection.
///
/// Defaults: 10,000 requests, 16 MiB of audit records, 2 KiB per skill-controlled audit field
/// (service, path, reason), and the request shape of [`RequestLimits::default`] (32 headers,
/// 16 KiB of headers, an 8 KiB path and query, a 1 MiB body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Requests (`http.send` and `http.send-streaming` calls, each fetch of `http.send` counted)
    /// one invocation may make, denied ones included; the host's own retries are not counted.
    /// Past it every request is denied. Default 10,000.
    ///
    /// Denied requests are counted and audited but not paced: they never reach the service, and
    /// pacing them would spend the pacing window the (tenant, app) shares with every other
    /// invocation, so one hostile skill could starve the others by being refused.
    pub max_requests: u64,
    /// Bytes of audit records one invocation may write; past it records are dropped and one
    /// `truncated` record says how much when the invocation ends. Default 16 MiB.
    pub max_audit_bytes: u64,
    /// Bytes kept of each skill-controlled field of an audit record (the cut is marked), which
    /// bounds one record to a few times this. Default 2 KiB.
    pub max_audit_field_bytes: usize,
    /// The shape one request may have (headers, path, body).
    pub request: RequestLimits,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            max_requests: 10_000,
            max_audit_bytes: DEFAULT_MAX_AUDIT_BYTES,
            max_audit_field_bytes: DEFAULT_MAX_FIELD_BYTES,
            request: RequestLimits::default(),
        }
    }
}

/// One connection, bound to one invocation and its deadline.
pub struct BoundConnection {
    connector: Arc<Connector>,
    connection: Connection,
    client: reqwest::Client,
    pacer: ConnectionPacer,
    policy: EgressPolicy,
    audit: AuditTrail,
    deadline: Instant,
    limits: CallLimits,
    requests: AtomicU64,
    throttled: AtomicU64,
    calls: AtomicU64,
    pacing_refusal: Mutex<Option<String>>,
    /// What pacing said when the retry of the page asked for ahead was refused: handed over
    /// with that page's timeout, for [`BoundConnection::take_pacing_refusal`] once the guest
    /// takes it.
    ahead_pacing_refusal: Mutex<Option<String>>,
    prefetched: Mutex<Option<Prefetch>>,
    next_link: Mutex<Option<HttpRequest>>,
    /// Set once a page asked for ahead (and perhaps sent) went untaken: nothing more is asked for
    /// ahead in this invocation, so at most one call beyond the guest's own is ever sent.
    untaken: AtomicBool,
    /// Set when the page being asked for ahead was refused before it was sent (no pacing room,
    /// the cap reached meanwhile, no token): the guest's own request is then made.
    unsent: AtomicBool,
}

/// A request the host made ahead of the guest: the page an answer's `@odata.nextLink` names,
/// asked for while the guest still reads that answer. It is handed over when the guest's next
/// request is exactly this one, and dropped (its call audited as not taken) otherwise.
struct Prefetch {
    request: HttpRequest,
    /// The answer, or why there is none.
    task: tokio::task::JoinHandle<Result<StreamedAnswer, Unanswered>>,
    /// Set by the task when it ends refused before it was sent.
    unsent: Arc<AtomicBool>,
}

/// Why a page asked for ahead of the guest has no answer to hand over.
enum Unanswered {
    /// It was refused before it was sent (no pacing room, the cap reached meanwhile, no token).
    Unsent,
    /// What it met once sent, and pacing's words when pacing refused its retry.
    Failed(HttpError, Option<String>),
}

/// What the guest's request finds of the page asked for ahead of it.
// Returned once per request and moved straight on, never kept: boxing the answer would only
// add an allocation per page.
#[allow(clippy::large_enum_variant)]
enum Taken {
    /// The page was this request, and this is what it came to.
    Answer(Result<StreamedAnswer, HttpError>),
    /// The page was this request, and was refused before it was sent.
    Unsent,
    /// No page was asked for ahead, or another one (it is dropped).
    Nothing,
}

/// Why the audit record of a page asked for ahead of the guest ends (after [`ASKED_AHEAD`]) when
/// the guest never took it.
const NOT_TAKEN: &str = "the skill did not ask for it";

/// Whether a request is the guest's own or asked for ahead of it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ahead {
    /// The guest's own request.
    No,
    /// A page asked for ahead of the guest.
    Yes,
}

/// A task aborted when this is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The audit record of a call asked for ahead of the guest, written if the call is cancelled
/// before it settled (its future dropped).
struct Unsettled {
    record: OpenRecord,
}

impl Unsettled {
    /// The call settled: its answer or its failure is audited elsewhere.
    fn settled(&mut self) {
        self.record.discard();
    }
}

impl Drop for Unsettled {
    fn drop(&mut self) {
        self.record.write_left(0);
    }
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
    /// The request could not be formed (the policy should have refused it): final, not retried.
    Malformed(String),
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

    /// Answers with status 429 (throttled) received so far through this binding.
    pub fn throttled_answers(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Requests the skill made so far through this binding, denied ones included (what
    /// [`CallLimits::max_requests`] counts).
    pub fn requests_made(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The limits of this binding.
    pub fn limits(&self) -> CallLimits {
        self.limits
    }

    /// Why the last call that failed with [`HttpError::Timeout`] did, when it was pacing rather
    /// than the deadline passing: the wait for the pacing window would have ended after the
    /// deadline (taken: reported once).
    pub fn take_pacing_refusal(&self) -> Option<String> {
        self.pacing_refusal.lock().ok().and_then(|mut r| r.take())
    }

    /// Performs one `http.send` for `skill`: the whole body is read (up to the connection's
    /// cap). A GET whose body was cut short or stalled is fetched again (nothing of it reached
    /// the guest yet), at most `max_retries` more times and within the deadline; each fetch has
    /// its own retries of failed answers.
    pub async fn send(
        self: &Arc<Self>,
        skill: &str,
        request: HttpRequest,
    ) -> Result<HttpResponse, HttpError> {
        self.send_within(skill, request, u64::MAX).await
    }

    /// [`Self::send`] with the body held to at most `limit` bytes as well as the connection's
    /// cap: an invocation's body is bounded by what its guest could take (its memory cap), since
    /// the host holds all of it before the guest receives any.
    pub async fn send_within(
        self: &Arc<Self>,
        skill: &str,
        request: HttpRequest,
        limit: u64,
    ) -> Result<HttpResponse, HttpError> {
        let limit = limit.min(self.connection.max_response_bytes);
        let retry = RetryPolicy::from(self.connection.retry);
        let mut refetched = 0;
        loop {
            let StreamedAnswer {
                status,
                headers,
                body: mut incoming,
            } = self.stream(skill, &request).await?;
            let why = match read_all(&mut incoming, limit).await {
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
            // Only a GET is fetched again: a POST that was answered was carried out.
            if request.method != Method::Get
                || refetched >= retry.max_retries
                || Instant::now() + wait >= self.deadline
            {
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
        self: &Arc<Self>,
        skill: &str,
        request: HttpRequest,
    ) -> Result<StreamedAnswer, HttpError> {
        self.stream(skill, &request).await
    }

    /// [`BoundConnection::send_streaming`] of a borrowed request (`send` may fetch it again):
    /// the page asked for ahead of the guest if it is this request, else the request now.
    async fn stream(
        self: &Arc<Self>,
        skill: &str,
        request: &HttpRequest,
    ) -> Result<StreamedAnswer, HttpError> {
        let taken = self.take_prefetched(request).await;
        let noted = self.next_link.lock().ok().and_then(|mut link| link.take());
        let follows = match taken {
            Taken::Answer(answer) => return answer,
            // The page asked for ahead was this request: the guest follows links.
            Taken::Unsent => true,
            Taken::Nothing => noted.is_some_and(|link| link == *request),
        };
        let (response, record) = self.exchange(skill, request, Ahead::No).await?;
        Ok(self.answer(skill, request, response, record, follows))
    }

    /// The answer to hand over for `response` to `request`. When a GET's body ends with an
    /// `@odata.nextLink` (see [`IncomingBody::on_next_link`]), the page it names is asked for
    /// while the guest reads the body if the guest `follows` links (this request was the last
    /// answer's link); otherwise the link is remembered, so that the guest following it starts
    /// the asking ahead. A skill that reads one page and stops never costs a call it did not
    /// make; one that stops following part-way costs at most one.
    fn answer(
        self: &Arc<Self>,
        skill: &str,
        request: &HttpRequest,
        response: reqwest::Response,
        record: CallRecord,
        follows: bool,
    ) -> StreamedAnswer {
        let status = response.status().as_u16();
        let headers = header_list(&response);
        let mut body = IncomingBody::new(
            response,
            self.connection.max_response_bytes,
            self.deadline,
            RetryPolicy::from(self.connection.retry).read_idle,
            self.audit.clone(),
            record,
        );
        if request.method == Method::Get && request.body.is_none() {
            let connection = Arc::downgrade(self);
            let skill = skill.to_string();
            let template = request.clone();
            body.on_next_link(Box::new(move |link| {
                if let Some(connection) = connection.upgrade() {
                    let next = HttpRequest {
                        path_and_query: link,
                        ..template
                    };
                    if follows {
                        connection.prefetch(skill, next);
                    } else if let Ok(mut expected) = connection.next_link.lock() {
                        *expected = Some(next);
                    }
                }
            }));
        }
        StreamedAnswer {
            status,
            headers,
            body,
        }
    }

    /// Asks for `request` ahead of the guest, unless a page asked for ahead is still waiting
    /// to be taken. The call is admitted, paced, retried and audited like the guest's own.
    fn prefetch(self: &Arc<Self>, skill: String, request: HttpRequest) {
        let Ok(mut slot) = self.prefetched.lock() else {
            return;
        };
        // A link the guest could not follow (another origin, a path too long) is not asked
        // for: its denial would be audited as the skill's.
        // Nor is one past the request cap (the guest's own request would be refused), nor any
        // once a page asked for ahead went untaken: a guest that stops following links, or an
        // upstream whose link the guest does not read, costs one call beyond the guest's own
        // at most, whatever the invocation does after.
        if slot.is_some()
            || self.untaken.load(Ordering::Relaxed)
            || Instant::now() >= self.deadline
            || self.policy.admit(&request).is_err()
            || self.calls.load(Ordering::Relaxed) >= self.limits.max_requests
        {
            return;
        }
        // Cancelled before the call settled, the call is audited by this; once it settled, its
        // answer's body (or the call's own failure) is.
        let record = self.audit.open(
            CallRecord {
                skill: skill.clone(),
                service: request.service.clone(),
                method: request.method.as_str(),
                path: request.path_and_query.clone(),
                started: Instant::now(),
                retries: 0,
                ahead: true,
            },
            "allowed",
            None,
        );
        record.reason(&format!(
            "{NOT_TAKEN} (cancelled before it settled; it may not have been sent)"
        ));
        let mut unsettled = Unsettled { record };
        let connection = self.clone();
        let asked = request.clone();
        let unsent = Arc::new(AtomicBool::new(false));
        let refused = unsent.clone();
        let task = tokio::spawn(
            async move {
                let exchanged = connection.exchange(&skill, &asked, Ahead::Yes).await;
                unsettled.settled();
                let never_sent = connection.unsent.swap(false, Ordering::Relaxed);
                let paced = connection
                    .ahead_pacing_refusal
                    .lock()
                    .ok()
                    .and_then(|mut why| why.take());
                match exchanged {
                    Ok((response, record)) => {
                        let mut answer = connection.answer(&skill, &asked, response, record, true);
                        answer.body.set_drop_reason(NOT_TAKEN);
                        Ok(answer)
                    }
                    Err(_) if never_sent => {
                        refused.store(true, Ordering::Release);
                        Err(Unanswered::Unsent)
                    }
                    Err(error) => Err(Unanswered::Failed(error, paced)),
                }
            }
            // In the run's span (`serve` names its tenant and caller there).
            .in_current_span(),
        );
        *slot = Some(Prefetch {
            request,
            task,
            unsent,
        });
    }

    /// The answer to `request` if it is the page asked for ahead of the guest; any other page
    /// asked for ahead is dropped.
    async fn take_prefetched(&self, request: &HttpRequest) -> Taken {
        let Some(prefetch) = self.prefetched.lock().ok().and_then(|mut slot| slot.take()) else {
            return Taken::Nothing;
        };
        let mut task = AbortOnDrop(prefetch.task);
        if prefetch.request != *request {
            // Dropped: it counts as untaken unless it is known never to have been sent.
            let never_sent = task.0.is_finished() && prefetch.unsent.load(Ordering::Acquire);
            if !never_sent {
                self.untaken.store(true, Ordering::Relaxed);
            }
            return Taken::Nothing;
        }
        // Aborted if this wait is (the invocation ending): nothing then takes the answer.
        let outcome = (&mut task.0).await;
        match outcome {
            Ok(Ok(mut answer)) => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                answer.body.taken();
                Taken::Answer(Ok(answer))
            }
            // What the request met once it was sent (a timeout, a broken answer) is the guest's
            // outcome too: the request is not made twice. A retry that pacing refused is told
            // as pacing, as the guest's own would be.
            Ok(Err(Unanswered::Failed(error, paced))) => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                if let (HttpError::Timeout, Some(why)) = (&error, paced)
                    && let Ok(mut slot) = self.pacing_refusal.lock()
                {
                    *slot = Some(why);
                }
                Taken::Answer(Err(error))
            }
            // Refused before it was sent: the guest's own request is made now.
            Ok(Err(Unanswered::Unsent)) => Taken::Unsent,
            // The task failed (it may have sent the call): made again as the guest's own, and
            // nothing more is asked for ahead.
            Err(_) => {
                self.untaken.store(true, Ordering::Relaxed);
                Taken::Nothing
            }
        }
    }

    /// Whether a page is asked for ahead of the guest now (it is taken or dropped by the guest's
    /// next request).
    pub fn asking_ahead(&self) -> bool {
        self.prefetched.lock().is_ok_and(|slot| slot.is_some())
    }

    /// Drops the page asked for ahead of the guest, if any, because the invocation is ending (a
    /// request for another page drops it in `take_prefetched`). A call still under way is
    /// cancelled and audited, and nothing more is asked for ahead: a body still being read must
    /// not start another call.
    pub fn abandon_prefetch(&self) {
        let prefetch = self.prefetched.lock().ok().and_then(|mut slot| slot.take());
        if let Some(prefetch) = prefetch {
            self.untaken.store(true, Ordering::Relaxed);
            // A finished call's answer is dropped with the handle, and audits itself.
            prefetch.task.abort();
        }
    }

    /// Request cap and policy, then pacing, token, request and retries, up to the head of the
    /// answer to hand over.
    async fn exchange(
        &self,
        skill: &str,
        request: &HttpRequest,
        ahead: Ahead,
    ) -> Result<(reqwest::Response, CallRecord), HttpError> {
        let mut record = CallRecord {
            skill: skill.to_string(),
            service: request.service.clone(),
            method: request.method.as_str(),
            path: request.path_and_query.clone(),
            started: Instant::now(),
            retries: 0,
            ahead: ahead == Ahead::Yes,
        };
        let call = self.admit(request, &mut record, ahead)?;
        let retry = RetryPolicy::from(self.connection.retry);
        let mut stale_token = None;
        let mut refreshed = false;
        loop {
            self.pace(&record, ahead).await?;
            let token = match self.token(&call.scope, stale_token, &record).await {
                Ok(token) => token,
                // Not sent: the guest's own request, if it makes it, asks for a token afresh.
                Err(error) => {
                    if ahead == Ahead::Yes && record.retries == 0 {
                        self.unsent.store(true, Ordering::Relaxed);
                    }
                    return Err(error);
                }
            };
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

    /// Counts the request against the invocation's cap, then decides it by the egress policy;
    /// a denial is audited and returned (it is final: not paced, not retried).
    fn admit(
        &self,
        request: &HttpRequest,
        record: &mut CallRecord,
        ahead: Ahead,
    ) -> Result<Call, HttpError> {
        // A request asked for ahead counts when the guest takes it (see `take_prefetched`).
        let made = match ahead {
            Ahead::No => self.calls.fetch_add(1, Ordering::Relaxed),
            Ahead::Yes => self.calls.load(Ordering::Relaxed),
        }
        .saturating_add(1);
        let decision = if made > self.limits.max_requests {
            Err(format!(
                "the invocation reached its limit of {} requests through connection `{}` \
                 (denied requests count too); request {made} was refused",
                self.limits.max_requests, self.connection.name
            ))
        } else {
            self.policy.admit(request)
        };
        let Admitted { url, headers } = match decision {
            Ok(admitted) => admitted,
            // Refused before it was sent (the guest's requests reached the cap meanwhile): the
            // guest's own request, if it makes it, meets the refusal.
            Err(why) if ahead == Ahead::Yes => {
                self.unsent.store(true, Ordering::Relaxed);
                return Err(HttpError::Denied(why));
            }
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
            headers,
            // Within the policy's body limit.
            body: request.body.clone(),
        })
    }

    /// Waits for the connection's pacing to allow one more call, within the deadline. A wait
    /// that would pass the deadline is refused at once: the guest gets a timeout, and
    /// [`BoundConnection::take_pacing_refusal`] says it was pacing. A shared pacing store that
    /// cannot be asked fails the call as a transport error, unsent and not retried.
    ///
    /// A request asked for ahead of the guest waits for nothing before it is first sent: refused
    /// unless the window has room now, silently and unsent (the guest asks for it itself if it
    /// wants it, and hears the pacer then). Its retries wait like the guest's own calls.
    async fn pace(&self, record: &CallRecord, ahead: Ahead) -> Result<(), HttpError> {
        let first_ahead = ahead == Ahead::Yes && record.retries == 0;
        let by = if first_ahead {
            Instant::now()
        } else {
            self.deadline
        };
        let refusal = match self.pacer.admit(by).await {
            Ok(_) => return Ok(()),
            Err(_) if first_ahead => {
                self.unsent.store(true, Ordering::Relaxed);
                return Err(HttpError::Timeout);
            }
            Err(PacingFailure::Refused(refusal)) => refusal,
            Err(PacingFailure::Unavailable(why)) => {
                let why = format!(
                    "the call was not sent: connection `{}` is paced through the state store, \
                     and {why}",
                    self.connection.name
                );
                tracing::warn!("{why}");
                self.audit.record(record, "allowed", Some(&why), None, 0);
                return Err(HttpError::Transport(why));
            }
        };
        let why = self.pacing_message(&refusal);
        tracing::debug!("{why}");
        let reason = format!(
            "paced: the next call would wait {} for its pacing window, past the deadline in {}",
            seconds(refusal.wait),
            seconds(refusal.remaining)
        );
        self.audit.record(record, "allowed", Some(&reason), None, 0);
        // The guest hears of pacing through its own calls, and through a page asked for ahead
        // once it takes that page.
        let slot = match ahead {
            Ahead::No => &self.pacing_refusal,
            Ahead::Yes => &self.ahead_pacing_refusal,
        };
        if let Ok(mut slot) = slot.lock() {
            *slot = Some(why);
        }
        Err(HttpError::Timeout)
    }

    /// What the operator is told when pacing, not the skill, ran out of time.
    fn pacing_message(&self, refusal: &PacingRefusal) -> String {
        let pacing = self.connection.pacing;
        let (calls, window) = match refusal.window {
            Window::Minute => (pacing.per_minute, "minute"),
            Window::Hour => (pacing.per_hour, "hour"),
        };
        let plural = if calls == 1 { "call" } else { "calls" };
        let scale = if (pacing.time_scale - 1.0).abs() > f64::EPSILON {
            format!(", time_scale {}", pacing.time_scale)
        } else {
            String::new()
        };
        format!(
            "the next call of connection `{}` would wait {} for its pacing window ({calls} \
             {plural} per {window}{scale}), past the invocation's deadline in {}; raise \
             --timeout or the connection's pacing",
            self.connection.name,
            seconds(refusal.wait),
            seconds(refusal.remaining)
        )
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
            Ok(Ok(response)) => {
                if response.status() == 429 {
                    self.throttled.fetch_add(1, Ordering::Relaxed);
                }
                Attempt::Answer(response)
            }
            Ok(Err(e)) if e.is_timeout() => Attempt::Timeout,
            Ok(Err(e)) if e.is_builder() => Attempt::Malformed(error_chain(&e)),
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
            Attempt::Malformed(why) => {
                let why = format!("the request could not be formed ({why})");
                self.audit.record(&record, "denied", Some(&why), None, 0);
                Err(HttpError::Denied(why))
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

/// `d` as seconds with one decimal, such as `12.3 s`.
fn seconds(d: std::time::Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Every byte of `body`, refused as too large past `limit` bytes (before any is read when its
/// announced length is past it). The buffer is sized from the announced length, so that it does
/// not grow by doubling past what it holds.
async fn read_all(body: &mut IncomingBody, limit: u64) -> Result<Vec<u8>, HttpError> {
    let too_large = |body: &mut IncomingBody| {
        body.set_drop_reason("response too large for the invocation's memory");
        HttpError::TooLarge(limit)
    };
    let mut all = Vec::new();
    if let Some(announced) = body.announced() {
        if announced > limit {
            return Err(too_large(body));
        }
        // Within the limit, and so within the invocation's memory; a failed reservation only
        // means the buffer grows as it goes.
        let _ = all.try_reserve_exact(announced as usize);
    }
    loop {
        let piece = body.read(u32::MAX).await?;
        if piece.is_empty() {
            return Ok(all);
        }
        if (all.len() + piece.len()) as u64 > limit {
            return Err(too_large(body));
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
