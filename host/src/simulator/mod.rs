//! A deterministic stand-in for Microsoft Entra ID, the Defender XDR incidents API and the Graph
//! security incidents API, on loopback: for the demo, the tests, and anyone writing a skill.
//!
//! It checks what the real services check (client credentials, token audience and `roles`, `$top`
//! limits, rate limits) and answers in their shapes, and it can misbehave on purpose (faults:
//! throttling, server errors, slow or truncated answers, tokens revoked mid-run, incidents that
//! move between pages). Counters of what it saw let tests assert on the traffic.

pub mod data;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::error::Failure;

/// The app registration the simulator accepts by default.
pub const DEFAULT_TENANT_ID: &str = "6f1c2b7e-5d4a-4c3b-9e8f-0a1b2c3d4e5f";
/// Default application (client) id.
pub const DEFAULT_CLIENT_ID: &str = "0d3e9a42-7b1c-4f6e-8a2d-5c4b3a291807";
/// Default client secret (a fixture of the simulator, not a real credential).
pub const DEFAULT_CLIENT_SECRET: &str = "simulated-client-secret";
const DEFENDER_AUDIENCE: &str = "https://api.security.microsoft.com";
const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";

/// Misbehaviour to inject, counted from the simulator's start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Answer the first N API calls with 429 and `Retry-After: retry_after_secs`.
    pub throttle_first: u32,
    /// The `Retry-After` of injected 429s, seconds (fractions allowed).
    pub retry_after_secs: f64,
    /// Answer the first N API calls with 500.
    pub error_first: u32,
    /// Answer every API call with 500.
    pub error_always: bool,
    /// Answer every API call with 401, whatever the token.
    pub deny_tokens: bool,
    /// Delay every API answer.
    pub slow: Option<Duration>,
    /// Cut the body of the first N API answers in half.
    pub truncate_first: u32,
    /// After N API calls, revoke every token issued so far (they then get 401).
    pub revoke_after: Option<u32>,
    /// After the first page of a list, create a new incident and update the last one served,
    /// so that `$skip` paging serves that one again on the next page.
    pub churn: bool,
}

impl Faults {
    /// Parses `name=value` items: `throttle=N`, `retry-after=SECS`, `error=N|always`,
    /// `slow=MS`, `truncate=N`, `revoke-after=N`, `churn`, `deny-tokens`.
    pub fn parse(items: &[String]) -> Result<Faults, String> {
        let mut faults = Faults {
            retry_after_secs: 1.0,
            ..Faults::default()
        };
        for item in items {
            let (name, value) = item.split_once('=').unwrap_or((item.as_str(), ""));
            let number = || {
                value
                    .parse::<u32>()
                    .map_err(|_| format!("fault {item:?}: {value:?} is not a count"))
            };
            match name {
                "throttle" => faults.throttle_first = number()?,
                "retry-after" => {
                    faults.retry_after_secs = value
                        .parse()
                        .map_err(|_| format!("fault {item:?}: not a number of seconds"))?
                }
                "error" if value == "always" => faults.error_always = true,
                "error" => faults.error_first = number()?,
                "slow" => faults.slow = Some(Duration::from_millis(number()? as u64)),
                "truncate" => faults.truncate_first = number()?,
                "revoke-after" => faults.revoke_after = Some(number()?),
                "churn" => faults.churn = true,
                "deny-tokens" => faults.deny_tokens = true,
                _ => {
                    return Err(format!(
                        "unknown fault {item:?}; known: throttle=N, retry-after=SECS, error=N|always, slow=MS, truncate=N, revoke-after=N, churn, deny-tokens"
                    ));
                }
            }
        }
        Ok(faults)
    }
}

