//! A deterministic stand-in for Microsoft Entra ID (client-credentials tokens), the Defender XDR
//! incidents API and the Microsoft Graph security incidents API, on loopback: for the demo, the
//! tests, and anyone writing a skill.
//!
//! This crate owns the simulated services end to end: the generated incidents ([`data`]), the
//! token endpoint, the incident list and get endpoints, the checks the real services make (client
//! credentials, token audience and `roles`, `$top` limits, rate limits) and their answer shapes,
//! the misbehaviour it injects on purpose ([`Faults`]: throttling, server errors, slow, malformed,
//! cut, reset or stalled answers, tokens revoked mid-run, incidents that move between pages), and
//! the counters of what it saw ([`Stats`]) that tests assert on.
//!
//! It depends on no other skillhost crate. `skillhost simulate` parses its own flags into a
//! [`SimulatorConfig`] and calls [`serve`]; tests and the demo run one in a thread of its own with
//! [`Simulator::start`] and point a connection at it with [`Simulator::connection_toml`].

#![warn(missing_docs)]

pub mod data;

pub use data::Detail;
mod filter;
mod wire;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use crate::filter::Filter;
use crate::wire::{ResetListener, ResetSwitch, ShortBody};

/// The app registration the simulator accepts by default.
pub const DEFAULT_TENANT_ID: &str = "6f1c2b7e-5d4a-4c3b-9e8f-0a1b2c3d4e5f";
/// Default application (client) id.
pub const DEFAULT_CLIENT_ID: &str = "0d3e9a42-7b1c-4f6e-8a2d-5c4b3a291807";
/// Default client secret (a fixture of the simulator, not a real credential).
pub const DEFAULT_CLIENT_SECRET: &str = "simulated-client-secret";
const DEFENDER_AUDIENCE: &str = "https://api.security.microsoft.com";
const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";

/// The latency `mix` adds.
const MIX_LATENCY: Duration = Duration::from_millis(300);
/// The `Retry-After` of the 429s `mix` injects, seconds.
const MIX_RETRY_AFTER_SECS: f64 = 0.05;
/// Mixed into the configured seed so that the fault draws do not mirror the data's.
const MIX_SEED_SALT: u64 = 0x6d69_785f_6661_756c;
/// How long a cut or reset body waits after its first half before the connection goes, so that
/// the half is flushed to the client first.
const SHORT_BODY_PAUSE: Duration = Duration::from_millis(50);
/// How long a stalled body stays silent when the simulator is not stopped first.
const STALL: Duration = Duration::from_secs(3600);

/// Misbehaviour to inject, counted from the simulator's start.
///
/// API calls are numbered from 1 in the order they arrive; token requests are not counted.
/// Status faults (`error`, `throttle`, and the 500s and 429s of `mix`) apply only to calls whose
/// token was accepted. Body faults (`truncate`, `cut-every`, `reset-every`, `stall-every`, and the
/// body faults of `mix`) apply only to answers of the list and get endpoints that would have been
/// `200`; when several pick the same call, the first in that order wins, then `mix`'s.
///
/// | item | effect |
/// |---|---|
/// | `throttle=N` | the first N API calls get 429 with `Retry-After: retry-after` |
/// | `retry-after=SECS` | the `Retry-After` of `throttle`'s 429s (default 1; fractions allowed) |
/// | `error=N` / `error=always` | the first N (or every) API calls get 500 |
/// | `slow=MS` | every API answer is delayed |
/// | `truncate=N` | the first N answers carry half their body, as a complete but malformed JSON |
/// | `revoke-after=N` | after N API calls, every token issued so far is revoked (401) |
/// | `churn` | after the first page of a list, an incident arrives and the last one served changes |
/// | `deny-tokens` | every API call gets 401 |
/// | `cut-every=N` | every Nth API call announces its full `Content-Length`, sends half the body, closes |
/// | `reset-every=N` | every Nth API call announces its full length, sends half, resets (TCP RST) |
/// | `stall-every=N` | every Nth API call announces its full length, sends half, then stays silent |
/// | `mix=PERCENT` | PERCENT% of API calls get one fault drawn from a generator seeded by the seed |
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
    /// Cut the body of the first N API answers in half (the half is sent whole, with its own
    /// length: a complete answer holding malformed JSON).
    pub truncate_first: u32,
    /// After N API calls, revoke every token issued so far (they then get 401).
    pub revoke_after: Option<u32>,
    /// After the first page of a list, create a new incident and update the last one served,
    /// so that `$skip` paging serves that one again on the next page.
    pub churn: bool,
    /// Every Nth API call (0: none) answers 200 announcing the full `Content-Length` of its body,
    /// sends the first half of the body, then the connection is aborted (closed without the
    /// rest): the client sees a body shorter than announced, then the end of the stream.
    pub cut_every: u32,
    /// Every Nth API call (0: none) answers like `cut_every`, but the connection ends with a TCP
    /// reset (`SO_LINGER 0`) instead of a close: the client's read fails (connection reset).
    pub reset_every: u32,
    /// Every Nth API call (0: none) announces the full length, sends the first half of the body,
    /// then stays silent with the connection open, for an hour or until the simulator stops
    /// (then the connection is aborted, as for `cut_every`).
    pub stall_every: u32,
    /// On this percentage (0–100) of API calls, inject one fault drawn at random among: 500, 429
    /// (`Retry-After: 0.050`), cut body, reset body, malformed JSON (as `truncate`), 300 ms of
    /// latency. Which calls and which faults come from a generator seeded from
    /// [`SimulatorConfig::seed`]: the same seed gives the Nth call the same draw. Never stalls.
    pub mix_percent: u32,
}

