//! `skillhost serve`: many tenants' invocations, side by side, in one long-lived process.
//!
//! What the process shares: the engine (pooling allocator), one loaded component per skill
//! version, one token per (tenant, connection and its definition, scope) with single-flight
//! refresh, and one pacing budget per (tenant, app) for all concurrent invocations (the
//! [`Connector`]). What it keeps apart: each invocation gets its own store, limits and bound
//! connection, and a caller reaches only its tenants' connections.
//!
//! Threat: the listener faces the network. Connections are capped in number, must send their
//! headers within a timeout (slowloris) and must take what is written to them (`stall`); a
//! non-loopback address needs TLS unless the operator says otherwise in so many words; shutdown
//! drains, then cancels. See `api` for requests, `schedule` for fairness, `catalog` for
//! drop-ins, `callers` for keys.

mod api;
mod callers;
mod catalog;
mod invoke;
mod metrics;
mod reply;
mod schedule;
mod stall;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use clap::Args;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use skillhost_contract::error::Failure;
use skillhost_contract::text::escape;
use skillhost_runtime::capabilities::state::StateStore;
use skillhost_runtime::limits::{SandboxLimits, parse_bytes, parse_duration};
use skillhost_runtime::registry::RegistryLimits;
use skillhost_runtime::sandbox::{Preemption, Runtime, RuntimeOptions};
use skillhost_upstream::audit::AuditLog;
use skillhost_upstream::connections::Config;
use skillhost_upstream::outbound::Connector;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};

use crate::commands::run::LimitArgs;
use crate::global::GlobalArgs;
use callers::Callers;
use catalog::Skills;
use metrics::Metrics;
use schedule::{ScheduleLimits, Scheduler};
use stall::StallGuard;

/// `serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// TLS certificate chain (PEM). Required, with --tls-key, on a non-loopback address.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve plain HTTP on a non-loopback address (API keys then cross the network in clear).
    #[arg(long)]
    pub insecure_http: bool,

    /// Invocations running at once, all tenants together.
    #[arg(long, value_name = "N", default_value_t = ScheduleLimits::default().max_running)]
    pub max_running: usize,

    /// Invocations of one tenant running at once.
    #[arg(long, value_name = "N", default_value_t = ScheduleLimits::default().max_running_per_tenant)]
    pub max_running_per_tenant: usize,

    /// Invocations waiting for a slot, all tenants together; past it, 429.
    #[arg(long, value_name = "N", default_value_t = ScheduleLimits::default().max_queued)]
    pub max_queued: usize,

    /// Invocations of one tenant waiting for a slot; past it, 429.
    #[arg(long, value_name = "N", default_value_t = ScheduleLimits::default().max_queued_per_tenant)]
    pub max_queued_per_tenant: usize,

    /// Open client connections; further ones wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,

    /// How long a connection is kept while its client takes nothing of what is written to it
    /// (a client that stopped reading); then it is closed.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub stall_timeout: String,

    /// Largest request body, such as 1M.
    #[arg(long, value_name = "SIZE", default_value = "1M")]
    pub max_body: String,

    /// How long shutdown waits for in-flight invocations before it cancels them.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub drain_timeout: String,

    /// How often the skills folders and key files are checked for changes.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub rescan_interval: String,

    /// Append one JSON line per invocation, and one per HTTP call of a skill, to this file.
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,

    /// The most any invocation may use; a request may ask for less.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Settings fixed at start.
#[derive(Debug, Clone, Copy)]
pub struct ServeSettings {
    /// Largest request body, bytes.
    pub max_body: usize,
    /// The most an invocation may use.
    pub limits: SandboxLimits,
}