/// Everything that defines a simulator run.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Incidents to generate.
    pub incidents: usize,
    /// Seed of the generator.
    pub seed: u64,
    /// The time the data is generated back from (default: start time).
    pub anchor: Option<Timestamp>,
    /// The directory id accepted.
    pub tenant_id: String,
    /// The app id accepted.
    pub client_id: String,
    /// The secret accepted.
    pub client_secret: String,
    /// Application roles granted to the app's tokens.
    pub roles: Vec<String>,
    /// Token lifetime (`expires_in`).
    pub token_lifetime: Duration,
    /// Enforce the published rate limits (list 50/min, get 100/min; 1,500/hour).
    pub rate_limits: bool,
    /// Divides the rate-limit windows, to test pacing without waiting minutes.
    pub time_scale: f64,
    /// Injected faults.
    pub faults: Faults,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            incidents: 12,
            seed: 1,
            anchor: None,
            tenant_id: DEFAULT_TENANT_ID.to_string(),
            client_id: DEFAULT_CLIENT_ID.to_string(),
            client_secret: DEFAULT_CLIENT_SECRET.to_string(),
            roles: vec![
                "Incident.Read.All".to_string(),
                "SecurityIncident.Read.All".to_string(),
            ],
            token_lifetime: Duration::from_secs(3599),
            rate_limits: true,
            time_scale: 1.0,
            faults: Faults {
                retry_after_secs: 1.0,
                ..Faults::default()
            },
        }
    }
}

/// One request the simulator served (API or token).
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// Method.
    pub method: String,
    /// Path and query as received (still percent-encoded).
    pub path_and_query: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The status answered.
    pub status: u16,
}

/// Counters and a log of what the simulator saw.
#[derive(Debug, Default)]
pub struct Stats {
    /// Token requests received (good or bad).
    pub token_requests: AtomicU64,
    /// API calls received.
    pub api_calls: AtomicU64,
    /// 429s answered (injected or rate limit).
    pub throttled: AtomicU64,
    /// Every request, in order.
    pub requests: Mutex<Vec<SeenRequest>>,
}

impl Stats {
    /// Token requests so far.
    pub fn tokens(&self) -> u64 {
        self.token_requests.load(Ordering::SeqCst)
    }

    /// API calls so far.
    pub fn calls(&self) -> u64 {
        self.api_calls.load(Ordering::SeqCst)
    }

    /// A copy of the request log.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

struct IssuedToken {
    audience: String,
    roles: Vec<String>,
    expires: Instant,
    serial: u64,
}

struct SimState {
    config: SimulatorConfig,
    incidents: Mutex<Vec<Value>>,
    tokens: Mutex<HashMap<String, IssuedToken>>,
    revoked_below: AtomicU64,
    next_token: AtomicU64,
    calls: Mutex<Vec<(Instant, bool)>>,
    churned: AtomicU64,
    stats: Arc<Stats>,
}

/// A running simulator.
pub struct Simulator {
    addr: SocketAddr,
    stats: Arc<Stats>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Simulator {
    /// Starts a simulator on `listen` (port 0: any free port) in a thread of its own, so that
    /// synchronous tests can use it. It stops when dropped.
    pub fn start(config: SimulatorConfig, listen: &str) -> std::io::Result<Simulator> {
        let std_listener = std::net::TcpListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (state, stats) = new_state(config);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("skillhost-simulator".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let server =
                        axum::serve(listener, router(state)).with_graceful_shutdown(async {
                            let _ = rx.await;
                        });
                    let _ = server.await;
                });
            })?;
        Ok(Simulator {
            addr,
            stats,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the simulator has seen so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn new_state(config: SimulatorConfig) -> (Arc<SimState>, Arc<Stats>) {
    let anchor = config.anchor.unwrap_or_else(Timestamp::now);
    let incidents = data::generate(config.incidents, config.seed, anchor, &config.tenant_id);
    let stats = Arc::new(Stats::default());
    let state = Arc::new(SimState {
        config,
        incidents: Mutex::new(incidents),
        tokens: Mutex::new(HashMap::new()),
        revoked_below: AtomicU64::new(0),
        next_token: AtomicU64::new(1),
        calls: Mutex::new(Vec::new()),
        churned: AtomicU64::new(0),
        stats: stats.clone(),
    });
    (state, stats)
}

fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .fallback(api)
        .with_state(state)
}

/// `skillhost simulate` arguments.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on (loopback only unless you mean it).
    #[arg(long, default_value = "127.0.0.1:8400")]
    pub listen: String,
    /// Incidents to generate.
    #[arg(long, default_value_t = 12)]
    pub incidents: usize,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Accepted directory (tenant) id.
    #[arg(long, default_value = DEFAULT_TENANT_ID)]
    pub tenant_id: String,
    /// Accepted application (client) id.
    #[arg(long, default_value = DEFAULT_CLIENT_ID)]
    pub client_id: String,
    /// Environment variable holding the accepted client secret [default secret:
    /// simulated-client-secret].
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
    /// Roles granted to tokens (comma-separated); drop one to see a 403.
    #[arg(
        long,
        default_value = "Incident.Read.All,SecurityIncident.Read.All",
        value_delimiter = ','
    )]
    pub roles: Vec<String>,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 3599)]
    pub token_lifetime: u64,
    /// Do not enforce the published rate limits.
    #[arg(long)]
    pub no_rate_limits: bool,
    /// Divide the rate-limit windows by this factor (60 makes a minute last one second).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Inject a fault: throttle=N, retry-after=SECS, error=N|always, slow=MS, truncate=N,
    /// revoke-after=N, churn, deny-tokens. Repeatable.
    #[arg(long = "fault", value_name = "FAULT")]
    pub faults: Vec<String>,
}

