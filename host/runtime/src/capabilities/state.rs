//! `state` (contract 0.2): what a skill keeps from one run to the next.
//!
//! Threats, and what stops each:
//! - A skill reading or writing another tenant's, connection's or skill's state: the scope is
//!   the host's ([`StateGrant`], built from the bound connection and the registry's skill id);
//!   the guest names keys inside it only. (The skill id is the one the component declares:
//!   the skills folder is trusted, and a component declaring an id inherits its state.)
//! - A skill filling the store or the host: keys, values, writes and staged bytes per run are
//!   capped (checked here before anything is staged), and so are the `state` calls of a run
//!   ([`MAX_STATE_CALLS`], [`MAX_LOCK_CALLS`]), since each may hold the store's write lock that
//!   every process's pacing needs. A key may appear in a conflict message and in logs (control
//!   characters are refused; logs are escaped where they are printed).
//! - A run that fails half way moving a cursor past rows nobody received: writes are only
//!   staged here. The run's caller commits them ([`PendingState::commit`]) after the output was
//!   delivered; a failed, cancelled or killed run drops them.
//! - Two runs on one cursor at once: `lock` takes a lease of the store, renewed while the run
//!   lives and released when it ends; a run holding one commits only if it still holds it, so
//!   a run whose lease was lost (stalled past its expiry, then taken over) writes nothing.
//! - A store that cannot be reached: every call answers `unavailable`, and the skill must stop;
//!   nothing is guessed.
//! - A process ended before its run could release its lock (the CLI's watchdog ends it at a
//!   skill's deadline): the locks held are listed for the process, and
//!   [`release_held_locks`] gives them back first, so the next run need not wait out the lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use skillhost_contract::types::{StateEntry, StateError};
use skillhost_state::{
    Lease, MAX_WRITES_PER_COMMIT, Scope, Store, StoreError, StoreUrl, Write, WriteOp, check_key,
};
use tokio::sync::OnceCell;
use tracing::Instrument;

/// How long a run's lock lasts unless renewed, by default: a killed run blocks its lock this
/// long at most ([`StateStore::with_lock_ttl`] changes it).
pub const LOCK_TTL: Duration = Duration::from_secs(60);

/// The shortest lock lifetime accepted: a live run renews at a third of it, and a renewal must
/// get through a busy store in time.
pub const MIN_LOCK_TTL: Duration = Duration::from_secs(3);

/// The longest lock lifetime accepted: a killed run blocks its cursor that long.
pub const MAX_LOCK_TTL: Duration = Duration::from_secs(3600);

/// The most `state` calls one run makes: each may be a store round trip, and on SQLite a
/// `lock` takes the database's write lock that every process's pacing also needs, so a guest
/// looping on them would slow every tenant's API calls.
pub const MAX_STATE_CALLS: u32 = 10_000;

/// The most `lock` calls one run makes (a run takes one lock; a few retries at most).
pub const MAX_LOCK_CALLS: u32 = 8;

/// The most bytes of values one run stages (they are held by the host until the commit).
pub const MAX_STAGED_BYTES: usize = 1 << 20;

/// A store opened on first use, shared by the invocations of a process: a run that never calls
/// `state` (every 0.1 skill) never opens it.
#[derive(Clone)]
pub struct StateStore {
    url: StoreUrl,
    opened: Arc<OnceCell<Store>>,
    lock_ttl: Duration,
}

impl StateStore {
    /// The store at `url`, not opened yet.
    pub fn new(url: StoreUrl) -> Self {
        StateStore {
            url,
            opened: Arc::new(OnceCell::new()),
            lock_ttl: LOCK_TTL,
        }
    }

    /// The same store, its runs' locks lasting `ttl` unless renewed (clamped to
    /// [`MIN_LOCK_TTL`]..=[`MAX_LOCK_TTL`]); a live run renews at a third of it.
    pub fn with_lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl.clamp(MIN_LOCK_TTL, MAX_LOCK_TTL);
        self
    }

    /// How long a run's lock lasts unless renewed.
    pub fn lock_ttl(&self) -> Duration {
        self.lock_ttl
    }

    /// Where the store is.
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// The open store (opened now if it was not); a failure to open is not remembered, so the
    /// next call tries again.
    pub async fn open(&self) -> Result<&Store, StoreError> {
        self.opened.get_or_try_init(|| Store::open(&self.url)).await
    }
}

/// The state an invocation may use: a store and the scope the host chose.
#[derive(Clone)]
pub struct StateGrant {
    /// The store.
    pub store: StateStore,
    /// (tenant, connection, skill id).
    pub scope: Scope,
}

