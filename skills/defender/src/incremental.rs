//! Incremental runs of the list skills: a named cursor, kept in the host's state, that says
//! where the last completed run ended and which incident versions it already delivered.
//!
//! A run with `incremental` takes the cursor's lock (a second run on the same cursor fails at
//! once with `conflict`), reads the cursor, lists every incident whose `lastUpdateTime` is at
//! or after the cursor's `from` (the first run: the window the usual parameters give), delivers
//! the versions (id + `lastUpdateTime`) it has not delivered before, and stages the next cursor:
//!
//! - `next` = the run's start − `overlap_seconds` (default 300, never less than `from`). An
//!   update the API shows late (it indexes for a while) has a `lastUpdateTime` behind the time
//!   it became visible; if it was not visible when this run started, its `lastUpdateTime` is
//!   after `next` as long as the delay is shorter than the overlap, so the next run finds it.
//!   (The overlap also absorbs a clock difference between this host and the service.)
//! - `seen` = every version delivered with a `lastUpdateTime` at or after `next`: the next run
//!   lists those again (they are inside its window) and drops them, so no completed run
//!   delivers a version twice. Older versions cannot come back: they are outside every later
//!   window.
//!
//! The host applies the staged cursor only after the run's output was delivered, so a failed,
//! killed or cancelled run leaves it where it was and the next run re-delivers instead of
//! skipping. Nothing here calls the host: the cursor's store is the [`CursorStore`] trait, so
//! the same code runs natively in tests.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use skillhost_guest::{ParamKind, ParamSpec, SkillError};

use crate::params::{Api, ListRequest};

/// The default `overlap_seconds`: the "at least 5 minutes".
pub const DEFAULT_OVERLAP_SECONDS: i64 = 300;

/// The most `overlap_seconds` accepted: one day.
pub const MAX_OVERLAP_SECONDS: i64 = 86_400;

/// The most bytes of one stored value (the host's cap is 64 KiB; this leaves room).
const CHUNK_BYTES: usize = 60 * 1024;

/// The most values one cursor spreads its `seen` list over (15 × 60 KiB stays under the 1 MiB
/// a run may stage).
const MAX_CHUNKS: usize = 15;

/// The format of the stored cursor; a cursor of another format is refused, never guessed.
const FORMAT: u64 = 1;

/// The parameters of incremental runs, added to both list skills.
pub fn incremental_parameters() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("incremental", ParamKind::Boolean, false, "Continue from where the last completed run with the same `cursor` ended: deliver every incident version (id + lastUpdateTime) that became visible since, none twice. The first run starts from the usual window. Cannot be combined with `end_time`, `limit` or `time_field` = createdTime.")
            .default_json("false"),
        ParamSpec::new("cursor", ParamKind::Text, false, "Name of the incremental cursor (letters, digits, `-`, `_`, `.`; at most 64): separate pipelines keep separate cursors.")
            .default_json("\"default\""),
        ParamSpec::new("overlap_seconds", ParamKind::Integer, false, "How far behind its last start an incremental run looks again, for updates the API shows late (and clock differences); versions already delivered are not delivered again.")
            .default_json(&DEFAULT_OVERLAP_SECONDS.to_string())
            .range(Some(0), Some(MAX_OVERLAP_SECONDS)),
    ]
}

/// The validated incremental parameters of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incremental {
    /// The cursor's name.
    pub cursor: String,
    /// How far behind the run's start the next run starts.
    pub overlap: SignedDuration,
}