impl Faults {
    /// Parses `name=value` items: `throttle=N`, `retry-after=SECS`, `error=N|always`,
    /// `slow=MS`, `truncate=N`, `revoke-after=N`, `churn`, `deny-tokens`, `cut-every=N`,
    /// `reset-every=N`, `stall-every=N` (N at least 1) and `mix=PERCENT` (0 to 100).
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
            let every = || match number()? {
                0 => Err(format!("fault {item:?}: N must be at least 1")),
                n => Ok(n),
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
                "cut-every" => faults.cut_every = every()?,
                "reset-every" => faults.reset_every = every()?,
                "stall-every" => faults.stall_every = every()?,
                "mix" => {
                    faults.mix_percent = match value.parse::<u32>() {
                        Ok(percent) if percent <= 100 => percent,
                        _ => return Err(format!("fault {item:?}: not a percentage (0 to 100)")),
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown fault {item:?}; known: throttle=N, retry-after=SECS, error=N|always, slow=MS, truncate=N, revoke-after=N, churn, deny-tokens, cut-every=N, reset-every=N, stall-every=N, mix=PERCENT"
                    ));
                }
            }
        }
        Ok(faults)
    }
}

/// One fault `mix` can draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mixed {
    ServerError,
    Throttle,
    Cut,
    Reset,
    Malformed,
    Latency,
}

impl Mixed {
    const ALL: [Mixed; 6] = [
        Mixed::ServerError,
        Mixed::Throttle,
        Mixed::Cut,
        Mixed::Reset,
        Mixed::Malformed,
        Mixed::Latency,
    ];

    /// The draw for the next call: a fault on `percent`% of calls.
    fn roll(rng: &mut fastrand::Rng, percent: u32) -> Option<Mixed> {
        if percent == 0 || rng.u32(0..100) >= percent {
            return None;
        }
        Some(Mixed::ALL[rng.usize(0..Mixed::ALL.len())])
    }
}

/// What happens to the body of a `200` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFault {
    /// Half the body, sent as a whole answer of that length.
    Malformed,
    /// The full length announced, half sent, connection closed.
    Cut,
    /// The full length announced, half sent, connection reset.
    Reset,
    /// The full length announced, half sent, then silence.
    Stall,
}

impl BodyFault {
    /// The body fault of API call number `call`, if any.
    fn pick(call: u64, faults: &Faults, mixed: Option<Mixed>) -> Option<BodyFault> {
        let every = |n: u32| n > 0 && call.is_multiple_of(u64::from(n));
        if call <= u64::from(faults.truncate_first) {
            Some(BodyFault::Malformed)
        } else if every(faults.cut_every) {
            Some(BodyFault::Cut)
        } else if every(faults.reset_every) {
            Some(BodyFault::Reset)
        } else if every(faults.stall_every) {
            Some(BodyFault::Stall)
        } else {
            match mixed {
                Some(Mixed::Cut) => Some(BodyFault::Cut),
                Some(Mixed::Reset) => Some(BodyFault::Reset),
                Some(Mixed::Malformed) => Some(BodyFault::Malformed),
                _ => None,
            }
        }
    }
}

/// Everything that defines a simulator run.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Incidents to generate.
    pub incidents: usize,
    /// Seed of the generator (of the data, and of the faults `mix` draws).
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
    /// Divides the rate-limit windows, to test pacing without waiting minutes. Must be positive.
    pub time_scale: f64,
    /// Injected faults.
    pub faults: Faults,
    /// How much each incident carries.
    pub detail: Detail,
    /// Incidents created and updated while the simulator runs, if any.
    pub live: Option<Live>,
}

/// Incidents that change while runs page through them: every `every`, one incident is created
/// or an existing one updated (its `lastUpdateTime` set to that moment), and the new version
/// becomes visible on the API only `visibility_delay` later, as the real service indexes
/// updates with a lag: a version can appear with a `lastUpdateTime` behind what a reader has
/// already seen. [`Stats::versions`] is the ground truth of every version.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Live {
    /// How often an incident is created or updated.
    pub every: Duration,
    /// How long after its `lastUpdateTime` a version becomes visible.
    pub visibility_delay: Duration,
}