impl StateGrant {
    /// The state of skill `skill` bound to `connection`, kept in `store`: the scope is
    /// (the connection's tenant, the connection, the skill). A tenant or connection name the
    /// store cannot scope by is refused when the config loads, so a failure here is the
    /// server's, not the request's.
    pub fn for_run(
        store: &StateStore,
        connection: &skillhost_upstream::connections::Connection,
        skill: &str,
    ) -> Result<StateGrant, skillhost_contract::error::Failure> {
        let scope = Scope::new(&connection.tenant, &connection.name, skill)
            .map_err(|e| skillhost_contract::error::Failure::usage(e.to_string()))?;
        Ok(StateGrant {
            store: store.clone(),
            scope,
        })
    }
}

/// A run's lock, renewed in the background while it is held.
struct HeldLock {
    lease: Lease,
    renewer: tokio::task::JoinHandle<()>,
    health: Arc<LockHealth>,
    /// Its entry in the process's list ([`release_held_locks`]), for as long as it is held.
    _listed: Arc<Listed>,
}

/// A held lock as the process's list knows it.
struct Listed {
    store: Store,
    lease: Lease,
    runtime: tokio::runtime::Handle,
}

/// The locks this process's runs hold.
static HELD: std::sync::Mutex<Vec<std::sync::Weak<Listed>>> = std::sync::Mutex::new(Vec::new());

/// Releases every lock this process's runs hold, waiting at most `within` for each: for a
/// process about to end without running its destructors (the CLI's watchdog). Called from a
/// thread outside the async runtime (it blocks on the runtime the lock was taken on).
pub fn release_held_locks(within: Duration) {
    let held: Vec<_> = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .collect();
    for listed in held {
        let release = listed.store.release_lease(listed.lease.clone());
        let _ = listed
            .runtime
            .block_on(async { tokio::time::timeout(within, release).await });
    }
}

/// What the renewing task knows of a lock: whether the store said it is lost, and until when
/// the last successful acquisition or renewal guarantees it.
struct LockHealth {
    lost: std::sync::atomic::AtomicBool,
    valid_until: std::sync::Mutex<std::time::Instant>,
}

impl LockHealth {
    /// Whether the lock may be someone else's by now.
    fn in_doubt(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
            || self
                .valid_until
                .lock()
                .map_or(true, |until| std::time::Instant::now() >= *until)
    }
}

/// The `state` capability of one invocation.
pub struct StateCapability {
    grant: Option<StateGrant>,
    staged: Vec<Write>,
    lock: Option<HeldLock>,
    /// Whether the grant's store failed during the run (then nothing may commit).
    broken: bool,
    /// `state` calls so far, and `lock` calls among them.
    calls: u32,
    locks: u32,
}

/// Distinguishes the runs of one process in lock holder ids.
static RUNS: AtomicU64 = AtomicU64::new(1);

/// Distinguishes this process from every other in lock holder ids: host name and process id
/// alone repeat across containers (the same image's host name, and process 1 in each), and two
/// processes with one holder id would both be given the same lock.
fn process_nonce() -> u64 {
    static NONCE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NONCE.get_or_init(|| {
        let mut bytes = [0u8; 8];
        match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            // No OS randomness: the start time's nanoseconds still set two processes apart.
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        }
    })
}

impl StateCapability {
    /// The capability for a run granted `grant` (`None`: every call is `unavailable`).
    pub fn new(grant: Option<StateGrant>) -> Self {
        StateCapability {
            grant,
            staged: Vec::new(),
            lock: None,
            broken: false,
            calls: 0,
            locks: 0,
        }
    }

    /// Counts one call against [`MAX_STATE_CALLS`].
    fn count(&mut self) -> Result<(), StateError> {
        self.calls += 1;
        if self.calls > MAX_STATE_CALLS {
            return Err(StateError::Limit(format!(
                "a run makes at most {MAX_STATE_CALLS} state calls"
            )));
        }
        Ok(())
    }

    fn grant(&self) -> Result<&StateGrant, StateError> {
        self.grant.as_ref().ok_or_else(|| {
            StateError::Unavailable(
                "this invocation has no state: state is kept per connection, and the skill was \
                 run without one"
                    .to_string(),
            )
        })
    }