impl Incremental {
    /// The incremental parameters of `input`, or `None` when `incremental` is not true. Refuses
    /// what an incremental run cannot honour: an end to the window (it would stop the cursor),
    /// a `limit` (the cursor would pass incidents never read) and `createdTime` (an update
    /// would never be seen).
    pub fn from_input(input: &Value) -> Result<Option<Incremental>, SkillError> {
        if input["incremental"].as_bool() != Some(true) {
            return Ok(None);
        }
        let refuse = |why: &str| Err(SkillError::InvalidInput(why.to_string()));
        if !input["end_time"].is_null() {
            return refuse(
                "`end_time` cannot be combined with `incremental`: an incremental run always reads up to now; drop `end_time`",
            );
        }
        if !input["limit"].is_null() {
            return refuse(
                "`limit` cannot be combined with `incremental`: the cursor would move past incidents never read; drop `limit`",
            );
        }
        if input["time_field"].as_str() == Some("createdTime") {
            return refuse(
                "`time_field` createdTime cannot be combined with `incremental`: updates would never be seen; drop `time_field` (incremental runs follow lastUpdateTime)",
            );
        }
        let cursor = input["cursor"].as_str().unwrap_or("default");
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if cursor.is_empty() || cursor.len() > 64 || !cursor.chars().all(valid) {
            return Err(SkillError::InvalidInput(format!(
                "cursor {:?} is not a cursor name: use 1 to 64 letters, digits, `-`, `_` or `.`",
                cursor.chars().take(80).collect::<String>()
            )));
        }
        let overlap = input["overlap_seconds"]
            .as_i64()
            .unwrap_or(DEFAULT_OVERLAP_SECONDS);
        if !(0..=MAX_OVERLAP_SECONDS).contains(&overlap) {
            return Err(SkillError::InvalidInput(format!(
                "overlap_seconds must be between 0 and {MAX_OVERLAP_SECONDS}, not {overlap}"
            )));
        }
        Ok(Some(Incremental {
            cursor: cursor.to_string(),
            overlap: SignedDuration::from_secs(overlap),
        }))
    }
}

/// Where cursors are kept: the host's `state` import in a skill ([`HostState`]), a map in tests.
pub trait CursorStore {
    /// Takes lock `name` for the rest of the run; `conflict` when another run holds it.
    fn lock(&mut self, name: &str) -> Result<(), SkillError>;
    /// The committed value of `key` and its version.
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u64)>, SkillError>;
    /// Stages `key = value` if `key` is then at `expected` (none: absent).
    fn set(&mut self, key: &str, value: Vec<u8>, expected: Option<u64>) -> Result<(), SkillError>;
    /// Stages deleting `key` if it is then at `expected`.
    fn delete(&mut self, key: &str, expected: u64) -> Result<(), SkillError>;
}

/// [`CursorStore`] over the host's `state` import (contract 0.2.0).
#[cfg(feature = "state")]
pub struct HostState;

#[cfg(feature = "state")]
impl CursorStore for HostState {
    fn lock(&mut self, name: &str) -> Result<(), SkillError> {
        skillhost_guest::state::lock(name).map_err(skillhost_guest::state::state_error)
    }

    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u64)>, SkillError> {
        let entry =
            skillhost_guest::state::get(key).map_err(skillhost_guest::state::state_error)?;
        Ok(entry.map(|e| (e.value, e.version)))
    }

    fn set(&mut self, key: &str, value: Vec<u8>, expected: Option<u64>) -> Result<(), SkillError> {
        skillhost_guest::state::set(key, &value, expected)
            .map_err(skillhost_guest::state::state_error)
    }

    fn delete(&mut self, key: &str, expected: u64) -> Result<(), SkillError> {
        skillhost_guest::state::delete(key, Some(expected))
            .map_err(skillhost_guest::state::state_error)
    }
}

/// One delivered version: the incident's id and its `lastUpdateTime`.
type Version = (String, Timestamp);