/// Everything the request handlers share.
pub struct Server {
    runtime: Runtime,
    connector: Arc<Connector>,
    /// Where skills keep state (contract 0.2); opened on first use.
    state: StateStore,
    skills: Skills,
    config: RwLock<Arc<Config>>,
    callers: RwLock<Arc<Callers>>,
    scheduler: Arc<Scheduler>,
    metrics: Metrics,
    settings: ServeSettings,
    audit: Option<Arc<AuditLog>>,
    draining: AtomicBool,
    drain_started: watch::Sender<bool>,
    cancel: watch::Sender<bool>,
    in_flight: AtomicUsize,
    idle: Notify,
    config_path: Option<PathBuf>,
    /// Held by whatever replaces the config or the callers (SIGHUP, key files changed), so that
    /// one replacement never undoes another.
    config_writer: std::sync::Mutex<()>,
}

/// Counts one invocation in flight until dropped.
pub struct InFlight(Arc<Server>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Server {
    fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn callers(&self) -> Arc<Callers> {
        self.callers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// A receiver that turns true when in-flight work must stop.
    fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.cancel.subscribe()
    }

    /// Counts an invocation in flight.
    fn track(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Reads the config file again (SIGHUP): connections and callers. A config that does not
    /// load leaves the running one in place.
    fn reload(&self) {
        let _writer = self
            .config_writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A caller whose key cannot be read is disabled, not a reason to keep the old config.
        let loaded = Config::locate_and_load(self.config_path.as_deref()).map(|config| {
            let callers = Callers::load_for_reload(&config.callers);
            (config, callers)
        });
        let (config, callers) = match loaded {
            Ok(loaded) => loaded,
            Err(failure) => {
                tracing::error!(
                    "config reload failed, the running config stays: {}",
                    failure.to_safe_string()
                );
                return;
            }
        };
        let old = self.config();
        for (name, connection) in &old.connections {
            let same = config
                .connections
                .get(name)
                .is_some_and(|new| new.fingerprint() == connection.fingerprint());
            if !same {
                self.connector.forget(name);
            }
        }
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        *self.callers.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(callers);
        tracing::info!("config reloaded");
    }

    /// Re-reads key files that changed, and rescans the skills folders if they changed.
    async fn refresh(&self) {
        {
            let _writer = self
                .config_writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut callers = (*self.callers()).clone();
            let changed = callers.refresh();
            if !changed.is_empty() {
                tracing::info!(callers = ?changed, "API keys re-read");
                *self.callers.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(callers);
            }
        }
        self.skills.rescan_if_changed(&self.runtime).await;
    }
}

/// Runs `skillhost serve` until SIGTERM or SIGINT, then drains.
pub async fn run(global: &GlobalArgs, args: ServeArgs) -> Result<(), Failure> {
    let limits = args.limits.parse()?;
    let max_body =
        parse_bytes(&args.max_body).map_err(|m| Failure::usage(format!("--max-body: {m}")))?;
    let drain_timeout = parse_duration(&args.drain_timeout)
        .map_err(|m| Failure::usage(format!("--drain-timeout: {m}")))?;
    let stall_timeout = parse_duration(&args.stall_timeout)
        .map_err(|m| Failure::usage(format!("--stall-timeout: {m}")))?
        .max(Duration::from_millis(100));
    let rescan = parse_duration(&args.rescan_interval)
        .map_err(|m| Failure::usage(format!("--rescan-interval: {m}")))?
        .max(Duration::from_millis(100));
    let schedule = ScheduleLimits {
        max_running: args.max_running,
        max_running_per_tenant: args.max_running_per_tenant,
        max_queued: args.max_queued,
        max_queued_per_tenant: args.max_queued_per_tenant,
    };
    let acceptor = tls::acceptor(&args)?;
    let config = Config::locate_and_load(global.config.as_deref())?;
    let callers = Callers::load(&config.callers)?;
    let state = global.state_store(Some(&config))?;
    if callers.is_empty() {
        return Err(Failure::usage(
            "the config has no callers, so no request could be authenticated",
        )
        .with_hint(
            "add a [callers.NAME] table with key = { file = \"PATH\" } (or { env = \"VAR\" }) and \
             tenants = [\"TENANT\", ...]",
        ));
    }
    let audit = match &args.audit_log {
        None => None,
        Some(path) => Some(Arc::new(AuditLog::open(path).map_err(|e| {
            Failure::usage(format!("--audit-log {}: {e}", path.display()))
        })?)),
    };
    let connector = Connector::new(None);
    // Every server sharing the store paces each (tenant, app) against one budget.
    GlobalArgs::pace_through(&state, &connector).await?;
    if let Some(audit) = &audit {
        connector.set_audit_shared(audit.clone());
    }
    let runtime = Runtime::new(RuntimeOptions {
        pooling: true,
        // Room for every running invocation and the describe() calls of a rescan.
        pool_instances: u32::try_from(schedule.max_running.max(1) + 8).unwrap_or(u32::MAX),
        limits,
        // Invocations run side by side: each must be stopped alone, and yield its thread.
        preemption: Preemption::Epoch,
    })
    .map_err(|e| Failure::other(format!("cannot start the wasm engine: {e:#}")))?;
    let max_component_bytes = parse_bytes(&global.max_component_size)
        .map_err(|m| Failure::usage(format!("--max-component-size: {m}")))?;
    let skills = Skills::open(
        &runtime,
        global.skill_sources(),
        global.compile_cache(),
        RegistryLimits {
            max_component_bytes: max_component_bytes as u64,
        },
    )
    .await;
    for problem in &skills.current().refused {
        tracing::warn!(
            "skill file {} refused: {}",
            escape(&problem.path.display().to_string()),
            escape(&problem.message)
        );
    }
    let listener = TcpListener::bind(args.listen).await.map_err(|e| {
        Failure::usage(format!("cannot listen on {}: {e}", args.listen))
            .with_hint("pick a free port with --listen ADDR:PORT")
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::other(format!("cannot read the listening address: {e}")))?;
    let (cancel, _) = watch::channel(false);
    let server = Arc::new(Server {
        runtime,
        connector,
        state,
        skills,
        config: RwLock::new(Arc::new(config.clone())),
        callers: RwLock::new(Arc::new(callers)),
        scheduler: Scheduler::new(schedule),
        metrics: Metrics::default(),
        settings: ServeSettings { max_body, limits },
        audit,
        draining: AtomicBool::new(false),
        drain_started: watch::channel(false).0,
        cancel,
        in_flight: AtomicUsize::new(0),
        idle: Notify::new(),
        config_path: config.path.clone().or_else(|| global.config.clone()),
        config_writer: std::sync::Mutex::new(()),
    });
    // The line a supervisor (or a test) waits for; the port is the real one when 0 was asked.
    say!(
        "skillhost: serving {} skill(s) on {}://{local}",
        server.skills.current().skills.len(),
        if acceptor.is_some() { "https" } else { "http" }
    );
    let mut signals =
        Signals::new().map_err(|e| Failure::other(format!("cannot listen for signals: {e}")))?;
    tokio::spawn(refresher(server.clone(), rescan));
    // Connections are taken until the very end: while draining, new requests get 503.
    let accepting = tokio::spawn(accept(
        server.clone(),
        listener,
        acceptor,
        args.max_connections,
        stall_timeout,
    ));
    while let Signal::Reload = signals.next().await {
        server.reload();
    }
    drain(&server, drain_timeout).await;
    accepting.abort();
    Ok(())
}

/// Checks key files and skills folders every `interval`, on a thread of its own: a component
/// dropped in is compiled there (seconds, for an interpreter compiled to wasm), not on one of the
/// workers that answer requests.
async fn refresher(server: Arc<Server>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let runtime = tokio::runtime::Handle::current();
    loop {
        ticker.tick().await;
        if server.is_draining() {
            return;
        }
        let (server, runtime) = (server.clone(), runtime.clone());
        let refreshed = tokio::task::spawn_blocking(move || {
            // Given up once shutdown starts: the runtime it runs on is about to stop.
            let mut draining = server.drain_started.subscribe();
            runtime.block_on(async {
                tokio::select! {
                    _ = server.refresh() => {}
                    _ = draining.wait_for(|draining| *draining) => {}
                }
            });
        });
        if let Err(e) = refreshed.await {
            tracing::error!("the check of skills folders and key files failed: {e}");
        }
    }
}

/// Accepts connections, at most `max_connections` open at once, each closed once its client
/// has taken nothing of an answer for `stall_timeout`.
async fn accept(
    server: Arc<Server>,
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    max_connections: usize,
    stall_timeout: Duration,
) {
    let connections = Arc::new(Semaphore::new(max_connections.max(1)));
    loop {
        let Ok(slot) = connections.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: wait a little rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // The socket reports room for more only once little of what was written is unsent, so
        // a client that reads slowly shows progress in small steps (not only when a third of a
        // send buffer of megabytes has drained), and the stall guard sees it as progress.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(NOTSENT_LOWAT);
        // Under TLS too: the guard sees the encrypted bytes make progress or not.
        let stream = StallGuard::new(stream, stall_timeout);
        let server = server.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                None => serve_connection(server, stream).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => serve_connection(server, stream).await,
                        Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Bytes written to a client connection but not sent yet, past which a write waits
/// (`TCP_NOTSENT_LOWAT`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const NOTSENT_LOWAT: u32 = 64 * 1024;

/// How long a cancelled invocation's connection stays open to send its last line.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// Serves HTTP/1.1 requests of one connection until it closes; when the server drains, the
/// answer in progress is finished and the connection closed (graceful), and once in-flight work
/// is cancelled, it gets [`CANCEL_GRACE`] to send its last line.
async fn serve_connection<S>(server: Arc<Server>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut draining = server.drain_started.subscribe();
    let mut cancel = server.shutdown_signal();
    let handler = server.clone();
    let service = service_fn(move |request| {
        let server = handler.clone();
        async move { Ok::<_, Infallible>(api::handle(server, request).await) }
    });
    // A connection opened while the server drains gets its one answer (503), then closes.
    let opened_draining = *draining.borrow();
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        // A connection holds at most this much of a request before its key is checked (hyper's
        // default buffer is about 400 KiB): 1024 connections, 64 MiB at most.
        .max_buf_size(64 << 10)
        .max_headers(64)
        .keep_alive(!opened_draining)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    if !opened_draining {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            _ = draining.wait_for(|draining| *draining) => {
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    let cancelled = async {
        let _ = cancel.wait_for(|cancel| *cancel).await;
        tokio::time::sleep(CANCEL_GRACE).await;
    };
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("connection ended while draining: {e}");
            }
        }
        _ = cancelled => {}
    }
}

/// Stops taking work, waits for in-flight invocations (queued, running, or sending their
/// answer) up to `timeout`, then cancels them.
async fn drain(server: &Arc<Server>, timeout: Duration) {
    server.draining.store(true, Ordering::Release);
    server.drain_started.send_replace(true);
    let load = server.scheduler.load();
    say!(
        "skillhost: draining ({} invocation(s) running, {} queued)",
        load.running,
        load.queued
    );
    if tokio::time::timeout(timeout, idle(server)).await.is_err() {
        let load = server.scheduler.load();
        say!(
            "skillhost: drain timeout passed; cancelling {} running and {} queued invocation(s)",
            load.running,
            load.queued
        );
    }
    server.cancel.send_replace(true);
    // The cancelled invocations send their last line and write their audit record.
    let _ = tokio::time::timeout(CANCEL_GRACE + Duration::from_secs(1), idle(server)).await;
    say!("skillhost: stopped");
}

/// Returns once nothing is in flight.
async fn idle(server: &Server) {
    loop {
        let notified = server.idle.notified();
        if server.in_flight.load(Ordering::Acquire) == 0 {
            return;
        }
        notified.await;
    }
}

enum Signal {
    Reload,
    Stop,
}

/// SIGTERM and SIGINT (stop), SIGHUP (reload).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}