/// Runs `skillhost simulate` until interrupted.
pub async fn serve(args: SimulateArgs) -> Result<(), Failure> {
    let faults = Faults::parse(&args.faults).map_err(Failure::usage)?;
    let secret = match &args.client_secret_env {
        Some(var) => std::env::var(var)
            .map_err(|_| Failure::usage(format!("--client-secret-env: {var} is not set")))?,
        None => DEFAULT_CLIENT_SECRET.to_string(),
    };
    if args.time_scale.is_nan() || args.time_scale <= 0.0 {
        return Err(Failure::usage("--time-scale must be positive"));
    }
    let config = SimulatorConfig {
        incidents: args.incidents,
        seed: args.seed,
        anchor: None,
        tenant_id: args.tenant_id,
        client_id: args.client_id,
        client_secret: secret,
        roles: args.roles,
        token_lifetime: Duration::from_secs(args.token_lifetime),
        rate_limits: !args.no_rate_limits,
        time_scale: args.time_scale,
        faults,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| Failure::usage(format!("--listen {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::other(e.to_string()))?;
    eprintln!(
        "skillhost simulator on http://{addr}: {} incidents (seed {}), tenant_id {}, client_id {}; \
         point a connection's endpoints.login/defender/graph at http://{addr}",
        config.incidents, config.seed, config.tenant_id, config.client_id
    );
    let (state, _stats) = new_state(config);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Failure::other(format!("simulator stopped: {e}")))
}

fn record(state: &SimState, method: &str, uri: &Uri, headers: &HeaderMap, status: u16) {
    if let Ok(mut log) = state.stats.requests.lock() {
        log.push(SeenRequest {
            method: method.to_string(),
            path_and_query: uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            status,
        });
    }
}

fn entra_error(status: StatusCode, error: &str, code: u64, description: &str) -> Response {
    let now = Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ").to_string();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: 00000000-0000-0000-0000-000000000000\r\nCorrelation ID: 00000000-0000-0000-0000-000000000000\r\nTimestamp: {now}"),
        "error_codes": [code],
        "timestamp": now,
        "trace_id": "00000000-0000-0000-0000-000000000000",
        "correlation_id": "00000000-0000-0000-0000-000000000000",
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn token(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.stats.token_requests.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let config = &state.config;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let response = if tenant != config.tenant_id {
        entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        )
    } else if field("grant_type") != "client_credentials" {
        entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        )
    } else if field("client_id") != config.client_id {
        entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory 'Simulated Directory'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                field("client_id")
            ),
        )
    } else if field("client_secret") != config.client_secret {
        entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                config.client_id
            ),
        )
    } else {
        let scope = field("scope");
        let audience = match scope.strip_suffix("/.default") {
            Some(a) if a == DEFENDER_AUDIENCE || a == GRAPH_AUDIENCE => a.to_string(),
            _ => {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    70011,
                    &format!(
                        "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
                    ),
                );
            }
        };
        issue_token(&state, audience)
    };
    record(&state, "POST", &uri, &headers, response.status().as_u16());
    response
}