/// A cursor read at the start of a run, and what the run delivers through it.
#[derive(Debug)]
pub struct Cursor {
    name: String,
    /// The stored value's version (none: the first run).
    version: Option<u64>,
    /// The chunk keys the stored value has, with their versions.
    chunks: Vec<(String, u64)>,
    /// Where this run's window starts.
    from: Timestamp,
    /// Where the next run's window starts.
    next: Timestamp,
    /// Versions delivered by completed runs (at or after `from`), and by this run (at or after
    /// `next`: those the next run must recognise).
    seen: HashSet<Version>,
    /// Hashes of the versions this run delivered before `next` (recognised for the rest of the
    /// run only; a hash keeps memory small on a first run over a long window).
    older: HashSet<u64>,
    /// Versions this run delivered.
    delivered: u64,
    /// Versions this run dropped because a completed run delivered them.
    repeated: u64,
    /// What the cursor follows besides time (the API, `status`, `assigned_to`).
    follows: String,
    /// Part keys found beyond those the stored value lists (left by a reset of the main key
    /// alone), with their versions: rewritten or deleted at the next commit.
    orphans: Vec<(String, u64)>,
    /// Set when the versions to remember did not fit: the overlap was cut to what fits.
    shortened: bool,
}

/// The longest incident id a cursor remembers: a version with a longer id (no real incident has
/// one) is delivered but not remembered, so a later run inside the overlap delivers it again
/// rather than storing an unbounded value.
const MAX_REMEMBERED_ID: usize = 256;

/// The key of cursor `name`'s main value.
fn main_key(name: &str) -> String {
    format!("cursor:{name}")
}

/// The key of chunk `i` (from 1) of cursor `name`'s `seen` list.
fn chunk_key(name: &str, i: usize) -> String {
    format!("cursor:{name}:{i}")
}

impl Cursor {
    /// Locks and reads cursor `params.cursor`. `window_start` is where a first run starts (the
    /// usual parameters' window); `now` is the run's start.
    /// `follows` names what the cursor follows besides time (a cursor made for other
    /// incidents is refused, not continued).
    pub fn open(
        params: &Incremental,
        store: &mut dyn CursorStore,
        window_start: Timestamp,
        now: Timestamp,
        follows: &str,
    ) -> Result<Cursor, SkillError> {
        let name = &params.cursor;
        store.lock(&main_key(name)).map_err(|e| in_use(name, e))?;
        let stored = store.get(&main_key(name))?;
        let mut cursor = Cursor {
            name: name.clone(),
            version: None,
            chunks: Vec::new(),
            from: window_start,
            next: window_start,
            seen: HashSet::new(),
            older: HashSet::new(),
            delivered: 0,
            repeated: 0,
            follows: follows.to_string(),
            orphans: Vec::new(),
            shortened: false,
        };
        let mut listed = 0;
        if let Some((value, version)) = stored {
            cursor.version = Some(version);
            let main = parse_stored(name, &value)?;
            if main.follows != follows {
                return Err(SkillError::InvalidInput(format!(
                    "cursor `{name}` follows other incidents ({}), not {follows}: give the parameters it was made with, or another cursor name (or `skillhost state reset` it)",
                    main.follows
                )));
            }
            cursor.from = main.from;
            cursor.seen.extend(main.seen);
            listed = main.chunks;
            for i in 1..=main.chunks {
                let key = chunk_key(name, i);
                let Some((value, version)) = store.get(&key)? else {
                    return Err(damaged(name, &format!("its part {key} is missing")));
                };
                let chunk = parse_stored(name, &value)?;
                cursor.seen.extend(chunk.seen);
                cursor.chunks.push((key, version));
            }
        }
        for i in listed + 1..=MAX_CHUNKS {
            let key = chunk_key(name, i);
            if let Some((_, version)) = store.get(&key)? {
                cursor.orphans.push((key, version));
            }
        }
        let now = crate::params::whole_seconds(now);
        let behind = now.checked_sub(params.overlap).unwrap_or(cursor.from);
        cursor.next = behind.max(cursor.from);
        Ok(cursor)
    }

    /// Where this run's window starts.
    pub fn from(&self) -> Timestamp {
        self.from
    }