/// One version of one incident, as the ground truth of a live simulator records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The incident's id.
    pub id: u64,
    /// The version's `lastUpdateTime`, as the API spells it.
    pub last_update_time: String,
    /// When it became (or becomes) visible on the API.
    pub visible_at: Timestamp,
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
            detail: Detail::Compact,
            live: None,
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
    /// Every version of every incident, in the order they were made (the generated ones first).
    pub versions: Mutex<Vec<Version>>,
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

    /// A copy of the ground truth: every version of every incident so far.
    pub fn versions(&self) -> Vec<Version> {
        self.versions.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// Where a generated connection's client secret is read from.
#[derive(Debug, Clone, Copy)]
pub enum SecretRef<'a> {
    /// An environment variable of the host: `client_secret = { env = "NAME" }`.
    Env(&'a str),
    /// A file: `client_secret = { file = "PATH" }` (a path that is not UTF-8 is written lossily).
    File(&'a std::path::Path),
}

struct IssuedToken {
    audience: String,
    roles: Vec<String>,
    /// `None`: the lifetime reaches past what the clock can represent.
    expires: Option<Instant>,
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
    /// The generator of `mix`'s draws; API calls are numbered under its lock, so that the Nth
    /// call gets the Nth draw.
    mix: Mutex<fastrand::Rng>,
    /// Turns true when the simulator stops (stalled answers then end).
    stopping: watch::Receiver<bool>,
    stats: Arc<Stats>,
    /// The served text of incidents, by (id, `lastUpdateTime`, Graph form, alerts expanded):
    /// whatever changes an incident changes its `lastUpdateTime`, as on the real API, so a text
    /// found here is never stale. Pages are then joined from texts instead of cloned and
    /// serialized again on every call, so that the simulator costs little next to what a
    /// benchmark measures.
    rendered: Mutex<HashMap<RenderKey, Arc<str>>>,
    /// Versions made but not visible yet, in the order they become visible.
    pending: Mutex<Vec<(Timestamp, Value)>>,
}

/// An incident's id and `lastUpdateTime`, whether in Graph's form, whether with its alerts.
type RenderKey = (u64, String, bool, bool);

/// Entries of [`SimState::rendered`] past which it is emptied (about a gigabyte of realistic
/// incidents at the most).
const RENDERED_CAP: usize = 100_000;

/// A running simulator.
pub struct Simulator {
    addr: SocketAddr,
    tenant_id: String,
    client_id: String,
    stats: Arc<Stats>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Simulator {
    /// Starts a simulator on `listen` (port 0: any free port) in a thread of its own, so that
    /// synchronous tests can use it. It stops when dropped.
    pub fn start(config: SimulatorConfig, listen: &str) -> io::Result<Simulator> {
        let std_listener = std::net::TcpListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let tenant_id = config.tenant_id.clone();
        let client_id = config.client_id.clone();
        let (state, stopping) = new_state(config)?;
        let stats = state.stats.clone();
        let (tx, rx) = oneshot::channel::<()>();
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
                    let stop = async {
                        let _ = rx.await;
                    };
                    let _ = run(listener, state, stopping, stop).await;
                });
            })?;
        Ok(Simulator {
            addr,
            tenant_id,
            client_id,
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

    /// A `[connections.NAME]` table (TOML) pointing login, defender and graph endpoints at this
    /// simulator, with its tenant and client ids; `extra` is inserted verbatim as lines inside the
    /// connection's table (before the endpoints sub-table). The text ends with a newline.
    ///
    /// `name` is written as a bare key when it is one (letters, digits, `_`, `-`), quoted
    /// otherwise; the other values are written as TOML basic strings.
    pub fn connection_toml(
        &self,
        name: &str,
        tenant: &str,
        api: &str,
        secret: SecretRef<'_>,
        extra: &str,
    ) -> String {
        let key = toml_key(name);
        let base = toml_string(&self.base_url());
        let secret = match secret {
            SecretRef::Env(var) => format!("{{ env = {} }}", toml_string(var)),
            SecretRef::File(path) => {
                format!("{{ file = {} }}", toml_string(&path.to_string_lossy()))
            }
        };
        format!(
            "[connections.{key}]\n\
             tenant = {tenant}\n\
             tenant_id = {tenant_id}\n\
             client_id = {client_id}\n\
             client_secret = {secret}\n\
             api = {api}\n\
             {extra}\n\
             [connections.{key}.endpoints]\n\
             login = {base}\n\
             defender = {base}\n\
             graph = {base}\n",
            tenant = toml_string(tenant),
            tenant_id = toml_string(&self.tenant_id),
            client_id = toml_string(&self.client_id),
            api = toml_string(api),
        )
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

/// Serves the simulator described by `config` on `listener` until `shutdown` completes (then
/// finishes the answers under way; stalled ones end at once). This is `skillhost simulate`.
///
/// Fails with [`io::ErrorKind::InvalidInput`] when `config.time_scale` is not positive.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: SimulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (state, stopping) = new_state(config)?;
    run(listener, state, stopping, shutdown).await
}

async fn run(
    listener: tokio::net::TcpListener,
    state: Arc<SimState>,
    stopping: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    if let Some(live) = state.config.live {
        tokio::spawn(live_loop(state.clone(), live));
    }
    let app = router(state).into_make_service_with_connect_info::<ResetSwitch>();
    axum::serve(ResetListener(listener), app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Stalled answers must end too, or the graceful shutdown would wait for them.
            let _ = stopping.send(true);
        })
        .await
}

fn new_state(config: SimulatorConfig) -> io::Result<(Arc<SimState>, watch::Sender<bool>)> {
    if config.time_scale.is_nan() || config.time_scale <= 0.0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the time scale must be positive",
        ));
    }
    let anchor = config.anchor.unwrap_or_else(Timestamp::now);
    let incidents = data::generate(
        config.incidents,
        config.seed,
        anchor,
        &config.tenant_id,
        config.detail,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let mix = fastrand::Rng::with_seed(config.seed ^ MIX_SEED_SALT);
    let stats = Stats::default();
    if let Ok(mut versions) = stats.versions.lock() {
        let started = Timestamp::now();
        versions.extend(incidents.iter().filter_map(|i| version_of(i, started)));
    }
    let state = Arc::new(SimState {
        config,
        incidents: Mutex::new(incidents),
        tokens: Mutex::new(HashMap::new()),
        revoked_below: AtomicU64::new(0),
        next_token: AtomicU64::new(1),
        calls: Mutex::new(Vec::new()),
        churned: AtomicU64::new(0),
        mix: Mutex::new(mix),
        stopping: stop_rx,
        stats: Arc::new(stats),
        rendered: Mutex::new(HashMap::new()),
        pending: Mutex::new(Vec::new()),
    });
    Ok((state, stop_tx))
}

fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .fallback(api)
        .with_state(state)
}

/// `text` as a TOML basic string: quoted, with backslashes, double quotes and control characters
/// escaped.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `name` as a TOML key: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_string()
    } else {
        toml_string(name)
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
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

// ---- Entra ID: the token endpoint ----

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
    json_response(status, &body)
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
    let lifetime_secs = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
    let exp = Timestamp::now().as_second().saturating_add(lifetime_secs);
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
                expires: Instant::now().checked_add(lifetime),
                serial,
            },
        );
    }
    let body = json!({"token_type": "Bearer", "expires_in": lifetime.as_secs(), "ext_expires_in": lifetime.as_secs(), "access_token": token});
    json_response(StatusCode::OK, &body)
}

// ---- The incident APIs ----

fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "target": "00000000-0000-0000-0000-000000000000"}});
    json_response(status, &body)
}

/// An API error answer, not yet rendered.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        api_error(self.status, self.code, &self.message)
    }
}

