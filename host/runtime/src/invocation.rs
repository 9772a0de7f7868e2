//! Everything one invocation's `Store` holds, and how the contract's imports are served from it.
//!
//! The state is a composition: WASI (deny-all), the memory cap, and one part per capability.
//! [`SkillImports`] routes each import to its capability and records what an outcome means for
//! the invocation as a whole (a [`Violation`]).

use skillhost_contract::imports::SkillImports;
use skillhost_contract::types::{
    BodyId, ConnectionInfo, HttpError, HttpRequest, HttpResponse, LogLevel, StateEntry, StateError,
    StreamedResponse,
};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::capabilities::emit::{EmitCapability, Refusal};
use crate::capabilities::http::HttpCapability;
use crate::capabilities::log::LogCapability;
use crate::capabilities::state::{PendingState, StateCapability};
use crate::capabilities::{Capabilities, GuestOutput, RowSink};
use crate::limits::SandboxLimits;
use crate::memory::MemoryCap;
use crate::violation::Violation;

/// The most host handles (WASI streams and pollables, response bodies) one invocation may hold
/// at once. Each costs host memory that the memory cap does not count: without this cap, a guest
/// taking 100,000 stdout streams in a loop grew the CLI from 14 to 87 MB before wasmtime's own
/// handle limit stopped it (measured with `/usr/bin/time`). Rust and Python guests hold a
/// handful.
pub const MAX_HANDLES: usize = 4096;

/// The data of one invocation's store.
pub struct InvocationState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The memory cap (the store's resource limiter).
    pub memory: MemoryCap,
    skill: String,
    http: HttpCapability,
    emit: EmitCapability,
    log: LogCapability,
    state: StateCapability,
    /// A row was refused (not a JSON object, too large, the sink failed).
    rows_lost: bool,
    violation: Option<Violation>,
    timeout: std::time::Duration,
    /// In a process whose guests have no epoch checks: when the deadline passes. A host call
    /// made after it traps at once, so nothing the guest asks for then is done or delivered.
    expires: Option<std::time::Instant>,
}

impl InvocationState {
    /// A fresh state for `skill` under `limits`, its guest output going to `stdout`/`stderr`.
    pub fn new(
        skill: &str,
        limits: SandboxLimits,
        capabilities: Capabilities,
        rows: Box<dyn RowSink>,
        stdout: GuestOutput,
        stderr: GuestOutput,
    ) -> Self {
        // Deny-all WASI: the builder starts with no environment, arguments or preopens; the
        // network settings are spelled out so a change of upstream defaults cannot open them.
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        InvocationState {
            wasi: wasi.build(),
            table,
            memory: MemoryCap::new(limits.max_memory),
            skill: skill.to_string(),
            state: StateCapability::new(capabilities.state),
            rows_lost: false,
            http: HttpCapability::new(capabilities.connection, limits.timeout, limits.max_memory),
            emit: EmitCapability::new(rows, limits.max_output),
            log: LogCapability::new(limits.max_log),
            violation: None,
            timeout: limits.timeout,
            expires: None,
        }
    }

    /// Host calls made at `at` or later trap as the deadline (see `expires`).
    pub fn expire_at(&mut self, at: std::time::Instant) {
        self.expires = Some(at);
    }

    /// Whether `expires` has passed (never without one).
    pub fn past_deadline(&self) -> bool {
        self.expires
            .is_some_and(|at| std::time::Instant::now() >= at)
    }

    /// The deadline's trap for a host call made past `expires`.
    fn in_time(&self) -> wasmtime::Result<()> {
        if self.past_deadline() {
            return Err(wasmtime::Error::from(wasmtime::Trap::Interrupt));
        }
        Ok(())
    }

    /// Output bytes (rows) used so far.
    pub fn output_used(&self) -> usize {
        self.emit.used()
    }