    /// Whether the version (`id`, `version`) is to be delivered: false when a completed run (or
    /// this one) already delivered it. A version without an id or time is always delivered: it
    /// cannot be recognised.
    pub fn admit(&mut self, id: Option<&str>, version: Option<Timestamp>) -> bool {
        let (Some(id), Some(version)) = (id, version) else {
            self.delivered += 1;
            return true;
        };
        // Before `from`: covered by the runs before (a service that rounds the filter's time
        // may still list it).
        if version < self.from {
            self.repeated += 1;
            return false;
        }
        // Every version this run delivers is recognised for the rest of the run (a `$skip`
        // repeat from many pages back included); those at or after `next` are kept for the next.
        let fresh = if version >= self.next {
            let key = (id.to_string(), version);
            !self.seen.contains(&key) && (id.len() > MAX_REMEMBERED_ID || self.seen.insert(key))
        } else {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (id, version).hash(&mut hasher);
            !self.seen.contains(&(id.to_string(), version)) && self.older.insert(hasher.finish())
        };
        if !fresh {
            self.repeated += 1;
            return false;
        }
        self.delivered += 1;
        true
    }

    /// What the summary says of the cursor.
    pub fn summary(&self) -> Value {
        let mut summary = json!({
            "name": self.name,
            "from": self.from.to_string(),
            "next": self.next.to_string(),
            "delivered": self.delivered,
            "already_delivered": self.repeated,
        });
        if self.shortened {
            summary["warning"] = json!(format!(
                "more incident versions changed inside the overlap than the cursor can remember; the next run starts at {} instead, and an update the API shows later than that is missed: lower overlap_seconds or run more often",
                self.next
            ));
        }
        summary
    }

    /// Stages the next cursor: `next` and the versions to recognise from there, over as many
    /// values as they need (at most 16). When they do not fit, the newest that fit are kept
    /// and `next` moves up past the rest (the summary then warns): a cursor never stops moving.
    pub fn stage(&mut self, store: &mut dyn CursorStore) -> Result<(), SkillError> {
        let next = self.next;
        let mut seen: Vec<&Version> = self.seen.iter().filter(|(_, t)| *t >= next).collect();
        // Newest first, so that what does not fit is the oldest.
        seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let entries = seen
            .iter()
            .map(|(id, time)| serde_json::to_string(&(id, time.to_string())))
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| SkillError::Internal(format!("cannot write the cursor: {e}")))?;
        // The main value also holds the cursor's other fields.
        let head_budget = CHUNK_BYTES.saturating_sub(self.follows.len() * 6 + 256);
        let parts = match pack(&entries, head_budget) {
            Ok(parts) => parts,
            // They do not fit: what is kept is every version after the time of the first that
            // does not (those of that same time go too, so that every version kept is after it).
            Err(at) => {
                let time = seen[at].1;
                let keep = seen[..at].iter().filter(|(_, t)| *t > time).count();
                // The API's times are on a 100 ns grid; the next window starts on the next step.
                self.next = time
                    .checked_add(SignedDuration::from_nanos(100))
                    .unwrap_or(time);
                self.shortened = true;
                pack(&entries[..keep], head_budget).unwrap_or_default()
            }
        };
        let chunks = parts.len().saturating_sub(1);
        let mut parts = parts.into_iter();
        let head = parts.next().unwrap_or_default();
        let follows = serde_json::to_string(&self.follows)
            .map_err(|e| SkillError::Internal(format!("cannot write the cursor: {e}")))?;
        let main = format!(
            "{{\"format\":{FORMAT},\"from\":\"{}\",\"follows\":{follows},\"chunks\":{chunks},\"seen\":[{head}]}}",
            self.next
        );
        store.set(&main_key(&self.name), main.into_bytes(), self.version)?;
        let existing: Vec<(String, u64)> =
            self.chunks.iter().chain(&self.orphans).cloned().collect();
        let version_of = |key: &str| existing.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        let mut written = Vec::new();
        for (i, part) in parts.enumerate() {
            let key = chunk_key(&self.name, i + 1);
            let value = format!("{{\"format\":{FORMAT},\"seen\":[{part}]}}");
            store.set(&key, value.into_bytes(), version_of(&key))?;
            written.push(key);
        }
        for (key, version) in &existing {
            if !written.contains(key) {
                store.delete(key, *version)?;
            }
        }
        Ok(())
    }
}