async fn api(
    State(state): State<Arc<SimState>>,
    ConnectInfo(reset): ConnectInfo<ResetSwitch>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (call, mixed) = number_call(&state);
    let faults = &state.config.faults;
    if let Some(delay) = faults.slow {
        tokio::time::sleep(delay).await;
    }
    if mixed == Some(Mixed::Latency) {
        tokio::time::sleep(MIX_LATENCY).await;
    }
    let response = answer(&state, &uri, &headers, call, mixed);
    let response = match BodyFault::pick(call, faults, mixed) {
        Some(fault) if response.status() == StatusCode::OK => {
            spoil_body(&state, response, fault, &reset).await
        }
        _ => response,
    };
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        state.stats.throttled.fetch_add(1, Ordering::SeqCst);
    }
    record(&state, "GET", &uri, &headers, response.status().as_u16());
    response
}

/// Counts an API call: its number (from 1) and `mix`'s draw for it.
fn number_call(state: &SimState) -> (u64, Option<Mixed>) {
    let mut rng = state.mix.lock().unwrap_or_else(PoisonError::into_inner);
    let call = state.stats.api_calls.fetch_add(1, Ordering::SeqCst) + 1;
    (call, Mixed::roll(&mut rng, state.config.faults.mix_percent))
}

/// The answer to API call number `call`, before any body fault.
fn answer(
    state: &SimState,
    uri: &Uri,
    headers: &HeaderMap,
    call: u64,
    mixed: Option<Mixed>,
) -> Response {
    let faults = &state.config.faults;
    if let Some(after) = faults.revoke_after
        && call == after as u64 + 1
    {
        state
            .revoked_below
            .store(state.next_token.load(Ordering::SeqCst), Ordering::SeqCst);
    }
    let path = uri.path();
    // Authentication before anything else, as the real services do.
    if let Err(refusal) = authenticate(state, headers, path) {
        return refusal.into_response();
    }
    if let Some(injected) = injected_status(faults, call, mixed) {
        return injected;
    }
    let is_list = path == "/api/incidents" || path == "/v1.0/security/incidents";
    if state.config.rate_limits
        && let Some(wait) = rate_limited(state, is_list)
    {
        return throttled(wait.as_secs_f64().max(0.001));
    }
    route(state, uri, headers)
}

/// Checks the bearer token of a call to `path`: issued here, unexpired, not revoked, for the
/// API's audience and with its permission among the roles. The error is the answer to give.
fn authenticate(state: &SimState, headers: &HeaderMap, path: &str) -> Result<(), Refusal> {
    let (audience, permission) = if path.starts_with("/v1.0/") {
        (GRAPH_AUDIENCE, "SecurityIncident.Read.All")
    } else {
        (DEFENDER_AUDIENCE, "Incident.Read.All")
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(bearer) = bearer else {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Authorization header is missing",
        ));
    };
    let (roles, token_audience) = token_grant(state, bearer)?;
    if state.config.faults.deny_tokens {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The access token was rejected (injected by the simulator)",
        ));
    }
    if token_audience != audience {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            format!("The token's audience {token_audience} is not {audience}"),
        ));
    }
    if !roles.iter().any(|r| r == permission) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "The application does not have any of the required application permissions ({permission}) to access the resource."
            ),
        ));
    }
    Ok(())
}

/// The roles and audience of a live token this simulator issued.
fn token_grant(state: &SimState, bearer: &str) -> Result<(Vec<String>, String), Refusal> {
    let Ok(tokens) = state.tokens.lock() else {
        return Err(Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "token table poisoned",
        ));
    };
    match tokens.get(bearer) {
        Some(t)
            if t.expires.is_none_or(|expires| expires > Instant::now())
                && t.serial >= state.revoked_below.load(Ordering::SeqCst) =>
        {
            Ok((t.roles.clone(), t.audience.clone()))
        }
        _ => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The access token is invalid, expired or revoked",
        )),
    }
}

/// The injected 500 or 429 of call number `call`, if any.
fn injected_status(faults: &Faults, call: u64, mixed: Option<Mixed>) -> Option<Response> {
    if faults.error_always || call <= faults.error_first as u64 {
        return Some(server_error());
    }
    if call <= faults.throttle_first as u64 {
        return Some(throttled(faults.retry_after_secs));
    }
    match mixed {
        Some(Mixed::ServerError) => Some(server_error()),
        Some(Mixed::Throttle) => Some(throttled(MIX_RETRY_AFTER_SECS)),
        _ => None,
    }
}

fn server_error() -> Response {
    api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        "An unexpected error occurred (injected by the simulator)",
    )
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
    let window = |secs: f64| Duration::try_from_secs_f64(secs / scale).unwrap_or(Duration::MAX);
    let minute = window(60.0);
    let hour = window(3600.0);
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

/// The answer of the endpoint `uri` names, for an authenticated call.
fn route(state: &SimState, uri: &Uri, headers: &HeaderMap) -> Response {
    let path = uri.path();
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

/// The paging and filtering options of a list call.
struct ListRequest {
    top: usize,
    skip: usize,
    filter: Filter,
    /// Whether incidents carry their alerts (always for Defender, `$expand=alerts` for Graph).
    expand: bool,
}

impl ListRequest {
    /// Reads `$top`, `$skip`, `$filter` and `$expand`; the error is the answer to give.
    fn parse(query: &HashMap<String, String>, graph: bool) -> Result<ListRequest, Refusal> {
        let max_top = if graph { 50 } else { 100 };
        let top = match query.get("$top").map(|t| t.parse::<usize>()) {
            None => max_top,
            Some(Ok(t)) if t <= max_top && t > 0 => t,
            Some(Ok(t)) => {
                let message = format!(
                    "The query specified in the URI is not valid. The limit of '{max_top}' for Top query has been exceeded. The value from the incoming request is '{t}'."
                );
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    if graph { "" } else { "InvalidRequest" },
                    message,
                ));
            }
            Some(Err(_)) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "$top must be a positive integer",
                ));
            }
        };
        let skip = match query.get("$skip").map(|s| s.parse::<usize>()) {
            None => 0,
            Some(Ok(s)) => s,
            Some(Err(_)) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "$skip must be a non-negative integer",
                ));
            }
        };
        let filter = match query.get("$filter").map(|f| Filter::parse(f, graph)) {
            None => Filter::default(),
            Some(Ok(f)) => f,
            Some(Err(message)) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    message,
                ));
            }
        };
        let expand = !graph || query.get("$expand").is_some_and(|e| e == "alerts");
        Ok(ListRequest {
            top,
            skip,
            filter,
            expand,
        })
    }
}