fn issue_token(state: &SimState, audience: String) -> Response {
    let serial = state.next_token.fetch_add(1, Ordering::SeqCst);
    let lifetime = state.config.token_lifetime;
    let exp = Timestamp::now().as_second() + lifetime.as_secs() as i64;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"typ":"JWT","alg":"none"}"#);
    let claims = b64.encode(
        json!({
            "aud": audience,
            "iss": format!("https://sts.windows.net/{}/", state.config.tenant_id),
            "tid": state.config.tenant_id,
            "appid": state.config.client_id,
            "roles": state.config.roles,
            "exp": exp,
        })
        .to_string(),
    );
    let token = format!("{header}.{claims}.sim{serial}");
    if let Ok(mut tokens) = state.tokens.lock() {
        tokens.insert(
            token.clone(),
            IssuedToken {
                audience,
                roles: state.config.roles.clone(),
                expires: Instant::now() + lifetime,
                serial,
            },
        );
    }
    let body = json!({"token_type": "Bearer", "expires_in": lifetime.as_secs(), "ext_expires_in": lifetime.as_secs(), "access_token": token});
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "target": "00000000-0000-0000-0000-000000000000"}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn api(State(state): State<Arc<SimState>>, uri: Uri, headers: HeaderMap) -> Response {
    let call = state.stats.api_calls.fetch_add(1, Ordering::SeqCst) + 1;
    let faults = state.config.faults.clone();
    if let Some(delay) = faults.slow {
        tokio::time::sleep(delay).await;
    }
    let response = answer(&state, &uri, &headers, call, &faults);
    let response = if call <= faults.truncate_first as u64 && response.status() == StatusCode::OK {
        truncate(response).await
    } else {
        response
    };
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        state.stats.throttled.fetch_add(1, Ordering::SeqCst);
    }
    record(&state, "GET", &uri, &headers, response.status().as_u16());
    response
}

async fn truncate(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(half))
}

