//! The sandbox every invocation runs in: the engine, the linker, and one fresh `Store` per call.
//!
//! Threat: a skill is untrusted code. It must not exhaust the host (memory cap, wall-clock
//! deadline enforced twice: epoch interruption stops a guest that computes, an async timeout stops
//! a guest blocked inside a host call), must not observe the host (WASI with no environment, no
//! arguments, no preopened folders, every socket address denied, no name lookup), must not flood
//! the output (row and byte caps), and must not crash the host (traps become errors; nothing a
//! guest does reaches an `unwrap`). Its only reach outside its memory is the imports of
//! `skillhost:skill`, implemented in `capabilities`.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{Skill, SkillPre, types};
use crate::capabilities::{Capabilities, GuestOutput, RowSink};
use crate::error::Failure;
use crate::manifest::SkillManifest;

/// How often the epoch advances; the granularity of the deadline.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The most a guest may write to its stdout or stderr per invocation (the rest is dropped).
const GUEST_STDIO_CAP: usize = 64 * 1024;

/// Per-invocation limits.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Largest linear memory a guest may grow to, in bytes.
    pub max_memory: usize,
    /// Wall-clock time an invocation may take, host calls included.
    pub timeout: Duration,
    /// Largest result plus emitted rows, in bytes.
    pub max_output: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            max_memory: 64 << 20,
            timeout: Duration::from_secs(60),
            max_output: 256 << 20,
        }
    }
}

/// Engine-wide settings, fixed for the life of a [`Runtime`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RuntimeOptions {
    /// Pre-allocates instance slots (pooling allocator): faster instantiation for long-lived
    /// processes that invoke many times, at the cost of reserved address space.
    pub pooling: bool,
    /// Limits applied to every invocation unless overridden.
    pub limits: SandboxLimits,
}

/// A rule the guest broke; reported as a sandbox violation (exit 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The deadline passed.
    Deadline(Duration),
    /// The guest tried to grow memory past the cap.
    Memory {
        /// The cap, bytes.
        limit: usize,
        /// What the guest asked for, bytes.
        requested: usize,
    },
    /// The wasm stack was exhausted.
    Stack,
    /// Result plus rows exceeded the output cap.
    Output(usize),
    /// A capability call was refused by policy.
    Denied(String),
}

impl Violation {
    /// The failure reported for this violation.
    pub fn into_failure(self, skill: &str) -> Failure {
        match self {
            Violation::Deadline(t) => Failure::sandbox(format!(
                "skill `{skill}` did not finish within its deadline of {}",
                human_duration(t)
            ))
            .with_hint("raise it with --timeout if the work is legitimately long"),
            Violation::Memory { limit, requested } => Failure::sandbox(format!(
                "skill `{skill}` exceeded its memory limit of {} (it asked for {})",
                human_bytes(limit),
                human_bytes(requested)
            ))
            .with_hint("raise it with --max-memory if the skill legitimately needs more"),
            Violation::Stack => Failure::sandbox(format!(
                "skill `{skill}` exhausted its stack (runaway recursion)"
            )),
            Violation::Output(cap) => Failure::sandbox(format!(
                "skill `{skill}` produced more than its output limit of {}",
                human_bytes(cap)
            )),
            Violation::Denied(why) => {
                Failure::sandbox(format!("skill `{skill}` was denied a capability: {why}"))
            }
        }
    }
}

/// The engine and linker shared by every invocation of a process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<InvocationState>,
    options: RuntimeOptions,
}