/// `entries` (JSON texts) joined into at most [`MAX_CHUNKS`] + 1 parts, the first of at most
/// `head_budget` bytes and the others of at most [`CHUNK_BYTES`]; `Err(i)` when entry `i` would
/// start one part too many.
fn pack(entries: &[String], head_budget: usize) -> Result<Vec<String>, usize> {
    let mut parts = vec![String::new()];
    for (i, entry) in entries.iter().enumerate() {
        let budget = if parts.len() == 1 {
            head_budget
        } else {
            CHUNK_BYTES
        };
        let len = parts.last().map_or(0, String::len);
        if len > 0 && len + entry.len() + 1 > budget {
            if parts.len() == MAX_CHUNKS + 1 {
                return Err(i);
            }
            parts.push(String::new());
        }
        if let Some(part) = parts.last_mut() {
            if !part.is_empty() {
                part.push(',');
            }
            part.push_str(entry);
        }
    }
    Ok(parts)
}

/// The request of a run and, when `incremental` is set, its cursor, locked and read: the
/// window then starts at the cursor. Every parameter is checked before the lock is taken.
pub fn begin(
    input: &Value,
    api: Api,
    now: Timestamp,
    store: &mut dyn CursorStore,
) -> Result<(ListRequest, Option<Cursor>), SkillError> {
    let incremental = Incremental::from_input(input)?;
    let request = ListRequest::from_input(input, api, now)?;
    let Some(incremental) = incremental else {
        return Ok((request, None));
    };
    let window_start = crate::params::window_start(input, now)?;
    let follows = format!(
        "api {}, status {}, assigned_to {}",
        api.service(),
        input["status"].as_str().unwrap_or("any"),
        input["assigned_to"].as_str().unwrap_or("anyone")
    );
    let cursor = Cursor::open(&incremental, store, window_start, now, &follows)?;
    let request = ListRequest::from_input_starting(input, api, now, Some(cursor.from()))?;
    Ok((request, Some(cursor)))
}

/// `result` (a JSON object's text, as the list skill writes it) with `"cursor": cursor` added.
pub fn with_cursor(mut result: String, cursor: &Value) -> String {
    if result.ends_with('}') {
        result.pop();
        result.push_str(",\"cursor\":");
        result.push_str(&cursor.to_string());
        result.push('}');
    }
    result
}

/// The `conflict` of a cursor another run holds, saying which cursor.
#[cfg_attr(not(feature = "state"), allow(unused_variables))]
fn in_use(name: &str, error: SkillError) -> SkillError {
    match error {
        #[cfg(feature = "state")]
        SkillError::Conflict(m) => {
            // The host says for how long at most: "… (for N s more at most, if …)".
            let detail = m.find(" (for ").map_or("", |at| &m[at..]);
            SkillError::Conflict(format!(
                "cursor `{name}` is in use by another run{detail}; two runs on one cursor would deliver the same incidents twice"
            ))
        }
        other => other,
    }
}

/// A stored cursor value that cannot be read: the cursor must be reset, never guessed.
fn damaged(name: &str, why: &str) -> SkillError {
    SkillError::Internal(format!(
        "cursor `{name}` cannot be read ({why}); `skillhost state reset` it to start over from the window"
    ))
}

/// One stored value of a cursor.
struct Stored {
    from: Timestamp,
    follows: String,
    chunks: usize,
    seen: Vec<Version>,
}