    /// `state.get`: the committed value of `key`.
    pub async fn get(&mut self, key: String) -> Result<Option<StateEntry>, StateError> {
        self.count()?;
        check_key(&key).map_err(refused)?;
        let grant = self.grant()?.clone();
        let store = grant.store.open().await.map_err(|e| self.failed(e))?;
        match store.get(&grant.scope, &key).await {
            Ok(found) => Ok(found.map(|v| StateEntry {
                value: v.value,
                version: v.version,
            })),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// `state.set` (`value` given) and `state.delete` (`None`): stages a write of `key`.
    pub fn stage(
        &mut self,
        key: String,
        value: Option<Vec<u8>>,
        expected: Option<u64>,
    ) -> Result<(), StateError> {
        self.count()?;
        self.grant()?;
        let write = match value {
            Some(value) => Write::set(key, expected, value),
            None => Write::delete(key, expected),
        };
        // What the store would refuse at the commit is refused now, in the store's words.
        skillhost_state::check_write(&write).map_err(refused)?;
        let value_bytes = |w: &Write| match &w.op {
            WriteOp::Set(v) => v.len(),
            WriteOp::Delete => 0,
        };
        let staged_bytes: usize = self
            .staged
            .iter()
            .filter(|w| w.key != write.key)
            .map(value_bytes)
            .sum();
        if staged_bytes + value_bytes(&write) > MAX_STAGED_BYTES {
            return Err(StateError::Limit(format!(
                "a run stages at most {MAX_STAGED_BYTES} bytes of values"
            )));
        }
        let staged = self.staged.len();
        match self.staged.iter_mut().find(|w| w.key == write.key) {
            Some(earlier) => *earlier = write,
            None if staged >= MAX_WRITES_PER_COMMIT => {
                return Err(StateError::Limit(format!(
                    "a run writes at most {MAX_WRITES_PER_COMMIT} state keys"
                )));
            }
            None => self.staged.push(write),
        }
        Ok(())
    }

    /// `state.lock`: takes the lock `name` for the rest of the run.
    pub async fn lock(&mut self, name: String) -> Result<(), StateError> {
        self.count()?;
        self.locks += 1;
        if self.locks > MAX_LOCK_CALLS {
            return Err(StateError::Limit(format!(
                "a run calls lock at most {MAX_LOCK_CALLS} times"
            )));
        }
        // A lock name follows a key's rules (and a lease name's: the same 256 bytes).
        check_key(&name).map_err(refused)?;
        if let Some(held) = &self.lock {
            if held.lease.name() == name {
                return Ok(());
            }
            return Err(StateError::Invalid(format!(
                "this run already holds the lock `{}`; a run takes one lock",
                held.lease.name()
            )));
        }
        let grant = self.grant()?.clone();
        let store = grant
            .store
            .open()
            .await
            .map_err(|e| self.failed(e))?
            .clone();
        let holder = holder_id(RUNS.fetch_add(1, Ordering::Relaxed));
        let asked = std::time::Instant::now();
        let lease = match store
            .acquire_lease(&grant.scope, &name, &holder, grant.store.lock_ttl)
            .await
        {
            Ok(lease) => lease,
            Err(StoreError::Held { expires_in, .. }) => {
                return Err(StateError::InUse(format!(
                    "`{name}` is in use by another run (for {:.0} s more at most, if that run \
                     was killed)",
                    expires_in.as_secs_f64().ceil()
                )));
            }
            Err(e) => return Err(self.failed(e)),
        };
        let health = Arc::new(LockHealth {
            lost: std::sync::atomic::AtomicBool::new(false),
            valid_until: std::sync::Mutex::new(asked + grant.store.lock_ttl),
        });
        let listed = Arc::new(Listed {
            store: store.clone(),
            lease: lease.clone(),
            runtime: tokio::runtime::Handle::current(),
        });
        {
            let mut held = HELD
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            held.retain(|entry| entry.strong_count() > 0);
            held.push(Arc::downgrade(&listed));
        }
        // In the run's span (`serve` names its tenant and caller there): its warnings are the run's.
        let renewer = tokio::spawn(
            renew(store, lease.clone(), grant.store.lock_ttl, health.clone()).in_current_span(),
        );
        self.lock = Some(HeldLock {
            lease,
            renewer,
            health,
            _listed: listed,
        });
        Ok(())
    }

    /// The name of the run's lock when it may no longer be the run's: the store said it was
    /// lost, or no renewal got through within its lifetime (the store unreachable, the renewing
    /// task starved), so another run may hold it now. A run in that state must stop emitting:
    /// its commit would fail anyway, and its rows may be the other run's too.
    pub fn lock_in_doubt(&self) -> Option<&str> {
        self.lock
            .as_ref()
            .filter(|held| held.health.in_doubt())
            .map(|held| held.lease.name())
    }

    /// Maps a store failure for the guest, remembering that the run may not commit. The
    /// store's own words (its path or address, the server's error) go to the host's log only:
    /// a guest could pass them on to its caller.
    fn failed(&mut self, error: StoreError) -> StateError {
        self.broken = true;
        match error {
            StoreError::Limit(m) => StateError::Limit(m),
            StoreError::Invalid(m) => StateError::Invalid(m),
            other => {
                tracing::warn!("a skill's state call failed: {other}");
                StateError::Unavailable(
                    "the state store is unavailable; the host's log says why".to_string(),
                )
            }
        }
    }

    /// Hands the staged writes and the lock to whoever delivers the run's output.
    pub fn finish(&mut self) -> PendingState {
        PendingState {
            grant: self.grant.clone(),
            writes: std::mem::take(&mut self.staged),
            lock: self.lock.take(),
            broken: self.broken,
        }
    }
}

impl Drop for StateCapability {
    fn drop(&mut self) {
        // A run that ended without `finish` (a trap, a deadline): its lock goes at once.
        drop(self.finish());
    }
}

/// Renews `lease` for `ttl` every third of it, until the task is aborted or the lease is lost,
/// keeping `health` up to date.
async fn renew(store: Store, lease: Lease, ttl: Duration, health: Arc<LockHealth>) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let asked = std::time::Instant::now();
        match store.renew_lease(&lease, ttl).await {
            Ok(()) => {
                if let Ok(mut until) = health.valid_until.lock() {
                    *until = asked + ttl;
                }
            }
            // The run stops emitting, and the commit, conditional on the lease, fails.
            Err(StoreError::LeaseLost { .. }) => {
                health.lost.store(true, Ordering::Relaxed);
                tracing::warn!(lock = lease.name(), "a run lost its lock to another run");
                return;
            }
            Err(e) => tracing::warn!(lock = lease.name(), "cannot renew a run's lock: {e}"),
        }
    }
}

