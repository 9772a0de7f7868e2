//! The sandbox every invocation runs in: the engine, the linker, and one fresh `Store` per call.
//!
//! Threat: a skill is untrusted code. It must not exhaust the host (memory cap, wall-clock
//! deadline enforced twice: an async timeout stops a guest blocked inside a host call, and a
//! guest that computes is stopped by epoch interruption or, in a process that runs one
//! invocation at a time, by a watchdog that ends the process: [`Preemption`]), must not observe
//! the host (WASI with no environment, no
//! arguments, no preopened folders, every socket address denied, no name lookup), must not flood
//! the output (row and byte caps), and must not crash the host (traps become errors; nothing a
//! guest does reaches an `unwrap`). Its only reach outside its memory is the imports of
//! `skillhost:skill`, implemented in `capabilities`.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use skillhost_contract::error::{Failure, Reason};
use skillhost_contract::manifest::{SkillInfo, SkillManifest};
use skillhost_contract::text::escape;
use skillhost_contract::versions::{self, ContractVersion, SkillPre};
use wasmtime::component::{Component, Linker, ResourceTableError};
use wasmtime::{Engine, Store, Trap};

use crate::capabilities::state::PendingState;
use crate::capabilities::{Capabilities, GuestOutput, RefuseRows, RowSink};
use crate::invocation::{InvocationState, MAX_HANDLES};
use crate::limits::{SandboxLimits, human_duration};
use crate::output::{Output, Refused};
use crate::skill_errors::skill_error_failure;
use crate::violation::Violation;

/// How often the epoch advances; the granularity of the deadline.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The most a guest may write to its stdout or stderr per invocation (the rest is dropped).
const GUEST_STDIO_CAP: usize = 64 * 1024;

/// How a guest that computes past its deadline is stopped.
#[derive(Debug, Clone, Copy, Default)]
pub enum Preemption {
    /// Epoch interruption: checks compiled into the guest's calls and loops; every 10 ms tick a
    /// guest that computes yields its thread, and at its deadline it traps. For a process that
    /// runs invocations side by side (`serve`), and the default.
    #[default]
    Epoch,
    /// No checks in the guest's code (they cost a guest that parses JSON about 13% of its CPU):
    /// past the deadline (and [`crate::watchdog::GRACE`]) of an invocation still running, the
    /// report ends the process. A `describe()` runs on a thread of its own and is left behind
    /// at its deadline. Only for a process that runs one invocation at a time (the CLI).
    Watchdog(crate::watchdog::Report),
}

/// Engine-wide settings, fixed for the life of a [`Runtime`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RuntimeOptions {
    /// Pre-allocates instance slots (pooling allocator): faster instantiation for long-lived
    /// processes that invoke many times, at the cost of reserved address space.
    pub pooling: bool,
    /// With `pooling`: how many invocations may be instantiated at once (0: a default of 64).
    /// Each gets room for everything the memory cap allows one invocation, so a component that
    /// takes all of it cannot exhaust the pool for the others.
    pub pool_instances: u32,
    /// Limits applied to every invocation unless overridden.
    pub limits: SandboxLimits,
    /// How a guest that computes past its deadline is stopped.
    pub preemption: Preemption,
}