impl Runtime {
    /// Builds the engine and links WASI (deny-all) and the skill imports once.
    pub fn new(options: RuntimeOptions) -> wasmtime::Result<Self> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        // Epoch interruption is what stops a guest stuck in a loop: each store gets a deadline
        // in ticks, and a ticker thread advances the epoch.
        config.epoch_interruption(true);
        config.max_wasm_stack(1 << 20);
        if options.pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            // Sized for a service invoking a few dozen skills at once, not for thousands: each
            // memory slot reserves address space up front.
            pool.total_component_instances(64);
            pool.total_core_instances(512);
            pool.total_memories(128);
            pool.total_tables(256);
            pool.total_stacks(64);
            pool.max_memory_size(options.limits.max_memory);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config)?;
        start_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Skill::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
        Ok(Runtime {
            engine,
            linker,
            options,
        })
    }

    /// The engine (for compiling and cache keys).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The default limits of this runtime.
    pub fn limits(&self) -> SandboxLimits {
        self.options.limits
    }

    /// Resolves a component's imports against the linker, once; the result instantiates cheaply.
    pub fn prepare(&self, component: &Component) -> wasmtime::Result<SkillPre<InvocationState>> {
        let pre = self.linker.instantiate_pre(component)?;
        SkillPre::new(pre)
    }

    /// Calls `describe()` in a fresh sandbox with the default limits and no capabilities.
    pub async fn describe(
        &self,
        pre: &SkillPre<InvocationState>,
    ) -> Result<types::SkillInfo, String> {
        let limits = SandboxLimits {
            timeout: self.options.limits.timeout.min(Duration::from_secs(10)),
            ..self.options.limits
        };
        let (mut store, stderr) = self.new_store(
            "describe",
            limits,
            Capabilities::none(),
            Box::new(crate::capabilities::RefuseRows),
        );
        let call = async {
            let skill = pre.instantiate_async(&mut store).await?;
            skill
                .skillhost_skill_guest()
                .call_describe(&mut store)
                .await
        };
        match tokio::time::timeout(limits.timeout, call).await {
            Ok(Ok(info)) => Ok(info),
            Ok(Err(e)) => Err(describe_trap(&e, &stderr)),
            Err(_) => Err(format!(
                "describe() did not return within {}",
                human_duration(limits.timeout)
            )),
        }
    }

    /// Runs `invoke(input)` in a fresh sandbox. Rows the guest emits go to `rows` as they come.
    pub async fn invoke(
        &self,
        skill: &LoadedSkill,
        input: &Map<String, Value>,
        capabilities: Capabilities,
        rows: Box<dyn RowSink>,
        limits: SandboxLimits,
    ) -> Result<Invocation, Failure> {
        let id = skill.manifest.id.as_str();
        let input = serde_json::to_string(input)
            .map_err(|e| Failure::other(format!("cannot encode the input: {e}")))?;
        let (mut store, stderr) = self.new_store(id, limits, capabilities, rows);
        tracing::debug!(skill = id, "instantiating");
        let started = Instant::now();
        let call = async {
            let instance = skill.pre.instantiate_async(&mut store).await?;
            instance
                .skillhost_skill_guest()
                .call_invoke(&mut store, &input)
                .await
        };
        let outcome = tokio::time::timeout(limits.timeout, call).await;
        tracing::debug!(
            skill = id,
            elapsed_us = started.elapsed().as_micros() as u64,
            "returned"
        );
        forward_guest_output(id, &stderr);
        let state = store.data_mut();
        let peak_memory = state.memory.peak;
        tracing::debug!(skill = id, peak_memory, "guest memory");
        if let Some(requested) = state.memory.refused {
            return Err(Violation::Memory {
                limit: limits.max_memory,
                requested,
            }
            .into_failure(id));
        }
        if let Some(violation) = state.violation.take() {
            return Err(violation.into_failure(id));
        }
        let result = match outcome {
            Err(_) => return Err(Violation::Deadline(limits.timeout).into_failure(id)),
            Ok(Err(trap)) => return Err(classify_trap(id, &trap, limits, &stderr)),
            Ok(Ok(result)) => result,
        };
        match result {
            Ok(json) => {
                if state.output_used + json.len() > limits.max_output {
                    return Err(Violation::Output(limits.max_output).into_failure(id));
                }
                let output = serde_json::from_str(&json).map_err(|e| {
                    Failure::skill(format!(
                        "skill `{id}` returned a result that is not JSON ({e})"
                    ))
                })?;
                Ok(Invocation {
                    output,
                    peak_memory,
                })
            }
            Err(error) => Err(crate::capabilities::skill_error_failure(id, error)),
        }
    }

    fn new_store(
        &self,
        skill: &str,
        limits: SandboxLimits,
        capabilities: Capabilities,
        rows: Box<dyn RowSink>,
    ) -> (Store<InvocationState>, GuestOutput) {
        let stdout = GuestOutput::new(GUEST_STDIO_CAP);
        let stderr = GuestOutput::new(GUEST_STDIO_CAP);
        // Deny-all WASI: the builder starts with no environment, arguments or preopens; the
        // network settings are spelled out so a change of upstream defaults cannot open them.
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        let state = InvocationState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            memory: MemoryCap {
                limit: limits.max_memory,
                refused: None,
                peak: 0,
            },
            skill: skill.to_string(),
            capabilities,
            rows,
            output_cap: limits.max_output,
            output_used: 0,
            violation: None,
            timeout: limits.timeout,
            open_bodies: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        let ticks = limits.timeout.as_millis() / EPOCH_TICK.as_millis() + 1;
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();
        (store, stderr)
    }
}