/// How a summary and an audit record say whether a run's state committed.
pub fn commit_note(committed: bool) -> &'static str {
    if committed {
        "committed"
    } else {
        "not committed"
    }
}

/// Adds to a dataset's summary whether its run's state committed (`"state": "committed"` or
/// `"not committed"`), once every row was delivered; returns the note. A summary that is not an
/// object is left as it is.
pub fn note_commit(summary: &mut serde_json::Value, committed: bool) -> &'static str {
    let note = commit_note(committed);
    if let Some(fields) = summary.as_object_mut() {
        fields.insert("state".into(), note.into());
    }
    note
}

/// The lock holder id of this process's run number `run`: `host:pid:nonce:run`.
fn holder_id(run: u64) -> String {
    format!(
        "{}:{}:{:016x}:{run}",
        host_name(),
        std::process::id(),
        process_nonce()
    )
}

/// This machine's name, for lock holder ids (an operator reading `skillhost state show` sees
/// which machine's run holds a lock).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty() && name.len() <= 64 && name.is_ascii())
        .unwrap_or_else(|| "host".to_string())
}

/// A request the store refuses whatever it holds (a bad key, a value too large), for the guest:
/// refused before anything was asked of the store, so the run may still commit.
fn refused(error: StoreError) -> StateError {
    match error {
        StoreError::Limit(m) => StateError::Limit(m),
        other => StateError::Invalid(other.to_string()),
    }
}

/// A run's staged state, for whoever delivers its output: [`PendingState::commit`] once the
/// output was delivered; dropped otherwise (nothing is written and the lock is released).
pub struct PendingState {
    grant: Option<StateGrant>,
    writes: Vec<Write>,
    lock: Option<HeldLock>,
    broken: bool,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Keys written or deleted.
    pub writes: usize,
}

impl PendingState {
    /// A run with no state: nothing to commit.
    pub fn none() -> Self {
        PendingState {
            grant: None,
            writes: Vec::new(),
            lock: None,
            broken: false,
        }
    }