fn list(state: &SimState, query: &HashMap<String, String>, base: &str, graph: bool) -> Response {
    let request = match ListRequest::parse(query, graph) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    let Ok(mut incidents) = state.incidents.lock() else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "poisoned",
        );
    };
    promote(state, &mut incidents);
    let (body, last_served) = list_page(state, &incidents, &request, query, base, graph);
    if state.config.faults.churn
        && request.skip == 0
        && state.churned.fetch_add(1, Ordering::SeqCst) == 0
    {
        churn(state, &mut incidents, last_served);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The page `request` selects (newest first), with a next link when more match, and the id of
/// the last incident on it.
fn list_page(
    state: &SimState,
    incidents: &[Value],
    request: &ListRequest,
    query: &HashMap<String, String>,
    base: &str,
    graph: bool,
) -> (String, Option<u64>) {
    let (top, skip) = (request.top, request.skip);
    let matching: Vec<&Value> = incidents
        .iter()
        .rev()
        .filter(|i| request.filter.matches(i))
        .collect();
    let context = if graph {
        format!("{base}/v1.0/$metadata#security/incidents")
    } else {
        format!("{base}/api/$metadata#Incidents")
    };
    let mut body = format!("{{\"@odata.context\":{},\"value\":[", json!(context));
    let mut served = 0usize;
    for (n, incident) in matching.iter().skip(skip).take(top).enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str(&rendered(state, incident, graph, request.expand));
        served += 1;
    }
    body.push(']');
    let last_served = matching
        .get(skip + served.saturating_sub(1))
        .and_then(|i| i["incidentId"].as_u64());
    if matching.len() > skip + top {
        let link = next_link(query, base, graph, skip + top);
        body.push_str(&format!(",\"@odata.nextLink\":{}", json!(link)));
    }
    body.push('}');
    (body, last_served)
}

/// The served text of `incident` (legacy shape) in the form asked for, from the cache when there.
fn rendered(state: &SimState, incident: &Value, graph: bool, expand: bool) -> Arc<str> {
    let key = (
        incident["incidentId"].as_u64().unwrap_or_default(),
        incident["lastUpdateTime"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        graph,
        expand,
    );
    let mut cache = state
        .rendered
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(text) = cache.get(&key) {
        return text.clone();
    }
    let text: Arc<str> = if graph {
        data::to_graph(
            incident,
            &state.config.tenant_id,
            expand,
            state.config.detail,
        )
        .to_string()
    } else {
        incident.to_string()
    }
    .into();
    if cache.len() >= RENDERED_CAP {
        cache.clear();
    }
    cache.insert(key, text.clone());
    text
}

/// The id a new incident gets: one past the highest of `incidents` (ids start at 100,001).
fn next_id<'a>(incidents: impl Iterator<Item = &'a Value>) -> u64 {
    incidents
        .filter_map(|i| i["incidentId"].as_u64())
        .max()
        .unwrap_or(100_000)
        + 1
}

/// Salt of the live simulator's generator, so its draws differ from the data's and the faults'.
const LIVE_SEED_SALT: u64 = 0x11fe_5eed;

/// The ground-truth record of `incident`'s current version, visible from `at`.
fn version_of(incident: &Value, at: Timestamp) -> Option<Version> {
    Some(Version {
        id: incident["incidentId"].as_u64()?,
        last_update_time: incident["lastUpdateTime"].as_str()?.to_string(),
        visible_at: at,
    })
}

/// Makes the versions whose time has come visible: each replaces its incident's (or is new).
fn promote(state: &SimState, incidents: &mut Vec<Value>) {
    let now = Timestamp::now();
    let mut pending = state.pending.lock().unwrap_or_else(PoisonError::into_inner);
    let due = pending.iter().take_while(|(at, _)| *at <= now).count();
    for (_, version) in pending.drain(..due) {
        let id = version["incidentId"].as_u64();
        match incidents
            .iter_mut()
            .find(|i| i["incidentId"].as_u64() == id)
        {
            Some(incident) => *incident = version,
            None => incidents.push(version),
        }
    }
}

/// Every `live.every`, until the simulator stops: one incident created or updated.
async fn live_loop(state: Arc<SimState>, live: Live) {
    let mut rng = fastrand::Rng::with_seed(state.config.seed ^ LIVE_SEED_SALT);
    let mut ticks = tokio::time::interval(live.every.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let delay = SignedDuration::try_from(live.visibility_delay).unwrap_or(SignedDuration::ZERO);
    loop {
        ticks.tick().await;
        if *state.stopping.borrow() {
            return;
        }
        live_change(&state, &mut rng, delay);
    }
}

/// Creates an incident (one time in three, or when there is none) or updates the latest version
/// of a random one, visible `delay` from now; records the version in the ground truth.
fn live_change(state: &SimState, rng: &mut fastrand::Rng, delay: SignedDuration) {
    let now = Timestamp::now();
    let Ok(mut incidents) = state.incidents.lock() else {
        return;
    };
    promote(state, &mut incidents);
    let mut pending = state.pending.lock().unwrap_or_else(PoisonError::into_inner);
    let next_id = next_id(incidents.iter().chain(pending.iter().map(|(_, v)| v)));
    let version = if incidents.is_empty() || rng.u32(0..3) == 0 {
        data::incident(
            rng,
            next_id,
            now,
            now,
            &state.config.tenant_id,
            state.config.detail,
        )
    } else {
        let id = incidents[rng.usize(0..incidents.len())]["incidentId"].as_u64();
        // The latest version of that incident: a pending one if it has one.
        let latest = pending
            .iter()
            .rev()
            .map(|(_, v)| v)
            .chain(incidents.iter())
            .find(|v| v["incidentId"].as_u64() == id);
        let Some(mut version) = latest.cloned() else {
            return;
        };
        version["lastUpdateTime"] = json!(data::api_time(now));
        version["status"] = json!(["Active", "InProgress", "Resolved"][rng.usize(0..3)]);
        version
    };
    let visible_at = now.checked_add(delay).unwrap_or(now);
    if let (Some(record), Ok(mut versions)) = (
        version_of(&version, visible_at),
        state.stats.versions.lock(),
    ) {
        versions.push(record);
    }
    pending.push((visible_at, version));
}

/// The same query with `$skip=next_skip`.
fn next_link(query: &HashMap<String, String>, base: &str, graph: bool, next_skip: usize) -> String {
    let mut next = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        if k != "$skip" {
            next.append_pair(k, v);
        }
    }
    next.append_pair("$skip", &next_skip.to_string());
    let path = if graph {
        "/v1.0/security/incidents"
    } else {
        "/api/incidents"
    };
    format!("{base}{path}?{}", next.finish().replace('+', "%20"))
}

