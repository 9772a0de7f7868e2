//! The flags every command accepts, and what they decide: the config file, the skills sources,
//! the compile cache, and the host built from them.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use skillhost_contract::error::{Failure, Reason};
use skillhost_runtime::capabilities::state::{MAX_LOCK_TTL, MIN_LOCK_TTL, StateStore};
use skillhost_runtime::compile_cache::CompileCache;
use skillhost_runtime::host::SkillHost;
use skillhost_runtime::limits::{SandboxLimits, parse_bytes, parse_duration};
use skillhost_runtime::registry::{EmbeddedSkill, RegistryLimits, SkillSource};
use skillhost_runtime::sandbox::{Preemption, RuntimeOptions};
use skillhost_state::StoreUrl;
use skillhost_upstream::connections::Config;
use skillhost_upstream::outbound::Connector;
use skillhost_upstream::pacing::PacingBackend;

/// The Defender skills, compiled into this binary by its build script.
pub static BUILT_IN_SKILLS: &[EmbeddedSkill] = include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The runtime of a command that runs one invocation at a time (every command but `serve`):
/// guest code without epoch checks, which cost a skill that parses JSON about 13% of its CPU
/// (BENCHMARKS); a guest still computing past its deadline ends the process with the deadline's
/// failure, reported as `main` reports any.
pub fn one_at_a_time(limits: SandboxLimits) -> RuntimeOptions {
    // What the watchdog writes before it ends the process.
    skillhost_upstream::audit::keep_open_records();
    RuntimeOptions {
        pooling: false,
        pool_instances: 0,
        limits,
        preemption: Preemption::Watchdog(end_past_deadline),
    }
}