/// The engine and linker shared by every invocation of a process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<InvocationState>,
    options: RuntimeOptions,
    /// With a watchdog: whether an invocation is running (one at a time, since a late one ends
    /// the process).
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The one invocation a runtime with a watchdog is running; dropping it lets the next start.
struct Running(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

impl Runtime {
    /// Builds the engine and links WASI (deny-all) and the skill imports once.
    pub fn new(options: RuntimeOptions) -> wasmtime::Result<Self> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        // With epoch interruption, each store gets a deadline in ticks and a ticker thread
        // advances the epoch; with a watchdog, the guest's code has no checks at all.
        let epochs = matches!(options.preemption, Preemption::Epoch);
        config.epoch_interruption(epochs);
        config.max_wasm_stack(1 << 20);
        // Neither table is read by the host: a trap is reported by its own words, without
        // wasmtime's backtrace (`trap_text`), and no native unwinder walks guest frames (a host
        // panic is caught before it reaches them). Without them a component's compiled artifact
        // is smaller, and every run reads, authenticates, copies and maps it before the guest
        // starts (BENCHMARKS).
        config.generate_address_map(false);
        config.native_unwind_info(false);
        // `SKILLHOST_PERFMAP=1` names compiled guest functions for `perf` (in
        // `/tmp/perf-PID.map`), so that a skill's hot paths can be profiled where it runs.
        if std::env::var_os("SKILLHOST_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if options.pooling {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool_config(
                options,
            )));
        }
        let engine = Engine::new(&config)?;
        if epochs {
            start_epoch_ticker(&engine);
        }

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        versions::add_to_linker(&mut linker)?;
        Ok(Runtime {
            engine,
            linker,
            options,
            running: Default::default(),
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

    /// Resolves the imports of a component built against `version`, once; the result
    /// instantiates cheaply.
    pub fn prepare(
        &self,
        component: &Component,
        version: ContractVersion,
    ) -> wasmtime::Result<SkillPre<InvocationState>> {
        let pre = self.linker.instantiate_pre(component)?;
        SkillPre::new(version, pre)
    }

    /// Calls `describe()` in a fresh sandbox with the default limits (10 s at most) and no
    /// capabilities, whatever the limits of the command that scans.
    pub async fn describe(&self, pre: &SkillPre<InvocationState>) -> Result<SkillInfo, String> {
        // Fixed limits, whatever the command's: a refusal is remembered by the component's
        // digest, so it must not depend on one command's --max-memory or --timeout.
        let limits = SandboxLimits {
            timeout: Duration::from_secs(10),
            ..SandboxLimits::default()
        };
        let (mut store, stderr) = self.new_store(
            "describe",
            limits,
            Capabilities::none(),
            Box::new(RefuseRows),
        );
        let late = || {
            format!(
                "describe() did not return within {}",
                human_duration(limits.timeout)
            )
        };
        let outcome = match self.options.preemption {
            Preemption::Epoch => {
                let call = pre.describe(&mut store);
                tokio::time::timeout(limits.timeout, call).await
            }
            Preemption::Watchdog(_) => {
                // Nothing in its code can stop a describe() that computes without end, and a
                // command that scans must go on without it: it runs on a thread of its own,
                // left behind (with its store) at the deadline until the process ends. The
                // thread has its own async runtime, which the process's shutting down does not
                // pull from under a describe() left waiting on a timer.
                let (sent, answer) = tokio::sync::oneshot::channel();
                let pre = pre.clone();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start a runtime to call describe(): {e}"))?;
                std::thread::Builder::new()
                    .name("skillhost-describe".into())
                    .spawn(move || {
                        let _ = sent.send(runtime.block_on(pre.describe(&mut store)));
                    })
                    .map_err(|e| format!("cannot start a thread to call describe(): {e}"))?;
                match tokio::time::timeout(limits.timeout, answer).await {
                    Ok(Ok(result)) => Ok(result),
                    Ok(Err(_)) => return Err("describe() ended without an answer".to_string()),
                    Err(elapsed) => Err(elapsed),
                }
            }
        };
        match outcome {
            Ok(Ok(info)) => Ok(info),
            // The epoch deadline stopped a describe() that computes without end.
            Ok(Err(e)) if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) => Err(late()),
            Ok(Err(e)) => Err(describe_trap(&e, &stderr)),
            Err(_) => Err(late()),
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
        // Without epoch checks, a guest that computes past its deadline ends the process.
        let watch = match self.options.preemption {
            Preemption::Epoch => None,
            Preemption::Watchdog(_)
                if self.running.swap(true, std::sync::atomic::Ordering::AcqRel) =>
            {
                return Err(Failure::other(format!(
                    "cannot invoke `{id}` while another invocation runs: a process without \
                     epoch checks runs one at a time"
                )));
            }
            Preemption::Watchdog(report) => Some((
                Running(self.running.clone()),
                crate::watchdog::arm(
                    limits.timeout,
                    report,
                    Violation::Deadline(limits.timeout).into_failure(id),
                )
                .map_err(|e| {
                    Failure::other(format!(
                        "cannot start the watchdog of `{id}`'s deadline: {e}"
                    ))
                })?,
            )),
        };
        if watch.is_some() {
            store.data_mut().expire_at(started + limits.timeout);
        }
        let call = skill.pre.invoke(&mut store, &input);
        let outcome = tokio::time::timeout(limits.timeout, call).await;
        // A guest that computed past its deadline and returned within the watchdog's grace
        // failed as one the watchdog stopped.
        let late = store.data().past_deadline();
        drop(watch);
        store.data().finish_calls();
        tracing::debug!(
            skill = id,
            elapsed_us = started.elapsed().as_micros() as u64,
            "returned"
        );
        forward_guest_output(id, &stderr);
        let state = store.data_mut();
        state.finish_log();
        // Dropped (nothing written, the lock released) unless the run succeeds and its caller
        // commits it after delivering the output.
        let (pending, rows_lost) = state.finish_state();
        let peak_memory = state.memory.peak();
        tracing::debug!(skill = id, peak_memory, "guest memory");
        let api = state.api();
        let output_used = state.output_used();
        let refused = state.memory.refused();
        let violation = state.take_violation();
        let checked = (|| {
            if let Some(requested) = refused {
                return Err(Violation::Memory {
                    limit: limits.max_memory,
                    requested,
                }
                .into_failure(id));
            }
            if let Some(violation) = violation {
                return Err(violation.into_failure(id));
            }
            let result = match outcome {
                Err(_) => return Err(Violation::Deadline(limits.timeout).into_failure(id)),
                Ok(Err(trap)) => return Err(classify_trap(id, &trap, limits, &stderr)),
                Ok(Ok(_)) if late => {
                    return Err(Violation::Deadline(limits.timeout).into_failure(id));
                }
                Ok(Ok(result)) => result,
            };
            match result {
                Ok(json) => result_output(id, json, output_used, limits),
                Err(error) => Err(skill_error_failure(id, error, api)),
            }
        })();
        match checked {
            Ok(output) if rows_lost => {
                // A row the host refused was never delivered: the run's state stays where it was.
                pending.abandon().await;
                Ok(Invocation {
                    output,
                    peak_memory,
                    state: PendingState::none(),
                })
            }
            Ok(output) => Ok(Invocation {
                output,
                peak_memory,
                state: pending,
            }),
            Err(failure) => {
                // Nothing of a failed run is kept, and its lock goes now (a CLI process would
                // exit before a release in the background ran).
                pending.abandon().await;
                Err(failure)
            }
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
        let state = InvocationState::new(skill, limits, capabilities, rows, stdout, stderr.clone());
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        // Without epoch checks there is no tick to set (`Preemption::Watchdog`).
        if matches!(self.options.preemption, Preemption::Watchdog(_)) {
            return (store, stderr);
        }
        // Every tick, a guest that computes yields its thread to the async runtime, so that a
        // skill spinning in a loop cannot hold a runtime thread (and, in `serve`, the other
        // invocations and the health checks) until its deadline; once the deadline's ticks have
        // passed, it traps.
        let ticks = u64::try_from(limits.timeout.as_millis() / EPOCH_TICK.as_millis() + 1)
            .unwrap_or(u64::MAX);
        let mut left = ticks;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            left = left.saturating_sub(1);
            if left == 0 {
                return Ok(wasmtime::UpdateDeadline::Interrupt);
            }
            Ok(wasmtime::UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        (store, stderr)
    }
}

/// The JSON `json` a run returned, checked against the output cap (with the `output_used` of its
/// rows) and the number of values a reader may expand.
fn result_output(
    id: &str,
    json: String,
    output_used: usize,
    limits: SandboxLimits,
) -> Result<Output, Failure> {
    if output_used + json.len() > limits.max_output {
        return Err(Violation::Output(limits.max_output).into_failure(id));
    }
    Output::check(json, MAX_RESULT_VALUES).map_err(|refused| match refused {
        Refused::TooManyValues => Failure::skill(format!(
            "skill `{id}` returned a result of more than {MAX_RESULT_VALUES} JSON values, more \
             than the host expands; a large result belongs in rows (a dataset skill emits them \
             one at a time)"
        )),
        Refused::NotJson(e) => Failure::skill(format!(
            "skill `{id}` returned a result that is not JSON ({e})"
        )),
    })
}

/// The most JSON values (objects, arrays, strings, numbers...) of a result: the host checks a
/// result without a tree, but a reader may expand it into one (the CLI's table, CSV and NDJSON
/// formats do), where each value costs tens of bytes however few it took in the guest's text.
pub const MAX_RESULT_VALUES: usize = 2_000_000;

/// What a successful invocation produced.
#[derive(Debug)]
pub struct Invocation {
    /// The JSON `invoke` returned, checked: the result, or a dataset's summary.
    pub output: Output,
    /// The largest the guest's linear memory grew to, in bytes.
    pub peak_memory: usize,
    /// The state the run staged (contract 0.2): to commit once its output was delivered.
    pub state: PendingState,
}

/// A component ready to instantiate, with its manifest.
pub struct LoadedSkill {
    /// What the skill declared.
    pub manifest: SkillManifest,
    /// Imports resolved once; each invocation instantiates from it.
    pub pre: SkillPre<InvocationState>,
}

fn classify_trap(
    id: &str,
    error: &wasmtime::Error,
    limits: SandboxLimits,
    stderr: &GuestOutput,
) -> Failure {
    let handles_full = error.chain().any(|e| {
        matches!(
            e.downcast_ref::<ResourceTableError>(),
            Some(ResourceTableError::Full)
        )
    });
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Violation::Deadline(limits.timeout).into_failure(id),
        Some(Trap::StackOverflow) => Violation::Stack.into_failure(id),
        _ if handles_full => Violation::Handles(MAX_HANDLES).into_failure(id),
        _ => {
            let trap = trap_text(error);
            match stderr.crash_report() {
                // A Python traceback: its exception is the message, its innermost frames the hint.
                Some(report) if !report.frames.is_empty() => Failure::skill(format!(
                    "skill `{id}` crashed: {} ({trap})",
                    escape(&report.summary)
                ))
                .with_reason(Reason::Internal)
                .with_hint(format!(
                    "the skill's last frames (innermost last): {}; -v shows all it wrote to stderr",
                    escape(&report.frames.join(" > "))
                )),
                Some(report) => Failure::skill(format!("skill `{id}` crashed: {trap}"))
                    .with_reason(Reason::Internal)
                    .with_hint(format!(
                        "the skill's last words: {}",
                        escape(&report.summary)
                    )),
                None => Failure::skill(format!("skill `{id}` crashed: {trap}"))
                    .with_reason(Reason::Internal),
            }
        }
    }
}

fn describe_trap(error: &wasmtime::Error, stderr: &GuestOutput) -> String {
    let mut text = format!("describe() failed: {}", trap_text(error));
    if let Some(report) = stderr.crash_report() {
        text.push_str(&format!(" ({})", escape(&report.summary)));
    }
    text
}

fn forward_guest_output(skill: &str, stderr: &GuestOutput) {
    for line in stderr.lines() {
        tracing::info!(target: "skill", skill, "{}", escape(&line));
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

/// The pooling allocator sized for `options.pool_instances` invocations at once, each with the
/// instances, memories and tables the memory cap (`crate::memory`) allows one invocation.
fn pool_config(options: RuntimeOptions) -> wasmtime::PoolingAllocationConfig {
    use crate::memory::{MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES};
    let instances = if options.pool_instances == 0 {
        64
    } else {
        options.pool_instances
    };
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(instances);
    pool.total_stacks(instances);
    pool.total_core_instances(instances.saturating_mul(MAX_INSTANCES as u32));
    pool.total_memories(instances.saturating_mul(MAX_MEMORIES as u32));
    pool.total_tables(instances.saturating_mul(MAX_TABLES as u32));
    pool.max_core_instances_per_component(MAX_INSTANCES as u32);
    pool.max_memories_per_component(MAX_MEMORIES as u32);
    pool.max_tables_per_component(MAX_TABLES as u32);
    pool.max_memories_per_module(MAX_MEMORIES as u32);
    pool.max_tables_per_module(MAX_TABLES as u32);
    // Interpreters compiled to wasm (componentize-py) have large function tables.
    pool.table_elements(100_000);
    pool.max_memory_size(options.limits.max_memory);
    // A freed slot is reset in place (cleared back to the module's initial image) up to these
    // sizes instead of being decommitted: the madvise, the TLB shootdown it sends to every core
    // and the page faults that follow it cost more than clearing what an invocation had. 2 MiB
    // covers a small Rust guest whole (its 1 MiB stack and its data); in `serve`, no-op
    // invocations went from 9,700-11,800 to 12,200-13,900 a second with it (BENCHMARKS).
    // Linux's PAGEMAP_SCAN would let wasmtime clear only the pages written (18,500-20,000 a
    // second), but in wasmtime 48 a written page that is not present when the slot is freed
    // (swapped out, or being migrated) is neither cleared nor given back, and its data would
    // reach the next tenant: it stays off. `sandbox.rs` (`a_pooled_slot_reaches_the_next_…`)
    // checks that nothing one invocation wrote reaches the next in its slot.
    pool.linear_memory_keep_resident(2 << 20);
    pool.pagemap_scan(wasmtime::Enabled::No);
    pool.table_keep_resident(16 << 10);
    pool.async_stack_keep_resident(64 << 10);
    pool
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
