//! [`Store`]: the one API over both backends. Inputs are checked here, once, before a backend
//! is asked; each backend makes every operation that reads and then writes one atomic step.

use std::time::Duration;

use crate::error::StoreError;
use crate::kv::{Entry, Reset, ScopeSummary, Versioned, Write, check_batch, check_key};
use crate::lease::{Lease, LeaseInfo, check_lease};
use crate::pacing::{Admission, MAX_PACING_KEY_BYTES, PacingWindows};
use crate::redis::RedisStore;
use crate::scope::{Scope, check_name};
use crate::sqlite::SqliteStore;
use crate::url::StoreUrl;

/// A handle on the durable store. Cheap to clone (clones share connections); safe to use from
/// many tasks at once. Open it once per process and share it.
#[derive(Clone)]
pub enum Store {
    /// An SQLite file (one machine).
    Sqlite(SqliteStore),
    /// A Redis or Valkey server (several machines).
    Redis(RedisStore),
}

impl Store {
    /// Opens the store at `url`: creates the SQLite file and its schema, or connects to Redis.
    /// [`StoreError::Unavailable`] when it cannot (the message names the store and the cause).
    pub async fn open(url: &StoreUrl) -> Result<Store, StoreError> {
        Ok(match url {
            StoreUrl::Sqlite { path } => Store::Sqlite(SqliteStore::open(path).await?),
            StoreUrl::Redis { .. } => Store::Redis(RedisStore::open(&url.to_string()).await?),
        })
    }

    /// The value of `key` in `scope` and its version, or `None` when the key does not exist.
    pub async fn get(&self, scope: &Scope, key: &str) -> Result<Option<Versioned>, StoreError> {
        check_key(key)?;
        match self {
            Store::Sqlite(s) => s.get(scope, key).await,
            Store::Redis(s) => s.get(scope, key).await,
        }
    }

    /// Applies `writes` to `scope` atomically: either every write's expected version matches
    /// (see [`Write::expected`]) and all apply, or none does. Returns, for each write in order,
    /// the version it wrote (`None` for a delete).
    ///
    /// Errors: [`StoreError::Conflict`] naming the first key whose version had changed;
    /// [`StoreError::Limit`] when a value is over [`crate::MAX_VALUE_BYTES`], the batch over
    /// [`crate::MAX_WRITES_PER_COMMIT`], or the scope would hold more than
    /// [`crate::MAX_KEYS_PER_SCOPE`] keys; [`StoreError::Invalid`] for a bad or repeated key.
    /// An empty batch succeeds and writes nothing.
    pub async fn commit(
        &self,
        scope: &Scope,
        writes: &[Write],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        self.commit_inner(scope, writes, None).await
    }

    /// Like [`Store::commit`] into the lease's scope, applied only if `lease` is still held
    /// (same acquisition, not expired) at the moment of the commit; otherwise
    /// [`StoreError::LeaseLost`] and nothing is written. This is how a cursor commits only
    /// while its run still owns it.
    pub async fn commit_holding(
        &self,
        lease: &Lease,
        writes: &[Write],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        self.commit_inner(&lease.scope, writes, Some(lease)).await
    }

    async fn commit_inner(
        &self,
        scope: &Scope,
        writes: &[Write],
        lease: Option<&Lease>,
    ) -> Result<Vec<Option<u64>>, StoreError> {
        check_batch(writes)?;
        if writes.is_empty() && lease.is_none() {
            return Ok(Vec::new());
        }
        match self {
            Store::Sqlite(s) => s.commit(scope, writes, lease).await,
            Store::Redis(s) => s.commit(scope, writes, lease).await,
        }
    }

    /// Every key of `scope` with its value and version, in key order (for `skillhost state
    /// show`; a skill reads its keys one by one with [`Store::get`]).
    pub async fn list(&self, scope: &Scope) -> Result<Vec<Entry>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list(scope).await,
            Store::Redis(s) => s.list(scope).await,
        }
    }

    /// Every scope that holds at least one key, with its key count, in (tenant, connection,
    /// skill) order (for `skillhost state list`).
    pub async fn list_scopes(&self) -> Result<Vec<ScopeSummary>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list_scopes().await,
            Store::Redis(s) => s.list_scopes().await,
        }
    }

    /// Removes one key or every key of `scope` (for `skillhost state reset`), whatever their
    /// versions; returns how many keys were removed. Leases are not touched: a run holding one
    /// finds its commit in conflict, since versions are never reused.
    pub async fn reset(&self, scope: &Scope, what: &Reset) -> Result<usize, StoreError> {
        if let Reset::Key(key) = what {
            check_key(key)?;
        }
        match self {
            Store::Sqlite(s) => s.reset(scope, what).await,
            Store::Redis(s) => s.reset(scope, what).await,
        }
    }

    /// Takes the lease `name` of `scope` for `holder` (a unique id of the run, such as
    /// `host:pid:nonce:run`) for `ttl`. If another holder has it and it has not expired,
    /// [`StoreError::Held`] says who and for how long; an expired lease is taken over. Asked
    /// again by the holder that has it, the same lease is renewed for `ttl`.
    pub async fn acquire_lease(
        &self,
        scope: &Scope,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let ttl_ms = check_lease(name, holder, ttl)?;
        match self {
            Store::Sqlite(s) => s.acquire_lease(scope, name, holder, ttl_ms).await,
            Store::Redis(s) => s.acquire_lease(scope, name, holder, ttl_ms).await,
        }
    }

    /// Extends `lease` to expire `ttl` from now. [`StoreError::LeaseLost`] if it expired or was
    /// taken or released meanwhile (the holder must stop: its commit would fail too).
    pub async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        let ttl_ms = check_lease(&lease.name, &lease.holder, ttl)?;
        match self {
            Store::Sqlite(s) => s.renew_lease(lease, ttl_ms).await,
            Store::Redis(s) => s.renew_lease(lease, ttl_ms).await,
        }
    }

    /// Gives `lease` up so that another holder may take it at once.
    /// [`StoreError::LeaseLost`] if another holder had already taken it over (it stays theirs).
    pub async fn release_lease(&self, lease: Lease) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.release_lease(&lease).await,
            Store::Redis(s) => s.release_lease(&lease).await,
        }
    }

    /// The leases of `scope` in force now, in name order (for `skillhost state show`).
    pub async fn list_leases(&self, scope: &Scope) -> Result<Vec<LeaseInfo>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list_leases(scope).await,
            Store::Redis(s) => s.list_leases(scope).await,
        }
    }

    /// One pacing decision for `key` (for the Microsoft provider: the Entra tenant id and the
    /// app's client id), atomically across every process sharing the store: either the call fits
    /// both `windows` and is recorded ([`Admission::Admitted`]), or nothing is recorded and the
    /// answer is how long until it would fit ([`Admission::Wait`]). The caller sleeps and asks
    /// again; it never sends a call without [`Admission::Admitted`], and on
    /// [`StoreError::Unavailable`] it fails the call rather than send it unpaced.
    ///
    /// Every caller of one key should pass the same windows: each decision counts the shared
    /// log against the windows it is given.
    pub async fn admit(&self, key: &str, windows: &PacingWindows) -> Result<Admission, StoreError> {
        check_name("pacing key", key, MAX_PACING_KEY_BYTES)?;
        let lengths = windows.micros()?;
        match self {
            Store::Sqlite(s) => s.admit(key, windows, lengths).await,
            Store::Redis(s) => s.admit(key, windows, lengths).await,
        }
    }
}