/// What a successful invocation produced.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The JSON `invoke` returned: the result, or a dataset's summary.
    pub output: Value,
    /// The largest the guest's linear memory grew to, in bytes.
    pub peak_memory: usize,
}

/// A component ready to instantiate, with its manifest.
pub struct LoadedSkill {
    /// What the skill declared.
    pub manifest: SkillManifest,
    /// Imports resolved once; each invocation instantiates from it.
    pub pre: SkillPre<InvocationState>,
}

/// Everything one invocation's `Store` holds.
pub struct InvocationState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    memory: MemoryCap,
    pub(crate) skill: String,
    pub(crate) capabilities: Capabilities,
    pub(crate) rows: Box<dyn RowSink>,
    pub(crate) output_cap: usize,
    pub(crate) output_used: usize,
    pub(crate) violation: Option<Violation>,
    pub(crate) timeout: Duration,
    pub(crate) open_bodies: usize,
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth past the cap, and remembers the refusal so the error can name it, and
/// the peak, so that memory use can be measured.
struct MemoryCap {
    limit: usize,
    refused: Option<usize>,
    peak: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = Some(desired);
            wasmtime::bail!("memory limit of {} reached", human_bytes(self.limit));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

fn classify_trap(
    id: &str,
    error: &wasmtime::Error,
    limits: SandboxLimits,
    stderr: &GuestOutput,
) -> Failure {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Violation::Deadline(limits.timeout).into_failure(id),
        Some(Trap::StackOverflow) => Violation::Stack.into_failure(id),
        _ => {
            let mut failure = Failure::skill(format!("skill `{id}` crashed: {}", trap_text(error)));
            if let Some(last) = stderr.last_line() {
                failure = failure.with_hint(format!("the skill's last words: {last}"));
            }
            failure
        }
    }
}

fn describe_trap(error: &wasmtime::Error, stderr: &GuestOutput) -> String {
    let mut text = format!("describe() failed: {}", trap_text(error));
    if let Some(last) = stderr.last_line() {
        text.push_str(&format!(" ({last})"));
    }
    text
}

fn forward_guest_output(skill: &str, stderr: &GuestOutput) {
    for line in stderr.lines() {
        tracing::info!(target: "skill", skill, "{line}");
    }
}

/// The trap's own words (`wasm trap: ...`), or the innermost cause of a host error, without
/// wasmtime's multi-line backtrace.
fn trap_text(error: &wasmtime::Error) -> String {
    match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => {
            let root = error.root_cause().to_string();
            root.lines().next().unwrap_or_default().to_string()
        }
    }
}

fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("skillhost-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        // Without the ticker, epochs never advance and only the async timeout stops a guest.
        tracing::warn!("could not start the epoch ticker: {e}");
    }
}

/// `64 MiB`, `1.5 KiB`, `12 bytes`.
pub fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

/// `60 s`, `250 ms`.
pub fn human_duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Parses `64MiB`, `512M`, `1G`, `65536` into bytes.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size; use a number with K, M or G, such as 64M"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit; use K, M or G, such as 64M"
            ));
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses `60s`, `500ms`, `2m`, `90` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        format!("{text:?} is not a duration; use a number with ms, s or m, such as 30s")
    })?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit; use ms, s or m, such as 30s"
            ));
        }
    };
    if d.is_zero() {
        return Err(
            "a timeout of zero would stop every skill at once; give a positive duration".into(),
        );
    }
    Ok(d)
}