    /// Whether there is nothing to commit and no lock to release.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.lock.is_none()
    }

    /// Applies the staged writes atomically (each compare-and-set against the version the skill
    /// read; if the run holds a lock, only while it still holds it), then releases the lock.
    pub async fn commit(mut self) -> Result<Committed, StoreError> {
        let lock = self.lock.take();
        if let Some(held) = &lock {
            held.renewer.abort();
        }
        let result = self.apply(lock.as_ref().map(|held| &held.lease)).await;
        if let (Some(held), Some(grant)) = (lock, &self.grant)
            && let Ok(store) = grant.store.open().await
        {
            // A lost lease is someone else's now; there is nothing to give back.
            let _ = store.release_lease(held.lease).await;
        }
        result
    }

    /// Writes nothing and releases the lock now (a run that failed, or whose output was not
    /// delivered whole).
    pub async fn abandon(mut self) {
        let Some(held) = self.lock.take() else {
            return;
        };
        held.renewer.abort();
        if let Some(grant) = &self.grant
            && let Ok(store) = grant.store.open().await
        {
            let _ = store.release_lease(held.lease).await;
        }
    }

    async fn apply(&self, lease: Option<&Lease>) -> Result<Committed, StoreError> {
        if self.writes.is_empty() {
            return Ok(Committed { writes: 0 });
        }
        if self.broken {
            return Err(StoreError::Unavailable(
                "the store failed during the run, so its state is not saved".to_string(),
            ));
        }
        let Some(grant) = &self.grant else {
            return Ok(Committed { writes: 0 });
        };
        let store = grant.store.open().await?;
        let done = match lease {
            Some(lease) => store.commit_holding(lease, &self.writes).await?,
            None => store.commit(&grant.scope, &self.writes).await?,
        };
        Ok(Committed { writes: done.len() })
    }
}

impl Drop for PendingState {
    fn drop(&mut self) {
        let Some(held) = self.lock.take() else {
            return;
        };
        held.renewer.abort();
        let (Some(grant), Ok(runtime)) =
            (self.grant.clone(), tokio::runtime::Handle::try_current())
        else {
            // No runtime to release it on: it expires within the store's lock lifetime.
            return;
        };
        runtime.spawn(async move {
            if let Ok(store) = grant.store.open().await {
                let _ = store.release_lease(held.lease).await;
            }
        });
    }
}

impl std::fmt::Debug for PendingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingState")
            .field("writes", &self.writes.len())
            .field("locked", &self.lock.as_ref().map(|held| held.lease.name()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A capability whose store is never opened by the calls under test.
    fn capability() -> StateCapability {
        let url: StoreUrl = "sqlite:/nonexistent/never-opened.db".parse().unwrap();
        StateCapability::new(Some(StateGrant {
            store: StateStore::new(url),
            scope: Scope::new("acme", "sim", "skill").unwrap(),
        }))
    }

    #[test]
    fn version_zero_is_refused_when_staged_not_at_the_commit() {
        let mut state = capability();
        let refused = state.stage("k".into(), Some(b"v".to_vec()), Some(0));
        assert_eq!(
            refused,
            Err(StateError::Invalid(
                "state key `k` is expected at version 0, which no value has; expect `None` for a \
                 key that must not exist"
                    .to_string()
            ))
        );
        assert_eq!(state.stage("k".into(), Some(b"v".to_vec()), None), Ok(()));
    }

    #[test]
    fn a_run_stages_at_most_a_mebibyte_of_values_and_a_key_staged_again_replaces_its_bytes() {
        let mut state = capability();
        let big = vec![b'x'; skillhost_state::MAX_VALUE_BYTES];
        for n in 0..16 {
            assert_eq!(
                state.stage(format!("k{n}"), Some(big.clone()), None),
                Ok(())
            );
        }
        assert!(matches!(
            state.stage("k16".into(), Some(vec![b'x']), None),
            Err(StateError::Limit(m)) if m == "a run stages at most 1048576 bytes of values"
        ));
        // Replacing a staged key counts its new value instead of the old one.
        assert_eq!(state.stage("k0".into(), Some(big.clone()), Some(3)), Ok(()));
        assert_eq!(state.finish().writes.len(), 16);
    }

    #[test]
    fn a_holder_id_names_the_host_the_process_its_random_nonce_and_the_run() {
        let id = holder_id(7);
        let parts: Vec<&str> = id.rsplitn(4, ':').collect();
        assert_eq!(parts[0], "7");
        assert_eq!(parts[1], format!("{:016x}", process_nonce()));
        assert_eq!(parts[2], std::process::id().to_string());
        assert_eq!(parts[3], host_name());
        // The nonce is drawn once per process.
        assert_eq!(
            holder_id(8),
            format!("{}:{}:{}:8", parts[3], parts[2], parts[1])
        );
    }

    #[test]
    fn a_run_makes_at_most_ten_thousand_state_calls() {
        let mut state = StateCapability::new(None);
        for _ in 0..MAX_STATE_CALLS {
            assert!(matches!(
                state.stage("k".into(), None, None),
                Err(StateError::Unavailable(_))
            ));
        }
        assert!(matches!(
            state.stage("k".into(), None, None),
            Err(StateError::Limit(m)) if m == "a run makes at most 10000 state calls"
        ));
    }
}