/// Reports a guest still running past its deadline (from the watchdog's thread) and ends the
/// process with the failure's exit code.
fn end_past_deadline(failure: Failure) -> ! {
    // What the process's destructors would have done: the records of calls still open, and
    // the locks of its runs, released so the next run need not wait out their lease. On a
    // thread of its own and waited for 750 ms at most: an audit log that stopped taking
    // writes, or a store that does not answer, must not keep the process from ending.
    let (done, finished) = std::sync::mpsc::channel();
    let rites = std::thread::Builder::new()
        .name("skillhost-last".into())
        .spawn(move || {
            skillhost_upstream::audit::write_open(
                "the process ended: the skill ran past its deadline",
            );
            skillhost_runtime::capabilities::state::release_held_locks(
                std::time::Duration::from_millis(500),
            );
            let _ = done.send(());
        });
    if rites.is_ok() {
        let _ = finished.recv_timeout(std::time::Duration::from_millis(750));
    }
    std::process::exit(i32::from(crate::last_word(Err(failure))))
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file with the connections [default: $SKILLHOST_CONFIG, then ./skillhost.toml].
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// A folder of skill components (*.wasm). Repeatable. Replaces the default skills: the
    /// Defender skills built into this binary, then the folders in $SKILLHOST_SKILLS
    /// (colon-separated).
    #[arg(long = "skills-dir", global = true, value_name = "DIR")]
    pub skills_dirs: Vec<PathBuf>,

    /// Folder of precompiled components [default: $SKILLHOST_CACHE_DIR, $XDG_CACHE_HOME/skillhost
    /// or ~/.cache/skillhost].
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compile every component on every run instead of using the cache.
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// The largest component file a skills folder may hold, such as 64M; a larger one is skipped
    /// without being read.
    #[arg(long, global = true, value_name = "SIZE", default_value = "64M")]
    pub max_component_size: String,

    /// The durable store of skills' state and cursors: sqlite:PATH (one machine) or
    /// redis://HOST:PORT/DB (several) [default: the config's `state`, then
    /// sqlite:$XDG_STATE_HOME/skillhost/state.db].
    #[arg(long, global = true, value_name = "URL", env = "SKILLHOST_STATE")]
    pub state: Option<String>,

    /// How long a run's lock on its state (an incremental cursor) lasts unless the run renews
    /// it, such as 60s: a killed run blocks its cursor this long at most (3s to 60m).
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        env = "SKILLHOST_LOCK_TTL",
        default_value = "60s"
    )]
    pub lock_ttl: String,

    /// Log more to stderr (-v: debug, -vv: trace). SKILLHOST_LOG takes a tracing filter too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// Where skills are looked for: the `--skills-dir` folders if any were given, else the
    /// built-in skills and the folders of `$SKILLHOST_SKILLS`.
    pub fn skill_sources(&self) -> Vec<SkillSource> {
        if !self.skills_dirs.is_empty() {
            return self
                .skills_dirs
                .iter()
                .cloned()
                .map(SkillSource::Folder)
                .collect();
        }
        let mut sources = vec![SkillSource::Embedded(BUILT_IN_SKILLS)];
        if let Some(extra) = std::env::var_os("SKILLHOST_SKILLS") {
            sources.extend(
                std::env::split_paths(&extra)
                    .filter(|d| d.is_dir())
                    .map(SkillSource::Folder),
            );
        }
        sources
    }

    /// The compile cache in effect.
    pub fn compile_cache(&self) -> CompileCache {
        if self.no_cache {
            return CompileCache::disabled();
        }
        match self.cache_dir.clone().or_else(CompileCache::default_dir) {
            Some(dir) => CompileCache::open(dir),
            None => CompileCache::disabled(),
        }
    }

    /// Where state is kept: `--state` or `$SKILLHOST_STATE`, then the config's `state`, then the
    /// default SQLite file. Nothing is opened here.
    pub fn state_store(&self, config: Option<&Config>) -> Result<StateStore, Failure> {
        let (text, origin) = match (&self.state, config.and_then(|c| c.state.as_ref())) {
            (Some(text), _) => (Some(text.as_str()), "--state"),
            (None, Some(text)) => (Some(text.as_str()), "the config's `state`"),
            (None, None) => (None, ""),
        };
        let url = match text {
            Some(text) => text
                .parse::<StoreUrl>()
                .map_err(|e| Failure::usage(format!("{origin}: {e}")))?,
            None => StoreUrl::default_sqlite().map_err(|e| {
                Failure::usage(e.to_string())
                    .with_hint("pass --state sqlite:PATH or set SKILLHOST_STATE")
            })?,
        };
        let ttl = parse_duration(&self.lock_ttl)
            .ok()
            .filter(|ttl| (MIN_LOCK_TTL..=MAX_LOCK_TTL).contains(ttl))
            .ok_or_else(|| {
                Failure::usage(format!(
                    "--lock-ttl {:?}: give a duration from 3s to 60m, such as 60s",
                    self.lock_ttl
                ))
            })?;
        Ok(StateStore::new(url).with_lock_ttl(ttl))
    }

    /// Opens `state` and has `connector` pace every API call through it, so that every process
    /// sharing the store shares each (tenant, app)'s budget. Without the store nothing may be
    /// sent: a call is never made unpaced.
    pub async fn pace_through(state: &StateStore, connector: &Connector) -> Result<(), Failure> {
        let store = state.open().await.map_err(|e| {
            Failure::skill(format!("cannot pace the connection's calls: {e}"))
                .with_reason(Reason::Unavailable)
                .with_hint(format!(
                    "the state store ({}) paces calls across processes and keeps skills' state; \
                     make it reachable, or pass --state sqlite:PATH to use a local file",
                    state.url()
                ))
        })?;
        connector.set_pacing(PacingBackend::Store(store.clone()));
        Ok(())
    }

    /// Starts the runtime and scans the skills.
    pub async fn open_host(
        &self,
        options: RuntimeOptions,
        connector: Arc<Connector>,
    ) -> Result<SkillHost, Failure> {
        self.open_host_over(options, connector, self.skill_sources())
            .await
    }

    /// Starts the runtime and scans `sources` (instead of the skills sources of the flags), with
    /// the flags' component size limit and compile cache.
    pub async fn open_host_over(
        &self,
        options: RuntimeOptions,
        connector: Arc<Connector>,
        sources: Vec<SkillSource>,
    ) -> Result<SkillHost, Failure> {
        let max_component_bytes = parse_bytes(&self.max_component_size)
            .map_err(|m| Failure::usage(format!("--max-component-size: {m}")))?;
        let limits = RegistryLimits {
            max_component_bytes: max_component_bytes as u64,
        };
        SkillHost::open_with(options, limits, self.compile_cache(), sources, connector).await
    }
}