/// A new incident arrives (ahead of everything in id order) and the last incident just served is
/// updated: `$skip` paging now serves that one again, newer, on the next page.
fn churn(state: &SimState, incidents: &mut Vec<Value>, last_served: Option<u64>) {
    let now = Timestamp::now();
    let next_id = next_id(incidents.iter());
    let mut rng = fastrand::Rng::with_seed(state.config.seed ^ 0xc4a2);
    let fresh = data::incident(
        &mut rng,
        next_id,
        now,
        now,
        &state.config.tenant_id,
        state.config.detail,
    );
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
    let Ok(mut incidents) = state.incidents.lock() else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "poisoned",
        );
    };
    promote(state, &mut incidents);
    let Some(incident) = incidents
        .iter()
        .find(|i| i["incidentId"].as_u64() == Some(numeric))
    else {
        return not_found();
    };
    let body = if graph {
        let mut g = data::to_graph(
            incident,
            &state.config.tenant_id,
            expand,
            state.config.detail,
        );
        g["@odata.context"] =
            json!("https://graph.microsoft.com/v1.0/$metadata#security/incidents/$entity");
        g
    } else {
        let mut i = incident.clone();
        i["@odata.context"] =
            json!("https://api.security.microsoft.com/api/$metadata#Incidents/$entity");
        i
    };
    json_response(StatusCode::OK, &body)
}

// ---- Body faults ----

