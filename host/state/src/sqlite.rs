//! The embedded backend: one SQLite file, shared by every process of one machine.
//!
//! Threat: several processes (CLI runs, `serve`) racing on one file, and a slow disk stalling
//! the async runtime. The file is in WAL mode (readers never block the writer), every
//! read-modify-write is one `BEGIN IMMEDIATE` transaction (the write lock is taken before
//! anything is read, so two processes cannot both read the old version and both write), a
//! locked database is waited for up to [`BUSY_TIMEOUT`] and then reported as unavailable, and
//! every call runs on tokio's blocking threads. The folder is created owner-only and the file
//! owner-read/write, though it holds no secret: tokens never go to the store.
//!
//! Two connections per handle: key/value state and leases commit with `synchronous = FULL` (a
//! committed cursor survives a power loss, or the next run would deliver its rows again), pacing
//! with `synchronous = NORMAL` (its log lives an hour; losing its last calls to a power loss
//! costs at most a few early calls, and saves an fsync per API call).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::StoreError;
use crate::kv::{
    Entry, MAX_KEYS_PER_SCOPE, Reset, ScopeSummary, Versioned, Write, WriteOp, too_many_keys,
};
use crate::lease::{Lease, LeaseInfo};
use crate::pacing::{Admission, PacingWindows, decide};
use crate::scope::Scope;

/// How long a call waits for another process's write lock before the store is unavailable.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The pause between two attempts at opening a store another process holds locked.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// How a database another process keeps locked is reported.
const LOCKED: &str = "the database stayed locked by another process";

