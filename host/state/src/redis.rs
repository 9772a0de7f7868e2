//! The shared backend: one Redis or Valkey server, for processes on several machines.
//!
//! Threat: processes on several machines racing on one cursor or one pacing window, and clocks
//! that disagree between machines. Every read-modify-write is one Lua script, which the server
//! runs alone, and every time a decision needs comes from the server's `TIME` inside the
//! script, so there is one clock for all. Connection failures, timeouts and server refusals
//! (`LOADING`, `READONLY`, `MISCONF`, ...) are all [`StoreError::Unavailable`]. The server must
//! be a single Redis/Valkey (or a primary); Redis Cluster is not supported, since a commit's
//! keys would live on different nodes.
//!
//! A server that requires a password (`requirepass`, an ACL user's password) gets it from
//! [`PASSWORD_FILE_VAR`] (a file holding it, as container secrets are mounted) or
//! [`PASSWORD_VAR`]: never from the URL, which is printed in messages and `ps`. The password is
//! never written anywhere. The connection is plain TCP: reach a server off this machine through
//! a private network or a TLS tunnel.
//!
//! Layout, under `skillhost:v1:` (a scope is [`Scope::encoded`]):
//! `counter` (versions and lease tokens), `scopes` (a set of scopes holding keys),
//! `kv:<scope>` and `ver:<scope>` (hashes key → value and key → version), `lease:<scope>` (a
//! hash name → `token:expires_at_ms:holder`), `pace:<pacing key>` (a sorted set of call times in
//! µs, expiring an hour after the last call).

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use crate::error::StoreError;
use crate::kv::{Entry, MAX_KEYS_PER_SCOPE, Reset, ScopeSummary, Versioned, Write, WriteOp};
use crate::lease::{Lease, LeaseInfo};
use crate::pacing::{Admission, PacingWindows, Window};
use crate::scope::Scope;

/// How long connecting, and each command, may take before the store is unavailable.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

const PREFIX: &str = "skillhost:v1:";

/// Shared by the scripts: the server's clock and exact number formatting (Lua's own `..`
/// keeps only 14 digits).
const PRELUDE: &str = r#"
local function fmt(x) return string.format('%.0f', x) end
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function now_ms() return math.floor(now_us() / 1000) end
"#;

/// KEYS: kv, ver, scopes, counter, leases. ARGV: scope, max keys, lease name ('' for none),
/// lease token, then per write: key, expected version ('' for none), op ('s' or 'd'), value.
static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r#"
if ARGV[3] ~= '' then
  local held = redis.call('HGET', KEYS[5], ARGV[3])
  if not held then return {'lost'} end
  local token, expires = string.match(held, '^(%d+):(%d+):')
  if token ~= ARGV[4] or tonumber(expires) <= now_ms() then return {'lost'} end
end
local count = redis.call('HLEN', KEYS[1])
local n = (#ARGV - 4) / 4
for i = 0, n - 1 do
  local key, expected, op = ARGV[5 + 4 * i], ARGV[6 + 4 * i], ARGV[7 + 4 * i]
  local current = redis.call('HGET', KEYS[2], key)
  if not current then
    if expected ~= '' then return {'conflict', key} end
    if op == 's' then count = count + 1 end
  else
    if current ~= expected then return {'conflict', key} end
    if op == 'd' then count = count - 1 end
  end
end
if count > tonumber(ARGV[2]) then return {'limit', count} end
local versions = {}
for i = 0, n - 1 do
  local key, op, value = ARGV[5 + 4 * i], ARGV[7 + 4 * i], ARGV[8 + 4 * i]
  if op == 's' then
    local version = redis.call('INCR', KEYS[4])
    redis.call('HSET', KEYS[1], key, value)
    redis.call('HSET', KEYS[2], key, fmt(version))
    versions[i + 1] = version
  else
    redis.call('HDEL', KEYS[1], key)
    redis.call('HDEL', KEYS[2], key)
    versions[i + 1] = 0
  end
end
if count > 0 then redis.call('SADD', KEYS[3], ARGV[1]) else redis.call('SREM', KEYS[3], ARGV[1]) end
return {'ok', versions}
"#
    ))
});