fn answer(
    state: &SimState,
    uri: &Uri,
    headers: &HeaderMap,
    call: u64,
    faults: &Faults,
) -> Response {
    if let Some(after) = faults.revoke_after
        && call == after as u64 + 1
    {
        state
            .revoked_below
            .store(state.next_token.load(Ordering::SeqCst), Ordering::SeqCst);
    }
    let path = uri.path();
    let (audience, permission) = if path.starts_with("/v1.0/") {
        (GRAPH_AUDIENCE, "SecurityIncident.Read.All")
    } else {
        (DEFENDER_AUDIENCE, "Incident.Read.All")
    };
    // Authentication before anything else, as the real services do.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(bearer) = bearer else {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Authorization header is missing",
        );
    };
    let (roles, token_audience) = {
        let Ok(tokens) = state.tokens.lock() else {
            return api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "token table poisoned",
            );
        };
        match tokens.get(bearer) {
            Some(t)
                if t.expires > Instant::now()
                    && t.serial >= state.revoked_below.load(Ordering::SeqCst) =>
            {
                (t.roles.clone(), t.audience.clone())
            }
            _ => {
                return api_error(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    "The access token is invalid, expired or revoked",
                );
            }
        }
    };
    if faults.deny_tokens {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The access token was rejected (injected by the simulator)",
        );
    }
    if token_audience != audience {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            &format!("The token's audience {token_audience} is not {audience}"),
        );
    }
    if !roles.iter().any(|r| r == permission) {
        return api_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "The application does not have any of the required application permissions ({permission}) to access the resource."
            ),
        );
    }
    if faults.error_always || call <= faults.error_first as u64 {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "An unexpected error occurred (injected by the simulator)",
        );
    }
    if call <= faults.throttle_first as u64 {
        return throttled(faults.retry_after_secs);
    }
    let is_list = path == "/api/incidents" || path == "/v1.0/security/incidents";
    if state.config.rate_limits
        && let Some(wait) = rate_limited(state, is_list)
    {
        return throttled(wait.as_secs_f64().max(0.001));
    }
    let query: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let base = format!("http://{host}");
    match path {
        "/api/incidents" => list(state, &query, &base, false),
        "/v1.0/security/incidents" => list(state, &query, &base, true),
        _ => {
            if let Some(id) = path.strip_prefix("/api/incidents/") {
                return get(state, id, false, true);
            }
            if let Some(id) = path.strip_prefix("/v1.0/security/incidents/") {
                let expand = query.get("$expand").is_some_and(|e| e == "alerts");
                return get(state, id, true, expand);
            }
            api_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                &format!("Resource {path} was not found"),
            )
        }
    }
}