fn parse_stored(name: &str, value: &[u8]) -> Result<Stored, SkillError> {
    let value: Value =
        serde_json::from_slice(value).map_err(|e| damaged(name, &format!("not JSON: {e}")))?;
    if value["format"].as_u64() != Some(FORMAT) {
        return Err(damaged(name, "it was written in another format"));
    }
    let from = match value.get("from") {
        None => Timestamp::UNIX_EPOCH,
        Some(from) => from
            .as_str()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| damaged(name, "its `from` is not a timestamp"))?,
    };
    let follows = value["follows"].as_str().unwrap_or_default().to_string();
    let chunks = value["chunks"].as_u64().unwrap_or(0) as usize;
    if chunks > MAX_CHUNKS {
        return Err(damaged(name, "it names too many parts"));
    }
    let mut seen = Vec::new();
    for entry in value["seen"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let version = match (entry[0].as_str(), entry[1].as_str()) {
            (Some(id), Some(time)) => time.parse().ok().map(|t| (id.to_string(), t)),
            _ => None,
        };
        seen.push(version.ok_or_else(|| damaged(name, "an entry of `seen` is not [id, time]"))?);
    }
    Ok(Stored {
        from,
        follows,
        chunks,
        seen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Committed values, and the writes a run staged (applied by `commit`).
    #[derive(Default)]
    struct Map {
        values: HashMap<String, (Vec<u8>, u64)>,
        staged: Vec<(String, Option<Vec<u8>>, Option<u64>)>,
        counter: u64,
        locked: Vec<String>,
    }

    impl Map {
        fn commit(&mut self) {
            for (key, value, expected) in std::mem::take(&mut self.staged) {
                assert_eq!(self.values.get(&key).map(|(_, v)| *v), expected, "{key}");
                match value {
                    Some(value) => {
                        self.counter += 1;
                        self.values.insert(key, (value, self.counter));
                    }
                    None => {
                        self.values.remove(&key);
                    }
                }
            }
        }
    }

    impl CursorStore for Map {
        fn lock(&mut self, name: &str) -> Result<(), SkillError> {
            self.locked.push(name.to_string());
            Ok(())
        }
        fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u64)>, SkillError> {
            Ok(self.values.get(key).cloned())
        }
        fn set(
            &mut self,
            key: &str,
            value: Vec<u8>,
            expected: Option<u64>,
        ) -> Result<(), SkillError> {
            self.staged.push((key.to_string(), Some(value), expected));
            Ok(())
        }
        fn delete(&mut self, key: &str, expected: u64) -> Result<(), SkillError> {
            self.staged.push((key.to_string(), None, Some(expected)));
            Ok(())
        }
    }

    const FOLLOWS: &str = "api defender, status any, assigned_to anyone";

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    fn params(overlap: i64) -> Incremental {
        Incremental {
            cursor: "default".into(),
            overlap: SignedDuration::from_secs(overlap),
        }
    }

    /// Cursor `default` (window from 2026-11-26T08:00:00Z, five-minute overlap) opened at `now`.
    fn five_minute_cursor(map: &mut Map, now: &str) -> Cursor {
        Cursor::open(
            &params(300),
            map,
            at("2026-11-26T08:00:00Z"),
            at(now),
            FOLLOWS,
        )
        .unwrap()
    }

    /// A cursor over the day up to `now` with a one-hour overlap.
    fn hour_cursor(map: &mut Map, now: Timestamp) -> Cursor {
        Cursor::open(&params(3600), map, at("2026-11-27T00:00:00Z"), now, FOLLOWS).unwrap()
    }

    /// `n` versions of distinct incidents, a millisecond apart, back from `now`.
    fn ms_apart(now: Timestamp, n: u64) -> impl Iterator<Item = (String, Timestamp)> + Clone {
        (0..n).map(move |i| {
            let time = now
                .checked_sub(SignedDuration::from_millis(i as i64))
                .unwrap();
            (format!("{i:012}"), time)
        })
    }

    #[test]
    fn a_first_run_starts_at_the_window_and_the_next_at_its_start_less_the_overlap() {
        let mut map = Map::default();
        let window = at("2026-11-26T08:00:00Z");
        let mut cursor = five_minute_cursor(&mut map, "2026-11-27T08:00:00.5Z");
        assert_eq!(map.locked, vec!["cursor:default"]);
        assert_eq!(cursor.from(), window);
        cursor.stage(&mut map).unwrap();
        map.commit();
        let cursor = five_minute_cursor(&mut map, "2026-11-27T09:00:00Z");
        assert_eq!(cursor.from(), at("2026-11-27T07:55:00Z"));
        assert_eq!(cursor.next, at("2026-11-27T08:55:00Z"));
    }

    #[test]
    fn a_version_delivered_inside_the_overlap_is_not_delivered_again_but_its_update_is() {
        let mut map = Map::default();
        let mut first = five_minute_cursor(&mut map, "2026-11-27T08:00:00Z");
        assert!(first.admit(Some("7"), Some(at("2026-11-27T07:58:00Z"))));
        assert!(first.admit(Some("8"), Some(at("2026-11-27T07:00:00Z"))));
        assert!(
            !first.admit(Some("7"), Some(at("2026-11-27T07:58:00Z"))),
            "twice in one run"
        );
        first.stage(&mut map).unwrap();
        map.commit();
        let mut second = five_minute_cursor(&mut map, "2026-11-27T08:01:00Z");
        assert!(!second.admit(Some("7"), Some(at("2026-11-27T07:58:00Z"))));
        assert!(second.admit(Some("7"), Some(at("2026-11-27T07:59:00Z"))));
        assert_eq!(
            second.summary(),
            json!({"name": "default", "from": "2026-11-27T07:55:00Z", "next": "2026-11-27T07:56:00Z", "delivered": 1, "already_delivered": 1})
        );
    }

    #[test]
    fn a_run_that_does_not_commit_leaves_the_cursor_where_it_was() {
        let mut map = Map::default();
        let window = at("2026-11-26T08:00:00Z");
        let mut first = five_minute_cursor(&mut map, "2026-11-27T08:00:00Z");
        first.admit(Some("7"), Some(at("2026-11-27T07:58:00Z")));
        first.stage(&mut map).unwrap();
        map.staged.clear();
        let mut again = five_minute_cursor(&mut map, "2026-11-27T08:01:00Z");
        assert_eq!(again.from(), window);
        assert!(again.admit(Some("7"), Some(at("2026-11-27T07:58:00Z"))));
    }

    #[test]
    fn many_versions_spread_over_parts_and_shrink_back_to_one() {
        let mut map = Map::default();
        let window = at("2026-11-27T00:00:00Z");
        let now = at("2026-11-27T08:00:00Z");
        let mut first = hour_cursor(&mut map, now);
        for (id, time) in ms_apart(now, 5000) {
            assert!(first.admit(Some(&id), Some(time)));
        }
        first.stage(&mut map).unwrap();
        map.commit();
        assert!(
            map.values.contains_key("cursor:default:1"),
            "{:?}",
            map.values.keys()
        );
        assert!(
            map.values
                .values()
                .all(|(v, _)| v.len() <= CHUNK_BYTES + 100)
        );
        let mut second = hour_cursor(&mut map, now);
        for (id, time) in ms_apart(now, 5000) {
            assert!(!second.admit(Some(&id), Some(time)), "{id}");
        }
        // Two hours later, nothing is inside the overlap any more: the parts are deleted.
        second.stage(&mut map).unwrap();
        map.commit();
        let mut later = Cursor::open(
            &params(3600),
            &mut map,
            window,
            at("2026-11-27T10:00:00Z"),
            FOLLOWS,
        )
        .unwrap();
        later.stage(&mut map).unwrap();
        map.commit();
        let mut keys: Vec<_> = map.values.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, vec!["cursor:default"]);
    }

    #[test]
    fn a_cursor_made_for_other_incidents_is_refused() {
        let mut map = Map::default();
        let window = at("2026-11-26T08:00:00Z");
        let mut cursor = Cursor::open(&params(300), &mut map, window, window, FOLLOWS).unwrap();
        cursor.stage(&mut map).unwrap();
        map.commit();
        let other = "api defender, status Active, assigned_to anyone";
        match Cursor::open(&params(300), &mut map, window, window, other) {
            Err(SkillError::InvalidInput(m)) => assert_eq!(
                m,
                "cursor `default` follows other incidents (api defender, status any, assigned_to anyone), not api defender, status Active, assigned_to anyone: give the parameters it was made with, or another cursor name (or `skillhost state reset` it)"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parts_left_behind_by_a_reset_of_the_main_key_are_rewritten_or_deleted() {
        let mut map = Map::default();
        map.values
            .insert("cursor:default:1".into(), (b"{}".to_vec(), 7));
        map.values
            .insert("cursor:default:3".into(), (b"{}".to_vec(), 8));
        map.counter = 8;
        let now = at("2026-11-27T08:00:00Z");
        let mut cursor = hour_cursor(&mut map, now);
        // Enough versions for one part besides the main value.
        for (id, time) in ms_apart(now, 2000) {
            cursor.admit(Some(&id), Some(time));
        }
        cursor.stage(&mut map).unwrap();
        map.commit();
        let mut keys: Vec<_> = map.values.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, vec!["cursor:default", "cursor:default:1"]);
    }

    #[test]
    fn versions_that_do_not_fit_move_the_next_start_up_and_the_summary_warns() {
        let mut map = Map::default();
        let now = at("2026-11-27T08:00:00Z");
        let mut cursor = hour_cursor(&mut map, now);
        // Far more than 16 values of 60 KiB hold: 40,000 versions a millisecond apart.
        for (id, time) in ms_apart(now, 40_000) {
            cursor.admit(Some(&id), Some(time));
        }
        cursor.stage(&mut map).unwrap();
        let next: Timestamp = cursor.summary()["next"].as_str().unwrap().parse().unwrap();
        assert!(next > at("2026-11-27T07:00:00Z"), "{next}");
        assert!(
            cursor.summary()["warning"]
                .as_str()
                .unwrap()
                .starts_with("more incident versions changed inside the overlap")
        );
        map.commit();
        assert!(map.values.len() <= 16, "{}", map.values.len());
        let mut again = hour_cursor(&mut map, now);
        assert_eq!(again.from(), next);
        // Every version at or after the new start is remembered; the older ones are outside the
        // next window (and refused if a service lists them anyway).
        let times = ms_apart(now, 40_000);
        let kept = times.clone().filter(|(_, t)| *t >= next).count();
        assert_eq!(again.seen.len(), kept);
        assert!(kept > 10_000, "{kept}");
        for (id, time) in times {
            assert!(!again.admit(Some(&id), Some(time)), "{id}");
        }
    }

    #[test]
    fn a_damaged_cursor_is_refused_with_what_to_do() {
        let mut map = Map::default();
        map.values
            .insert("cursor:default".into(), (b"{\"format\":9}".to_vec(), 1));
        let window = at("2026-11-26T08:00:00Z");
        match Cursor::open(&params(300), &mut map, window, window, FOLLOWS) {
            Err(SkillError::Internal(m)) => assert_eq!(
                m,
                "cursor `default` cannot be read (it was written in another format); `skillhost state reset` it to start over from the window"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn incremental_refuses_what_would_move_the_cursor_past_unread_incidents() {
        let error = |input: Value| match Incremental::from_input(&input) {
            Err(SkillError::InvalidInput(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(error(json!({"incremental": true, "limit": 5})).starts_with("`limit` cannot"));
        assert!(
            error(json!({"incremental": true, "end_time": "2026-11-27T00:00:00Z"}))
                .starts_with("`end_time` cannot")
        );
        assert!(
            error(json!({"incremental": true, "time_field": "createdTime"}))
                .starts_with("`time_field` createdTime")
        );
        assert_eq!(
            error(json!({"incremental": true, "cursor": "a b"})),
            "cursor \"a b\" is not a cursor name: use 1 to 64 letters, digits, `-`, `_` or `.`"
        );
        assert_eq!(Incremental::from_input(&json!({"limit": 5})).unwrap(), None);
    }
}