/// KEYS: kv, ver, scopes. ARGV: scope, key ('' for every key). Returns how many were removed.
static RESET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local removed
if ARGV[2] == '' then
  removed = redis.call('HLEN', KEYS[1])
  redis.call('DEL', KEYS[1], KEYS[2])
else
  removed = redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[1]) end
return removed
"#,
    )
});

/// KEYS: leases, counter. ARGV: name, holder, ttl ms.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r#"
local now = now_ms()
local token
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local current, expires, holder = string.match(held, '^(%d+):(%d+):(.*)$')
  if not current then return {'corrupt'} end
  if tonumber(expires) > now then
    if holder ~= ARGV[2] then return {'held', holder, fmt(tonumber(expires) - now)} end
    token = current
  end
end
if not token then token = fmt(redis.call('INCR', KEYS[2])) end
redis.call('HSET', KEYS[1], ARGV[1], token .. ':' .. fmt(now + tonumber(ARGV[3])) .. ':' .. ARGV[2])
return {'ok', token}
"#
    ))
});

/// KEYS: leases. ARGV: name, token, ttl ms ('' to release).
static RENEW_OR_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r#"
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then return 'lost' end
local token, expires, holder = string.match(held, '^(%d+):(%d+):(.*)$')
if token ~= ARGV[2] then return 'lost' end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 'ok'
end
local now = now_ms()
if tonumber(expires) <= now then return 'lost' end
redis.call('HSET', KEYS[1], ARGV[1], token .. ':' .. fmt(now + tonumber(ARGV[3])) .. ':' .. holder)
return 'ok'
"#
    ))
});

/// KEYS: leases. Returns name, holder, ms left, for each lease in force.
static LEASES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r#"
local now = now_ms()
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local token, expires, holder = string.match(all[i + 1], '^(%d+):(%d+):(.*)$')
  if token and tonumber(expires) > now then
    table.insert(out, all[i]); table.insert(out, holder); table.insert(out, fmt(tonumber(expires) - now))
  end
end
return out
"#
    ))
});

/// KEYS: the pacing log. ARGV: minute µs, per minute, hour µs, per hour. The decision of
/// `pacing::decide`, on the server's clock.
static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r#"
local now = now_us()
local minute, per_minute = tonumber(ARGV[1]), tonumber(ARGV[2])
local hour, per_hour = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', fmt(now - hour))
local total = redis.call('ZCARD', KEYS[1])
local in_minute = redis.call('ZCOUNT', KEYS[1], '(' .. fmt(now - minute), '+inf')
local function wait_for(count, limit, length)
  if count < limit then return 0 end
  local oldest = redis.call('ZRANGE', KEYS[1], total - limit, total - limit, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + length - now
  if wait < 1 then wait = 1 end
  if wait > length then wait = length end
  return wait
end
local hour_wait = wait_for(total, per_hour, hour)
local minute_wait = wait_for(in_minute, per_minute, minute)
if hour_wait > 0 or minute_wait > 0 then
  if hour_wait >= minute_wait then return {'wait', fmt(hour_wait), 'hour'} end
  return {'wait', fmt(minute_wait), 'minute'}
end
local member = fmt(now)
local n = 0
while redis.call('ZSCORE', KEYS[1], member) do
  n = n + 1
  member = fmt(now) .. '.' .. n
end
redis.call('ZADD', KEYS[1], fmt(now), member)
redis.call('PEXPIRE', KEYS[1], fmt(math.ceil(hour / 1000) + 1000))
return {'ok'}
"#
    ))
});

/// A handle on one Redis or Valkey store. Clones share one multiplexed connection, which is
/// made again after the server went away.
#[derive(Clone)]
pub struct RedisStore {
    url: String,
    conn: ConnectionManager,
}

/// The environment variable naming a file that holds the store's password.
pub const PASSWORD_FILE_VAR: &str = "SKILLHOST_STATE_PASSWORD_FILE";

/// The environment variable holding the store's password.
pub const PASSWORD_VAR: &str = "SKILLHOST_STATE_PASSWORD";

/// The longest password file read.
const MAX_PASSWORD_FILE_BYTES: u64 = 4096;