    /// Hands the run's staged state to whoever delivers its output, and whether a row was
    /// refused (then not all of the output can be delivered, and the state must not move).
    pub fn finish_state(&mut self) -> (PendingState, bool) {
        (self.state.finish(), self.rows_lost)
    }

    /// Ends the invocation's calls: nothing is asked for ahead of a guest that returned.
    pub fn finish_calls(&self) {
        self.http.abandon_prefetch();
    }

    /// Ends the invocation's log (says what the log cap dropped).
    pub fn finish_log(&mut self) {
        self.log.finish(&self.skill);
    }

    /// The rule the guest broke, if any (taken: reported once).
    pub fn take_violation(&mut self) -> Option<Violation> {
        self.violation.take()
    }

    /// The API of the bound connection, if any.
    pub fn api(&self) -> Option<skillhost_upstream::providers::microsoft::Api> {
        self.http.connection().map(|c| c.connection().api)
    }

    /// Takes over what the last HTTP call meant for the invocation (the latest rule broken wins).
    fn after_http(&mut self) {
        if let Some(violation) = self.http.take_violation() {
            self.violation = Some(violation);
        }
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl SkillImports for InvocationState {
    async fn http_send(
        &mut self,
        request: HttpRequest,
    ) -> wasmtime::Result<Result<HttpResponse, HttpError>> {
        self.in_time()?;
        let result = self.http.send(&self.skill, request).await;
        self.after_http();
        Ok(result)
    }

    async fn http_send_streaming(
        &mut self,
        request: HttpRequest,
    ) -> wasmtime::Result<Result<StreamedResponse, HttpError>> {
        self.in_time()?;
        let result = self
            .http
            .send_streaming(&self.skill, request, &mut self.table)
            .await?;
        self.after_http();
        Ok(result)
    }

    async fn body_read(
        &mut self,
        body: BodyId,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, HttpError>> {
        self.in_time()?;
        let result = self.http.read(&mut self.table, body, max).await?;
        self.after_http();
        Ok(result)
    }

    fn body_drop(&mut self, body: BodyId) -> wasmtime::Result<()> {
        self.http.drop_body(&mut self.table, body)
    }

    fn connection_info(&mut self) -> wasmtime::Result<ConnectionInfo> {
        self.http.info()
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.in_time()?;
        self.log.log(&self.skill, level, &message);
        Ok(())
    }

    async fn state_get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<StateEntry>, StateError>> {
        self.in_time()?;
        Ok(self.state.get(key).await)
    }

    async fn state_stage(
        &mut self,
        key: String,
        value: Option<Vec<u8>>,
        expected: Option<u64>,
    ) -> wasmtime::Result<Result<(), StateError>> {
        self.in_time()?;
        Ok(self.state.stage(key, value, expected))
    }

    async fn state_lock(&mut self, name: String) -> wasmtime::Result<Result<(), StateError>> {
        self.in_time()?;
        Ok(self.state.lock(name).await)
    }

    async fn emit(&mut self, row_json: String) -> wasmtime::Result<Result<(), String>> {
        self.in_time()?;
        // A run whose lock may be another run's now stops delivering: the other run may be
        // delivering the same rows, and this one's state will not commit.
        if let Some(name) = self.state.lock_in_doubt() {
            self.rows_lost = true;
            return Ok(Err(format!(
                "the run lost its lock `{name}` (it was not renewed within its lifetime, and \
                 another run may hold it now); it may emit no more rows"
            )));
        }
        match self.emit.emit(row_json).await {
            Ok(()) => Ok(Ok(())),
            Err(refusal) => {
                match refusal {
                    Refusal::OverCap(cap) => self.violation = Some(Violation::Output(cap)),
                    Refusal::Deadline => self.violation = Some(Violation::Deadline(self.timeout)),
                    // A row the host refused never reaches the caller: whatever the skill does
                    // next, its state may not move past it.
                    Refusal::Rejected(_) => self.rows_lost = true,
                }
                Ok(Err(refusal.message()))
            }
        }
    }
}