fn throttled(retry_after_secs: f64) -> Response {
    let mut response = api_error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Rate limit is exceeded. Try again later.",
    );
    if let Ok(value) = format!("{:.3}", retry_after_secs).parse() {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The published limits: list 50/min, get 100/min, 1,500/hour, per app and tenant.
fn rate_limited(state: &SimState, is_list: bool) -> Option<Duration> {
    let scale = state.config.time_scale;
    let minute = Duration::from_secs_f64(60.0 / scale);
    let hour = Duration::from_secs_f64(3600.0 / scale);
    let now = Instant::now();
    let mut calls = state.calls.lock().ok()?;
    calls.retain(|(t, _)| now.duration_since(*t) < hour);
    let recent = calls
        .iter()
        .filter(|(t, list)| *list == is_list && now.duration_since(*t) < minute);
    let in_minute: Vec<Instant> = recent.map(|(t, _)| *t).collect();
    let per_minute = if is_list { 50 } else { 100 };
    if in_minute.len() >= per_minute {
        return Some(minute.saturating_sub(now.duration_since(in_minute[0])));
    }
    if calls.len() >= 1500 {
        return Some(hour.saturating_sub(now.duration_since(calls[0].0)));
    }
    calls.push((now, is_list));
    None
}

fn list(state: &SimState, query: &HashMap<String, String>, base: &str, graph: bool) -> Response {
    let max_top = if graph { 50 } else { 100 };
    let top = match query.get("$top").map(|t| t.parse::<usize>()) {
        None => max_top,
        Some(Ok(t)) if t <= max_top && t > 0 => t,
        Some(Ok(t)) => {
            let message = format!(
                "The query specified in the URI is not valid. The limit of '{max_top}' for Top query has been exceeded. The value from the incoming request is '{t}'."
            );
            return api_error(
                StatusCode::BAD_REQUEST,
                if graph { "" } else { "InvalidRequest" },
                &message,
            );
        }
        Some(Err(_)) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "$top must be a positive integer",
            );
        }
    };
    let skip = match query.get("$skip").map(|s| s.parse::<usize>()) {
        None => 0,
        Some(Ok(s)) => s,
        Some(Err(_)) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "$skip must be a non-negative integer",
            );
        }
    };
    let filter = match query.get("$filter").map(|f| Filter::parse(f, graph)) {
        None => Filter::default(),
        Some(Ok(f)) => f,
        Some(Err(message)) => {
            return api_error(StatusCode::BAD_REQUEST, "InvalidRequest", &message);
        }
    };
    let expand = !graph || query.get("$expand").is_some_and(|e| e == "alerts");
    let tenant_id = &state.config.tenant_id;
    let Ok(mut incidents) = state.incidents.lock() else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "poisoned",
        );
    };
    let matching: Vec<&Value> = incidents
        .iter()
        .rev()
        .filter(|i| filter.matches(i))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(top)
        .map(|i| {
            if graph {
                data::to_graph(i, tenant_id, expand)
            } else {
                (*i).clone()
            }
        })
        .collect();
    let more = matching.len() > skip + top;
    let last_served = matching
        .get(skip + page.len().saturating_sub(1))
        .and_then(|i| i["incidentId"].as_u64());
    let mut body = json!({
        "@odata.context": if graph { format!("{base}/v1.0/$metadata#security/incidents") } else { format!("{base}/api/$metadata#Incidents") },
        "value": page,
    });
    if more {
        let mut next = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query {
            if k != "$skip" {
                next.append_pair(k, v);
            }
        }
        next.append_pair("$skip", &(skip + top).to_string());
        let path = if graph {
            "/v1.0/security/incidents"
        } else {
            "/api/incidents"
        };
        body["@odata.nextLink"] = json!(format!(
            "{base}{path}?{}",
            next.finish().replace('+', "%20")
        ));
    }
    if state.config.faults.churn && skip == 0 && state.churned.fetch_add(1, Ordering::SeqCst) == 0 {
        churn(state, &mut incidents, last_served);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A new incident arrives (ahead of everything in id order) and the last incident just served is
/// updated: `$skip` paging now serves that one again, newer, on the next page.
fn churn(state: &SimState, incidents: &mut Vec<Value>, last_served: Option<u64>) {
    let now = Timestamp::now();
    let next_id = incidents
        .iter()
        .filter_map(|i| i["incidentId"].as_u64())
        .max()
        .unwrap_or(100_000)
        + 1;
    let mut rng = fastrand::Rng::with_seed(state.config.seed ^ 0xc4a2);
    let fresh = data::incident(&mut rng, next_id, now, now, &state.config.tenant_id);
    incidents.push(fresh);
    if let Some(id) = last_served
        && let Some(incident) = incidents
            .iter_mut()
            .find(|i| i["incidentId"].as_u64() == Some(id))
    {
        incident["lastUpdateTime"] = json!(data::api_time(now));
    }
}

fn get(state: &SimState, id: &str, graph: bool, expand: bool) -> Response {
    let not_found = || {
        if graph {
            api_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("Incident {id} was not found"),
            )
        } else {
            api_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                &format!("Incident {id} was not found"),
            )
        }
    };
    let Ok(numeric) = id.parse::<u64>() else {
        return if graph {
            not_found()
        } else {
            api_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                &format!("'{id}' is not a valid incident id"),
            )
        };
    };
    let Ok(incidents) = state.incidents.lock() else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "poisoned",
        );
    };
    let Some(incident) = incidents
        .iter()
        .find(|i| i["incidentId"].as_u64() == Some(numeric))
    else {
        return not_found();
    };
    let body = if graph {
        let mut g = data::to_graph(incident, &state.config.tenant_id, expand);
        g["@odata.context"] =
            json!("https://graph.microsoft.com/v1.0/$metadata#security/incidents/$entity");
        g
    } else {
        let mut i = incident.clone();
        i["@odata.context"] =
            json!("https://api.security.microsoft.com/api/$metadata#Incidents/$entity");
        i
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The `$filter` subset: clauses joined by ` and `: `<time field> ge|gt|le|lt <timestamp>`,
/// `status eq '<value>'`, `assignedTo eq '<value>'`.
#[derive(Default)]
struct Filter {
    clauses: Vec<(String, String, FilterValue)>,
}

enum FilterValue {
    Time(Timestamp),
    Text(String),
}

impl Filter {
    fn parse(text: &str, graph: bool) -> Result<Filter, String> {
        let (time_fields, text_fields): (&[&str], &[&str]) = if graph {
            (
                &["createdDateTime", "lastUpdateDateTime"],
                &["status", "assignedTo"],
            )
        } else {
            (
                &["createdTime", "lastUpdateTime"],
                &["status", "assignedTo"],
            )
        };
        let mut clauses = Vec::new();
        for clause in text.split(" and ") {
            let parts: Vec<&str> = clause.trim().splitn(3, ' ').collect();
            let [field, op, value] = parts.as_slice() else {
                return Err(format!("Invalid filter clause '{clause}'"));
            };
            let value = if time_fields.contains(field) && ["ge", "gt", "le", "lt"].contains(op) {
                FilterValue::Time(
                    value
                        .parse()
                        .map_err(|_| format!("'{value}' is not a valid DateTimeOffset"))?,
                )
            } else if text_fields.contains(field) && *op == "eq" {
                let inner = value
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .ok_or_else(|| format!("'{value}' is not a quoted string"))?;
                if inner.replace("''", "").contains('\'') {
                    return Err(format!("Invalid string literal {value}"));
                }
                FilterValue::Text(inner.replace("''", "'"))
            } else {
                return Err(format!(
                    "Invalid filter clause '{clause}': unsupported property or operator"
                ));
            };
            let field = match *field {
                "createdDateTime" => "createdTime",
                "lastUpdateDateTime" => "lastUpdateTime",
                f => f,
            };
            clauses.push((field.to_string(), op.to_string(), value));
        }
        Ok(Filter { clauses })
    }

    fn matches(&self, incident: &Value) -> bool {
        self.clauses.iter().all(|(field, op, value)| match value {
            FilterValue::Time(bound) => {
                let Some(t) = incident[field.as_str()]
                    .as_str()
                    .and_then(|t| t.parse::<Timestamp>().ok())
                else {
                    return false;
                };
                match op.as_str() {
                    "ge" => t >= *bound,
                    "gt" => t > *bound,
                    "le" => t <= *bound,
                    _ => t < *bound,
                }
            }
            FilterValue::Text(want) => {
                let have = incident[field.as_str()].as_str().unwrap_or("");
                have.eq_ignore_ascii_case(want)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_unknown_ones_are_named() {
        let f = Faults::parse(&[
            "throttle=3".into(),
            "error=always".into(),
            "slow=250".into(),
            "churn".into(),
        ])
        .unwrap();
        assert_eq!(f.throttle_first, 3);
        assert!(f.error_always && f.churn);
        assert_eq!(f.slow, Some(Duration::from_millis(250)));
        assert!(
            Faults::parse(&["explode".into()])
                .unwrap_err()
                .starts_with("unknown fault \"explode\"")
        );
    }

    #[test]
    fn filters_compare_times_and_quoted_strings() {
        let f = Filter::parse(
            "lastUpdateTime ge 2026-11-26T08:00:00Z and status eq 'Active'",
            false,
        )
        .unwrap();
        assert!(f.matches(
            &json!({"lastUpdateTime": "2026-11-26T09:00:00.1234567Z", "status": "Active"})
        ));
        assert!(!f.matches(&json!({"lastUpdateTime": "2026-11-26T07:59:59Z", "status": "Active"})));
        assert!(
            !f.matches(&json!({"lastUpdateTime": "2026-11-26T09:00:00Z", "status": "Resolved"}))
        );
        assert!(Filter::parse("severity eq 'High'", false).is_err());
        assert!(Filter::parse("status eq 'A' or 1 eq 1'", false).is_err());
    }
}