/// The password for the server, from [`PASSWORD_FILE_VAR`] or [`PASSWORD_VAR`] (not both); a
/// file's trailing line break is not part of it.
fn password() -> Result<Option<String>, StoreError> {
    let file = std::env::var_os(PASSWORD_FILE_VAR);
    let value = std::env::var_os(PASSWORD_VAR);
    let (password, from) = match (file, value) {
        (Some(_), Some(_)) => {
            return Err(StoreError::Invalid(format!(
                "state store: both {PASSWORD_FILE_VAR} and {PASSWORD_VAR} are set; set one"
            )));
        }
        (Some(path), None) => {
            // The path is not quoted in the message: put there by mistake, it would be the
            // password itself.
            let cannot = |why: String| {
                StoreError::Invalid(format!(
                    "state store: cannot read the password file {PASSWORD_FILE_VAR} names: {why}"
                ))
            };
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut std::io::Read::take(
                    std::fs::File::open(&path).map_err(|e| cannot(e.kind().to_string()))?,
                    MAX_PASSWORD_FILE_BYTES + 1,
                ),
                &mut text,
            )
            .map_err(|e| cannot(e.kind().to_string()))?;
            if text.len() as u64 > MAX_PASSWORD_FILE_BYTES {
                return Err(cannot(format!(
                    "it is longer than {MAX_PASSWORD_FILE_BYTES} bytes"
                )));
            }
            (
                text.trim_end_matches(['\n', '\r']).to_string(),
                PASSWORD_FILE_VAR,
            )
        }
        (None, Some(value)) => (
            value.into_string().map_err(|_| {
                StoreError::Invalid(format!("state store: {PASSWORD_VAR} is not UTF-8"))
            })?,
            PASSWORD_VAR,
        ),
        (None, None) => return Ok(None),
    };
    if password.is_empty() {
        return Err(StoreError::Invalid(format!(
            "state store: the password in {from} is empty"
        )));
    }
    Ok(Some(password))
}

/// What to do when the server refused the password, or asked for one.
const PASSWORD_HINT: &str = "the server's password is missing or wrong: put it in a file named by \
     SKILLHOST_STATE_PASSWORD_FILE (or in SKILLHOST_STATE_PASSWORD), and give none to a server \
     without one";

/// Whether `e` is the server refusing this client for its password (missing or wrong), as the
/// client and servers say it: a failed authentication, NOAUTH and WRONGPASS, or (Redis 7, to a
/// client that did not authenticate) a protocol error naming it unauthenticated.
fn refused_password(e: &redis::RedisError) -> bool {
    let text = e.to_string();
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"))
        || [
            "NOAUTH",
            "WRONGPASS",
            "unauthenticated",
            "without any password configured",
        ]
        .iter()
        .any(|sign| text.contains(sign))
}

/// The store at `url` could not serve, for `e`: with what to do about the password when the
/// server refused it, else with `otherwise` if given.
fn unreachable(url: &str, e: redis::RedisError, otherwise: Option<&str>) -> StoreError {
    let what_to_do = if refused_password(&e) {
        Some(PASSWORD_HINT)
    } else {
        otherwise
    };
    StoreError::Unavailable(match what_to_do {
        Some(what_to_do) => format!("Redis store {url}: {e}; {what_to_do}"),
        None => format!("Redis store {url}: {e}"),
    })
}

impl RedisStore {
    /// Connects to `url` (`redis://HOST:PORT/DB`, as [`crate::StoreUrl`] prints it), with the
    /// password of [`PASSWORD_FILE_VAR`] or [`PASSWORD_VAR`] if one is set, failing as
    /// unavailable within about [`REDIS_TIMEOUT`] when the server cannot be reached.
    pub async fn open(url: &str) -> Result<RedisStore, StoreError> {
        let unavailable = |e: redis::RedisError| {
            unreachable(
                url,
                e,
                Some("check that the server runs and this machine may reach it"),
            )
        };
        let mut info = redis::IntoConnectionInfo::into_connection_info(url).map_err(unavailable)?;
        if let Some(password) = password()? {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(RedisStore {
            url: url.to_string(),
            conn,
        })
    }

    fn unavailable(&self, e: redis::RedisError) -> StoreError {
        unreachable(&self.url, e, None)
    }

    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::Corrupt(format!("Redis store {}: {what}", self.url))
    }