/// `response` (a `200`) with `fault` applied to its body; `reset` belongs to its connection.
async fn spoil_body(
    state: &SimState,
    response: Response,
    fault: BodyFault,
    reset: &ResetSwitch,
) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    if fault == BodyFault::Malformed {
        // The half goes out as a whole answer (its own length): complete, but not JSON.
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(half));
    }
    let announced = bytes.len() as u64;
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(announced));
    let body = match fault {
        BodyFault::Stall => {
            let mut stopping = state.stopping.clone();
            ShortBody::new(half, announced, async move {
                let _ = tokio::time::timeout(STALL, stopping.wait_for(|stop| *stop)).await;
            })
        }
        BodyFault::Reset => {
            reset.arm();
            ShortBody::new(half, announced, tokio::time::sleep(SHORT_BODY_PAUSE))
        }
        BodyFault::Cut | BodyFault::Malformed => {
            ShortBody::new(half, announced, tokio::time::sleep(SHORT_BODY_PAUSE))
        }
    };
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream;

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
    fn resilience_faults_parse_and_bad_values_are_refused() {
        let f = Faults::parse(&[
            "cut-every=3".into(),
            "reset-every=4".into(),
            "stall-every=5".into(),
            "mix=25".into(),
        ])
        .unwrap();
        assert_eq!(
            f,
            Faults {
                retry_after_secs: 1.0,
                cut_every: 3,
                reset_every: 4,
                stall_every: 5,
                mix_percent: 25,
                ..Faults::default()
            }
        );
        assert_eq!(
            Faults::parse(&["cut-every=0".into()]).unwrap_err(),
            "fault \"cut-every=0\": N must be at least 1"
        );
        assert_eq!(
            Faults::parse(&["stall-every=x".into()]).unwrap_err(),
            "fault \"stall-every=x\": \"x\" is not a count"
        );
        assert_eq!(
            Faults::parse(&["mix=101".into()]).unwrap_err(),
            "fault \"mix=101\": not a percentage (0 to 100)"
        );
        let unknown = Faults::parse(&["cut".into()]).unwrap_err();
        assert!(
            unknown.ends_with("cut-every=N, reset-every=N, stall-every=N, mix=PERCENT"),
            "{unknown}"
        );
    }

    #[test]
    fn connection_toml_points_every_endpoint_at_the_simulator() {
        let config = SimulatorConfig {
            tenant_id: "tid".into(),
            client_id: "cid".into(),
            ..quiet_config()
        };
        let sim = Simulator::start(config, "127.0.0.1:0").unwrap();
        let base = sim.base_url();
        assert_eq!(
            sim.connection_toml("sim", "acme", "defender", SecretRef::Env("X"), ""),
            format!(
                "[connections.sim]\n\
                 tenant = \"acme\"\n\
                 tenant_id = \"tid\"\n\
                 client_id = \"cid\"\n\
                 client_secret = {{ env = \"X\" }}\n\
                 api = \"defender\"\n\
                 \n\
                 [connections.sim.endpoints]\n\
                 login = \"{base}\"\n\
                 defender = \"{base}\"\n\
                 graph = \"{base}\"\n"
            )
        );
        let path = std::path::Path::new("/tmp/a \"b\"\\c");
        assert_eq!(
            sim.connection_toml(
                "my sim",
                "acme",
                "graph",
                SecretRef::File(path),
                "max_response_bytes = 10"
            ),
            format!(
                "[connections.\"my sim\"]\n\
                 tenant = \"acme\"\n\
                 tenant_id = \"tid\"\n\
                 client_id = \"cid\"\n\
                 client_secret = {{ file = \"/tmp/a \\\"b\\\"\\\\c\" }}\n\
                 api = \"graph\"\n\
                 max_response_bytes = 10\n\
                 [connections.\"my sim\".endpoints]\n\
                 login = \"{base}\"\n\
                 defender = \"{base}\"\n\
                 graph = \"{base}\"\n"
            )
        );
    }

    /// A response as a raw client saw it.
    struct Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        /// How the stream ended: `None` for a clean end of stream, else the read error.
        ended: Option<ErrorKind>,
        elapsed: Duration,
    }

    impl Raw {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn content_length(&self) -> usize {
            self.header("content-length").unwrap().parse().unwrap()
        }

        fn json(&self) -> Option<Value> {
            serde_json::from_slice(&self.body).ok()
        }
    }

    /// Sends `request` over a fresh connection, reads until the stream ends, fails or stays
    /// silent for `patience`.
    fn exchange(sim: &Simulator, request: &str, patience: Duration) -> (Raw, TcpStream) {
        let started = Instant::now();
        let mut stream = TcpStream::connect(sim.addr).unwrap();
        stream.set_read_timeout(Some(patience)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut received = Vec::new();
        let mut chunk = [0u8; 16384];
        let ended = loop {
            match stream.read(&mut chunk) {
                Ok(0) => break None,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Some(e.kind()),
            }
        };
        let elapsed = started.elapsed();
        let split = received
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head");
        let head = String::from_utf8(received[..split].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let raw = Raw {
            status: status.parse().unwrap(),
            headers,
            body: received[split + 4..].to_vec(),
            ended,
            elapsed,
        };
        (raw, stream)
    }

    fn token_for(sim: &Simulator) -> String {
        let form = format!(
            "grant_type=client_credentials&client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&scope=https%3A%2F%2Fapi.security.microsoft.com%2F.default"
        );
        let request = format!(
            "POST /{DEFAULT_TENANT_ID}/oauth2/v2.0/token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            sim.addr,
            form.len()
        );
        let (raw, _) = exchange(sim, &request, Duration::from_secs(10));
        assert_eq!(raw.status, 200);
        raw.json().unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn list_request(sim: &Simulator, token: &str) -> String {
        format!(
            "GET /api/incidents HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
            sim.addr
        )
    }

    fn list_incidents(sim: &Simulator, token: &str) -> Raw {
        exchange(sim, &list_request(sim, token), Duration::from_secs(10)).0
    }

    fn quiet_config() -> SimulatorConfig {
        SimulatorConfig {
            anchor: Some("2026-11-27T06:00:00Z".parse().unwrap()),
            rate_limits: false,
            ..SimulatorConfig::default()
        }
    }

    fn with_faults(items: &[&str]) -> Simulator {
        let items: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        let config = SimulatorConfig {
            faults: Faults::parse(&items).unwrap(),
            ..quiet_config()
        };
        Simulator::start(config, "127.0.0.1:0").unwrap()
    }

    /// A whole, well-formed `200` answer.
    fn assert_whole(raw: &Raw) {
        assert_eq!(raw.status, 200);
        assert_eq!(raw.ended, None);
        assert_eq!(raw.body.len(), raw.content_length());
        assert!(raw.json().is_some());
    }

    #[test]
    fn cut_every_announces_the_full_length_sends_half_and_closes() {
        let sim = with_faults(&["cut-every=2"]);
        let token = token_for(&sim);
        let whole = list_incidents(&sim, &token);
        assert_whole(&whole);
        let cut = list_incidents(&sim, &token);
        assert_eq!(cut.status, 200);
        assert_eq!(cut.content_length(), whole.body.len());
        assert_eq!(cut.body, whole.body[..whole.body.len() / 2]);
        assert_eq!(cut.ended, None, "a close, not a reset");
        assert_whole(&list_incidents(&sim, &token));
        let cut_again = list_incidents(&sim, &token);
        assert_eq!(cut_again.body.len(), whole.body.len() / 2);
        assert_eq!(sim.stats().calls(), 4);
        assert_eq!(sim.stats().tokens(), 1);
        let statuses: Vec<u16> = sim.stats().seen().iter().map(|s| s.status).collect();
        assert_eq!(statuses, [200; 5]);
    }

    #[test]
    fn reset_every_sends_half_then_resets_the_connection() {
        let sim = with_faults(&["reset-every=2"]);
        let token = token_for(&sim);
        let whole = list_incidents(&sim, &token);
        assert_whole(&whole);
        let reset = list_incidents(&sim, &token);
        assert_eq!(reset.status, 200);
        assert_eq!(reset.content_length(), whole.body.len());
        assert_eq!(reset.body, whole.body[..whole.body.len() / 2]);
        assert_eq!(reset.ended, Some(ErrorKind::ConnectionReset));
        assert_whole(&list_incidents(&sim, &token));
    }

    #[test]
    fn stall_every_sends_half_then_holds_the_connection_until_the_simulator_stops() {
        let sim = with_faults(&["stall-every=1"]);
        let token = token_for(&sim);
        let (stalled, mut stream) =
            exchange(&sim, &list_request(&sim, &token), Duration::from_secs(1));
        assert_eq!(stalled.status, 200);
        assert_eq!(stalled.body.len(), stalled.content_length() / 2);
        // Still open, silent: the read timed out.
        assert!(
            matches!(
                stalled.ended,
                Some(ErrorKind::WouldBlock | ErrorKind::TimedOut)
            ),
            "{:?}",
            stalled.ended
        );
        let stopping = Instant::now();
        drop(sim);
        assert!(stopping.elapsed() < Duration::from_secs(5));
        let mut rest = Vec::new();
        assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0);
    }

    #[test]
    fn truncate_still_sends_half_the_body_as_a_whole_answer() {
        let sim = with_faults(&["truncate=1"]);
        let token = token_for(&sim);
        let truncated = list_incidents(&sim, &token);
        let whole = list_incidents(&sim, &token);
        assert_whole(&whole);
        assert_eq!(truncated.status, 200);
        assert_eq!(truncated.ended, None);
        assert_eq!(truncated.content_length(), whole.body.len() / 2);
        assert_eq!(truncated.body, whole.body[..whole.body.len() / 2]);
        assert!(truncated.json().is_none());
    }

    /// The fault a client observed in a list answer.
    fn observed(raw: &Raw) -> Option<Mixed> {
        match raw.status {
            500 => Some(Mixed::ServerError),
            429 => {
                assert_eq!(raw.header("retry-after"), Some("0.050"));
                Some(Mixed::Throttle)
            }
            200 if raw.body.len() < raw.content_length() => {
                assert_eq!(raw.body.len(), raw.content_length() / 2);
                match raw.ended {
                    None => Some(Mixed::Cut),
                    Some(ErrorKind::ConnectionReset) => Some(Mixed::Reset),
                    other => panic!("unexpected end {other:?}"),
                }
            }
            200 if raw.json().is_none() => Some(Mixed::Malformed),
            200 if raw.elapsed >= MIX_LATENCY => Some(Mixed::Latency),
            200 => None,
            status => panic!("unexpected status {status}"),
        }
    }

    #[test]
    fn mix_injects_the_faults_its_seed_draws_in_call_order() {
        const SEED: u64 = 3;
        const CALLS: usize = 30;
        let mut rng = fastrand::Rng::with_seed(SEED ^ MIX_SEED_SALT);
        let plan: Vec<Option<Mixed>> = (0..CALLS).map(|_| Mixed::roll(&mut rng, 80)).collect();
        for kind in Mixed::ALL {
            assert!(plan.contains(&Some(kind)), "the plan lacks {kind:?}");
        }
        assert!(plan.contains(&None));
        let config = SimulatorConfig {
            seed: SEED,
            faults: Faults::parse(&["mix=80".into()]).unwrap(),
            ..quiet_config()
        };
        let sim = Simulator::start(config, "127.0.0.1:0").unwrap();
        let token = token_for(&sim);
        let seen: Vec<Option<Mixed>> = (0..CALLS)
            .map(|_| observed(&list_incidents(&sim, &token)))
            .collect();
        assert_eq!(seen, plan);
        assert_eq!(
            sim.stats().throttled.load(Ordering::SeqCst),
            plan.iter().filter(|m| **m == Some(Mixed::Throttle)).count() as u64
        );
    }

    /// The (id, lastUpdateTime) of every incident a list call serves now.
    fn served(sim: &Simulator, token: &str) -> Vec<(u64, String)> {
        let raw = list_incidents(sim, token);
        let page = raw.json().unwrap();
        page["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["incidentId"].as_u64().unwrap(),
                    i["lastUpdateTime"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_live_simulator_records_every_version_and_serves_each_only_once_visible() {
        let sim = Simulator::start(
            SimulatorConfig {
                incidents: 5,
                anchor: None,
                live: Some(Live {
                    every: Duration::from_millis(10),
                    visibility_delay: Duration::from_millis(400),
                }),
                ..quiet_config()
            },
            "127.0.0.1:0",
        )
        .unwrap();
        let token = token_for(&sim);
        std::thread::sleep(Duration::from_millis(600));
        let before = Timestamp::now();
        let served: std::collections::BTreeMap<u64, String> =
            served(&sim, &token).into_iter().collect();
        let after = Timestamp::now();
        let versions = sim.stats().versions();
        assert!(versions.len() > 20, "{} versions", versions.len());
        // Everything served is a recorded version already visible.
        for (id, time) in &served {
            assert!(
                versions
                    .iter()
                    .any(|v| v.id == *id && &v.last_update_time == time && v.visible_at <= after),
                "incident {id} at {time} was served but is not a visible version"
            );
        }
        // Nothing visible is hidden: each incident is served at its latest visible version.
        let mut latest = std::collections::BTreeMap::new();
        for v in versions.iter().filter(|v| v.visible_at <= before) {
            latest.insert(v.id, v.last_update_time.clone());
        }
        for (id, time) in &latest {
            let shown = served.get(id).map(String::as_str).unwrap_or("absent");
            assert!(
                shown >= time.as_str(),
                "incident {id}: served {shown}, visible {time}"
            );
        }
        // And versions not visible yet are not served.
        let hidden: Vec<&Version> = versions.iter().filter(|v| v.visible_at > after).collect();
        assert!(!hidden.is_empty());
        for v in hidden {
            assert_ne!(served.get(&v.id), Some(&v.last_update_time), "{v:?}");
        }
    }

    #[test]
    fn mix_zero_injects_nothing() {
        let sim = with_faults(&["mix=0"]);
        let token = token_for(&sim);
        for _ in 0..5 {
            assert_whole(&list_incidents(&sim, &token));
        }
    }

    #[test]
    fn body_faults_spare_answers_that_are_not_200() {
        let sim = with_faults(&["cut-every=1"]);
        let refused = list_incidents(&sim, "not-a-token");
        assert_eq!(refused.status, 401);
        assert_eq!(refused.ended, None);
        assert_eq!(refused.body.len(), refused.content_length());
    }

    #[tokio::test]
    async fn serve_answers_until_shutdown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, quiet_config(), async {
            let _ = stopped.await;
        }));
        let head = tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            let request =
                format!("GET /api/incidents HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            response.lines().next().unwrap_or_default().to_string()
        })
        .await
        .unwrap();
        assert_eq!(head, "HTTP/1.1 401 Unauthorized");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn serve_refuses_a_time_scale_that_is_not_positive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = SimulatorConfig {
            time_scale: 0.0,
            ..quiet_config()
        };
        let error = serve(listener, config, async {}).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