/// The schema this version writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT OR IGNORE INTO counter (id, last) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS kv (
    tenant TEXT NOT NULL, connection TEXT NOT NULL, skill TEXT NOT NULL, key TEXT NOT NULL,
    value BLOB NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (tenant, connection, skill, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    tenant TEXT NOT NULL, connection TEXT NOT NULL, skill TEXT NOT NULL, name TEXT NOT NULL,
    holder TEXT NOT NULL, token INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, connection, skill, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pacing (key TEXT NOT NULL, at_us INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS pacing_by_key ON pacing (key, at_us);
";

/// A handle on one SQLite store file. Clones share the connections; separate
/// [`SqliteStore::open`]s of one file (in one process or several) coordinate through SQLite's
/// locks.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    state: Mutex<Connection>,
    pacing: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`: its folder (owner-only), the file
    /// (owner read/write), WAL mode and the schema. Unavailable when any of it fails.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let inner = tokio::task::spawn_blocking(move || -> Result<Inner, StoreError> {
            prepare_file(&path)?;
            // Switching a new file to WAL and creating its schema can be refused at once as
            // locked while another process does the same (SQLite does not always wait through
            // the busy handler there): tried again, all attempts within one busy timeout.
            let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
            let (state, pacing) = loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let opened = connect(&path, "FULL", left).and_then(|state| {
                    init_schema(&path, &state)?;
                    Ok((state, connect(&path, "NORMAL", left)?))
                });
                match opened {
                    Err(StoreError::Unavailable(why))
                        if why.contains(LOCKED)
                            && std::time::Instant::now() + RETRY_PAUSE < deadline =>
                    {
                        std::thread::sleep(RETRY_PAUSE);
                    }
                    opened => break opened?,
                }
            };
            // From now on each statement waits the whole busy timeout.
            for conn in [&state, &pacing] {
                conn.busy_timeout(BUSY_TIMEOUT)
                    .map_err(|e| with_path(sql(e), &path))?;
            }
            Ok(Inner {
                path,
                state: Mutex::new(state),
                pacing: Mutex::new(pacing),
            })
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("opening the SQLite store failed: {e}")))??;
        Ok(SqliteStore {
            inner: Arc::new(inner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the state connection, on a blocking thread.
    async fn with_state<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.state.lock().map_err(|_| poisoned(&inner.path))?;
            f(&mut conn).map_err(|e| with_path(e, &inner.path))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("a store task failed: {e}")))?
    }

    pub(crate) async fn get(
        &self,
        scope: &Scope,
        key: &str,
    ) -> Result<Option<Versioned>, StoreError> {
        let (scope, key) = (scope.clone(), key.to_string());
        self.with_state(move |conn| {
            conn.query_row(
                "SELECT value, version FROM kv
                 WHERE tenant = ?1 AND connection = ?2 AND skill = ?3 AND key = ?4",
                params![scope.tenant(), scope.connection(), scope.skill(), key],
                |row| {
                    Ok(Versioned {
                        value: row.get(0)?,
                        version: row.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .optional()
            .map_err(sql)
        })
        .await
    }

    pub(crate) async fn commit(
        &self,
        scope: &Scope,
        writes: &[Write],
        lease: Option<&Lease>,
    ) -> Result<Vec<Option<u64>>, StoreError> {
        let (scope, writes, lease) = (scope.clone(), writes.to_vec(), lease.cloned());
        self.with_state(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            if let Some(lease) = &lease {
                let token: Option<(i64, i64)> = tx
                    .query_row(
                        "SELECT token, expires_at_ms FROM leases
                         WHERE tenant = ?1 AND connection = ?2 AND skill = ?3 AND name = ?4",
                        params![
                            scope.tenant(),
                            scope.connection(),
                            scope.skill(),
                            lease.name
                        ],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()
                    .map_err(sql)?;
                match token {
                    Some((token, expires)) if token as u64 == lease.token && expires > now_ms() => {
                    }
                    _ => {
                        return Err(StoreError::LeaseLost {
                            name: lease.name.clone(),
                        });
                    }
                }
            }
            let mut count: i64 = tx
                .query_row(
                    "SELECT count(*) FROM kv WHERE tenant = ?1 AND connection = ?2 AND skill = ?3",
                    params![scope.tenant(), scope.connection(), scope.skill()],
                    |row| row.get(0),
                )
                .map_err(sql)?;
            for write in &writes {
                let current: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM kv
                         WHERE tenant = ?1 AND connection = ?2 AND skill = ?3 AND key = ?4",
                        params![scope.tenant(), scope.connection(), scope.skill(), write.key],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(sql)?;
                if current.map(|v| v as u64) != write.expected {
                    return Err(StoreError::Conflict {
                        key: write.key.clone(),
                    });
                }
                match (&write.op, current) {
                    (WriteOp::Set(_), None) => count += 1,
                    (WriteOp::Delete, Some(_)) => count -= 1,
                    _ => {}
                }
            }
            if count as usize > MAX_KEYS_PER_SCOPE {
                return Err(too_many_keys(count as u64));
            }
            let mut versions = Vec::with_capacity(writes.len());
            for write in &writes {
                match &write.op {
                    WriteOp::Set(value) => {
                        let version = next_version(&tx)?;
                        tx.execute(
                            "INSERT INTO kv (tenant, connection, skill, key, value, version)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                             ON CONFLICT DO UPDATE SET value = excluded.value,
                                                       version = excluded.version",
                            params![
                                scope.tenant(),
                                scope.connection(),
                                scope.skill(),
                                write.key,
                                value,
                                version as i64
                            ],
                        )
                        .map_err(sql)?;
                        versions.push(Some(version));
                    }
                    WriteOp::Delete => {
                        tx.execute(
                            "DELETE FROM kv
                             WHERE tenant = ?1 AND connection = ?2 AND skill = ?3 AND key = ?4",
                            params![scope.tenant(), scope.connection(), scope.skill(), write.key],
                        )
                        .map_err(sql)?;
                        versions.push(None);
                    }
                }
            }
            tx.commit().map_err(sql)?;
            Ok(versions)
        })
        .await
    }

    pub(crate) async fn list(&self, scope: &Scope) -> Result<Vec<Entry>, StoreError> {
        let scope = scope.clone();
        self.with_state(move |conn| {
            let mut statement = conn
                .prepare(
                    "SELECT key, value, version FROM kv
                     WHERE tenant = ?1 AND connection = ?2 AND skill = ?3 ORDER BY key",
                )
                .map_err(sql)?;
            let rows = statement
                .query_map(
                    params![scope.tenant(), scope.connection(), scope.skill()],
                    |row| {
                        Ok(Entry {
                            key: row.get(0)?,
                            value: Versioned {
                                value: row.get(1)?,
                                version: row.get::<_, i64>(2)? as u64,
                            },
                        })
                    },
                )
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    pub(crate) async fn list_scopes(&self) -> Result<Vec<ScopeSummary>, StoreError> {
        self.with_state(move |conn| {
            let mut statement = conn
                .prepare(
                    "SELECT tenant, connection, skill, count(*) FROM kv
                     GROUP BY tenant, connection, skill ORDER BY tenant, connection, skill",
                )
                .map_err(sql)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .map_err(sql)?;
            let mut scopes = Vec::new();
            for row in rows {
                let (tenant, connection, skill, keys) = row.map_err(sql)?;
                let scope = Scope::new(&tenant, &connection, &skill)
                    .map_err(|e| StoreError::Corrupt(format!("a scope in the file: {e}")))?;
                scopes.push(ScopeSummary {
                    scope,
                    keys: keys as usize,
                });
            }
            Ok(scopes)
        })
        .await
    }

    pub(crate) async fn reset(&self, scope: &Scope, what: &Reset) -> Result<usize, StoreError> {
        let (scope, what) = (scope.clone(), what.clone());
        self.with_state(move |conn| {
            let removed = match &what {
                Reset::Key(key) => conn.execute(
                    "DELETE FROM kv
                     WHERE tenant = ?1 AND connection = ?2 AND skill = ?3 AND key = ?4",
                    params![scope.tenant(), scope.connection(), scope.skill(), key],
                ),
                Reset::All => conn.execute(
                    "DELETE FROM kv WHERE tenant = ?1 AND connection = ?2 AND skill = ?3",
                    params![scope.tenant(), scope.connection(), scope.skill()],
                ),
            };
            removed.map_err(sql)
        })
        .await
    }

    pub(crate) async fn acquire_lease(
        &self,
        scope: &Scope,
        name: &str,
        holder: &str,
        ttl_ms: u64,
    ) -> Result<Lease, StoreError> {
        let (scope, name, holder) = (scope.clone(), name.to_string(), holder.to_string());
        self.with_state(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            let now = now_ms();
            let current: Option<(String, i64, i64)> = tx
                .query_row(
                    "SELECT holder, token, expires_at_ms FROM leases
                     WHERE tenant = ?1 AND connection = ?2 AND skill = ?3 AND name = ?4",
                    params![scope.tenant(), scope.connection(), scope.skill(), name],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(sql)?;
            let token = match current {
                Some((current, _, expires)) if expires > now && current != holder => {
                    return Err(StoreError::Held {
                        name,
                        holder: current,
                        expires_in: Duration::from_millis((expires - now) as u64),
                    });
                }
                // The holder asks again while it holds it: the same lease, renewed.
                Some((_, token, expires)) if expires > now => token as u64,
                _ => next_version(&tx)?,
            };
            tx.execute(
                "INSERT INTO leases (tenant, connection, skill, name, holder, token, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT DO UPDATE SET holder = excluded.holder, token = excluded.token,
                                           expires_at_ms = excluded.expires_at_ms",
                params![
                    scope.tenant(),
                    scope.connection(),
                    scope.skill(),
                    name,
                    holder,
                    token as i64,
                    now + ttl_ms as i64
                ],
            )
            .map_err(sql)?;
            tx.commit().map_err(sql)?;
            Ok(Lease {
                scope,
                name,
                holder,
                token,
            })
        })
        .await
    }

    pub(crate) async fn renew_lease(&self, lease: &Lease, ttl_ms: u64) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.with_state(move |conn| {
            let now = now_ms();
            let changed = conn
                .execute(
                    "UPDATE leases SET expires_at_ms = ?7
                     WHERE tenant = ?1 AND connection = ?2 AND skill = ?3 AND name = ?4
                       AND token = ?5 AND expires_at_ms > ?6",
                    params![
                        lease.scope.tenant(),
                        lease.scope.connection(),
                        lease.scope.skill(),
                        lease.name,
                        lease.token as i64,
                        now,
                        now + ttl_ms as i64
                    ],
                )
                .map_err(sql)?;
            match changed {
                0 => Err(StoreError::LeaseLost { name: lease.name }),
                _ => Ok(()),
            }
        })
        .await
    }

    pub(crate) async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.with_state(move |conn| {
            let removed = conn
                .execute(
                    "DELETE FROM leases
                     WHERE tenant = ?1 AND connection = ?2 AND skill = ?3 AND name = ?4
                       AND token = ?5",
                    params![
                        lease.scope.tenant(),
                        lease.scope.connection(),
                        lease.scope.skill(),
                        lease.name,
                        lease.token as i64
                    ],
                )
                .map_err(sql)?;
            match removed {
                0 => Err(StoreError::LeaseLost { name: lease.name }),
                _ => Ok(()),
            }
        })
        .await
    }

    pub(crate) async fn list_leases(&self, scope: &Scope) -> Result<Vec<LeaseInfo>, StoreError> {
        let scope = scope.clone();
        self.with_state(move |conn| {
            let now = now_ms();
            let mut statement = conn
                .prepare(
                    "SELECT name, holder, expires_at_ms FROM leases
                     WHERE tenant = ?1 AND connection = ?2 AND skill = ?3 AND expires_at_ms > ?4
                     ORDER BY name",
                )
                .map_err(sql)?;
            let rows = statement
                .query_map(
                    params![scope.tenant(), scope.connection(), scope.skill(), now],
                    |row| {
                        Ok(LeaseInfo {
                            name: row.get(0)?,
                            holder: row.get(1)?,
                            expires_in: Duration::from_millis(
                                (row.get::<_, i64>(2)? - now).max(0) as u64
                            ),
                        })
                    },
                )
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    pub(crate) async fn admit(
        &self,
        key: &str,
        windows: &PacingWindows,
        lengths: (u64, u64),
    ) -> Result<Admission, StoreError> {
        let (key, windows) = (key.to_string(), *windows);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.pacing.lock().map_err(|_| poisoned(&inner.path))?;
            admit_in(&mut conn, &key, &windows, lengths).map_err(|e| with_path(e, &inner.path))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("a store task failed: {e}")))?
    }
}

/// One admission decision and its record, in one `IMMEDIATE` transaction.
fn admit_in(
    conn: &mut Connection,
    key: &str,
    windows: &PacingWindows,
    (minute, hour): (u64, u64),
) -> Result<Admission, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let now = now_us();
    // Cached statements: parsing them again on every API call was most of the work.
    tx.prepare_cached("DELETE FROM pacing WHERE key = ?1 AND at_us <= ?2")
        .and_then(|mut s| s.execute(params![key, now - hour as i64]))
        .map_err(sql)?;
    let (total, in_minute): (i64, i64) = tx
        .prepare_cached(
            "SELECT count(*), count(*) FILTER (WHERE at_us > ?2) FROM pacing WHERE key = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![key, now - minute as i64], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
        })
        .map_err(sql)?;
    let nth_oldest = |n: u64| {
        tx.prepare_cached(
            "SELECT at_us FROM pacing WHERE key = ?1 ORDER BY at_us LIMIT 1 OFFSET ?2",
        )
        .and_then(|mut s| s.query_row(params![key, n as i64], |row| row.get::<_, i64>(0)))
        .map_err(sql)
    };
    let decision = decide(
        now,
        (minute, hour),
        windows,
        total as u64,
        in_minute as u64,
        nth_oldest,
    )?;
    if let Some(wait) = decision {
        // Nothing was recorded; the expired calls' deletion may as well stay done.
        tx.commit().map_err(sql)?;
        return Ok(wait);
    }
    tx.prepare_cached("INSERT INTO pacing (key, at_us) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![key, now]))
        .map_err(sql)?;
    tx.commit().map_err(sql)?;
    Ok(Admission::Admitted)
}

/// The store's next version (also the fencing token of a lease), inside a write transaction.
fn next_version(tx: &rusqlite::Transaction<'_>) -> Result<u64, StoreError> {
    tx.query_row(
        "UPDATE counter SET last = last + 1 WHERE id = 1 RETURNING last",
        [],
        |row| row.get::<_, i64>(0),
    )
    .map(|v| v as u64)
    .map_err(sql)
}

/// Creates the folder (owner-only) and the file (owner read/write) if they do not exist, so
/// that SQLite's own creation does not take the process's umask.
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    let unavailable = |what: String, e: std::io::Error| {
        StoreError::Unavailable(format!(
            "{what}: {e}; make it writable, or choose another place with \
             `state = \"sqlite:PATH\"` (or --state / SKILLHOST_STATE)"
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| {
            unavailable(
                format!(
                    "cannot create the folder {} of the SQLite store",
                    dir.display()
                ),
                e,
            )
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop).map_err(|e| {
        unavailable(
            format!(
                "cannot open the SQLite store {} for writing",
                path.display()
            ),
            e,
        )
    })
}

/// A connection waiting at most `busy` for a lock, in WAL mode, with the given `synchronous`
/// level.
fn connect(path: &Path, synchronous: &str, busy: Duration) -> Result<Connection, StoreError> {
    let fail = |e: rusqlite::Error| with_path(sql(e), path);
    let conn = Connection::open(path).map_err(fail)?;
    conn.busy_timeout(busy).map_err(fail)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "the SQLite store {} cannot use WAL mode (it stays in `{mode}`); put it on a local \
             file system",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(fail)?;
    Ok(conn)
}

/// Creates the tables on first use; refuses a file written by a newer schema.
fn init_schema(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    let fail = |e: rusqlite::Error| with_path(sql(e), path);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(fail)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "{} has schema version {version}, newer than this skillhost's {SCHEMA_VERSION}; \
             upgrade skillhost or use another store",
            path.display()
        )));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
    ))
    .map_err(fail)
}

/// A rusqlite error as a store error: anything SQLite reports means the store could not serve.
fn sql(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(format!("{LOCKED} for {} s ({e})", BUSY_TIMEOUT.as_secs()))
        }
        Some(rusqlite::ErrorCode::DatabaseCorrupt) | Some(rusqlite::ErrorCode::NotADatabase) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// Names the file in an unavailable or corrupt store's message.
fn with_path(e: StoreError, path: &Path) -> StoreError {
    match e {
        StoreError::Unavailable(why) if !why.contains(&path.display().to_string()) => {
            StoreError::Unavailable(format!("SQLite store {}: {why}", path.display()))
        }
        StoreError::Corrupt(why) if !why.contains(&path.display().to_string()) => {
            StoreError::Corrupt(format!("SQLite store {}: {why}", path.display()))
        }
        other => other,
    }
}

fn poisoned(path: &Path) -> StoreError {
    StoreError::Unavailable(format!(
        "SQLite store {}: a previous call panicked while holding the connection",
        path.display()
    ))
}

/// Wall-clock milliseconds since the epoch (leases).
fn now_ms() -> i64 {
    now_us() / 1000
}

/// Wall-clock microseconds since the epoch (pacing). One machine shares one clock.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