    pub(crate) async fn get(
        &self,
        scope: &Scope,
        key: &str,
    ) -> Result<Option<Versioned>, StoreError> {
        let scope = scope.encoded();
        let mut conn = self.conn.clone();
        let (value, version): (Option<Vec<u8>>, Option<String>) = redis::pipe()
            .atomic()
            .hget(format!("{PREFIX}kv:{scope}"), key)
            .hget(format!("{PREFIX}ver:{scope}"), key)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        match (value, version) {
            (None, None) => Ok(None),
            (Some(value), Some(version)) => Ok(Some(Versioned {
                value,
                version: self.version(&version)?,
            })),
            _ => Err(self.corrupt(&format!("key `{key}` has a value or a version, not both"))),
        }
    }

    fn version(&self, text: &str) -> Result<u64, StoreError> {
        text.parse()
            .map_err(|_| self.corrupt(&format!("`{text}` is not a version")))
    }

    pub(crate) async fn commit(
        &self,
        scope: &Scope,
        writes: &[Write],
        lease: Option<&Lease>,
    ) -> Result<Vec<Option<u64>>, StoreError> {
        let id = scope.encoded();
        let mut invocation = COMMIT.prepare_invoke();
        invocation
            .key(format!("{PREFIX}kv:{id}"))
            .key(format!("{PREFIX}ver:{id}"))
            .key(format!("{PREFIX}scopes"))
            .key(format!("{PREFIX}counter"))
            .key(format!("{PREFIX}lease:{id}"))
            .arg(&id)
            .arg(MAX_KEYS_PER_SCOPE)
            .arg(lease.map_or("", |l| l.name.as_str()))
            .arg(lease.map_or(String::new(), |l| l.token.to_string()));
        for write in writes {
            invocation
                .arg(&write.key)
                .arg(write.expected.map_or(String::new(), |v| v.to_string()));
            match &write.op {
                WriteOp::Set(value) => invocation.arg("s").arg(value.as_slice()),
                WriteOp::Delete => invocation.arg("d").arg(""),
            };
        }
        let mut conn = self.conn.clone();
        let reply: Vec<Value> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        match reply.as_slice() {
            [status, versions] if text(status).as_deref() == Some("ok") => {
                let Value::Array(versions) = versions else {
                    return Err(self.corrupt("a commit's versions are not a list"));
                };
                versions
                    .iter()
                    .map(|v| match v {
                        Value::Int(0) => Ok(None),
                        Value::Int(v) if *v > 0 => Ok(Some(*v as u64)),
                        _ => Err(self.corrupt("a commit's version is not a number")),
                    })
                    .collect()
            }
            [status, key] if text(status).as_deref() == Some("conflict") => {
                Err(StoreError::Conflict {
                    key: text(key).unwrap_or_default(),
                })
            }
            [status, Value::Int(count)] if text(status).as_deref() == Some("limit") => {
                Err(crate::kv::too_many_keys(*count as u64))
            }
            [status] if text(status).as_deref() == Some("lost") => Err(StoreError::LeaseLost {
                name: lease.map(|l| l.name.clone()).unwrap_or_default(),
            }),
            _ => Err(self.corrupt("unexpected answer to a commit")),
        }
    }

    pub(crate) async fn list(&self, scope: &Scope) -> Result<Vec<Entry>, StoreError> {
        let id = scope.encoded();
        let mut conn = self.conn.clone();
        type Pairs<V> = Vec<(String, V)>;
        let (values, versions): (Pairs<Vec<u8>>, Pairs<String>) = redis::pipe()
            .atomic()
            .hgetall(format!("{PREFIX}kv:{id}"))
            .hgetall(format!("{PREFIX}ver:{id}"))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        let versions: std::collections::HashMap<String, String> = versions.into_iter().collect();
        let mut entries = values
            .into_iter()
            .map(|(key, value)| {
                let version = versions
                    .get(&key)
                    .ok_or_else(|| self.corrupt(&format!("key `{key}` has no version")))?;
                Ok(Entry {
                    value: Versioned {
                        value,
                        version: self.version(version)?,
                    },
                    key,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    pub(crate) async fn list_scopes(&self) -> Result<Vec<ScopeSummary>, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(format!("{PREFIX}scopes"))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut counts = redis::pipe();
        for id in &ids {
            counts.hlen(format!("{PREFIX}kv:{id}"));
        }
        let counts: Vec<usize> = counts
            .query_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut scopes = Vec::with_capacity(ids.len());
        for (id, keys) in ids.iter().zip(counts) {
            if keys > 0 {
                scopes.push(ScopeSummary {
                    scope: Scope::decode(id)?,
                    keys,
                });
            }
        }
        scopes.sort_by(|a, b| a.scope.cmp(&b.scope));
        Ok(scopes)
    }

    pub(crate) async fn reset(&self, scope: &Scope, what: &Reset) -> Result<usize, StoreError> {
        let id = scope.encoded();
        let mut conn = self.conn.clone();
        RESET
            .key(format!("{PREFIX}kv:{id}"))
            .key(format!("{PREFIX}ver:{id}"))
            .key(format!("{PREFIX}scopes"))
            .arg(&id)
            .arg(match what {
                Reset::Key(key) => key.as_str(),
                Reset::All => "",
            })
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))
    }

    pub(crate) async fn acquire_lease(
        &self,
        scope: &Scope,
        name: &str,
        holder: &str,
        ttl_ms: u64,
    ) -> Result<Lease, StoreError> {
        let id = scope.encoded();
        let mut conn = self.conn.clone();
        let reply: Vec<Value> = ACQUIRE
            .key(format!("{PREFIX}lease:{id}"))
            .key(format!("{PREFIX}counter"))
            .arg(name)
            .arg(holder)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        let reply: Vec<Option<String>> = reply.iter().map(text).collect();
        match reply.as_slice() {
            [Some(ok), Some(token)] if ok == "ok" => Ok(Lease {
                scope: scope.clone(),
                name: name.to_string(),
                holder: holder.to_string(),
                token: self.version(token)?,
            }),
            [Some(held), Some(by), Some(ms)] if held == "held" => Err(StoreError::Held {
                name: name.to_string(),
                holder: by.clone(),
                expires_in: Duration::from_millis(self.version(ms)?),
            }),
            _ => Err(self.corrupt(&format!("lease `{name}` is not in a form this host wrote"))),
        }
    }

    async fn renew_or_release(&self, lease: &Lease, ttl: &str) -> Result<(), StoreError> {
        let id = lease.scope.encoded();
        let mut conn = self.conn.clone();
        let reply: String = RENEW_OR_RELEASE
            .key(format!("{PREFIX}lease:{id}"))
            .arg(&lease.name)
            .arg(lease.token.to_string())
            .arg(ttl)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        match reply.as_str() {
            "ok" => Ok(()),
            _ => Err(StoreError::LeaseLost {
                name: lease.name.clone(),
            }),
        }
    }

    pub(crate) async fn renew_lease(&self, lease: &Lease, ttl_ms: u64) -> Result<(), StoreError> {
        self.renew_or_release(lease, &ttl_ms.to_string()).await
    }

    pub(crate) async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.renew_or_release(lease, "").await
    }

    pub(crate) async fn list_leases(&self, scope: &Scope) -> Result<Vec<LeaseInfo>, StoreError> {
        let id = scope.encoded();
        let mut conn = self.conn.clone();
        let flat: Vec<String> = LEASES
            .key(format!("{PREFIX}lease:{id}"))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut leases = flat
            .chunks_exact(3)
            .map(|chunk| {
                Ok(LeaseInfo {
                    name: chunk[0].clone(),
                    holder: chunk[1].clone(),
                    expires_in: Duration::from_millis(self.version(&chunk[2])?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        leases.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(leases)
    }

    pub(crate) async fn admit(
        &self,
        key: &str,
        windows: &PacingWindows,
        (minute, hour): (u64, u64),
    ) -> Result<Admission, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Vec<Value> = ADMIT
            .key(format!("{PREFIX}pace:{key}"))
            .arg(minute)
            .arg(windows.per_minute)
            .arg(hour)
            .arg(windows.per_hour)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        let reply: Vec<Option<String>> = reply.iter().map(text).collect();
        match reply.as_slice() {
            [Some(ok)] if ok == "ok" => Ok(Admission::Admitted),
            [Some(wait), Some(us), Some(window)] if wait == "wait" => Ok(Admission::Wait {
                wait: Duration::from_micros(self.version(us)?),
                window: match window.as_str() {
                    "minute" => Window::Minute,
                    _ => Window::Hour,
                },
            }),
            _ => Err(self.corrupt("unexpected answer to a pacing admission")),
        }
    }
}

/// A string reply as text.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".to_string()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}
