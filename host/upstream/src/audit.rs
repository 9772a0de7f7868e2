//! One JSON line per HTTP call a skill makes: who, where, what came back, how long, how decided.
//!
//! Threat: an audit trail that records credentials becomes a credential store. Records hold the
//! method, the path and query (which carry filters, not secrets), status, sizes, timings and the
//! policy decision; never a header, a token or a body. And an audit trail a skill can write to
//! without bound fills the host's disk (1,000 refused calls with 1 MB paths once wrote 2 GB in
//! 7 s): the fields a skill controls (service, path, reason) are cut at
//! [`DEFAULT_MAX_FIELD_BYTES`] each, with the cut marked, and one invocation's records stop at
//! [`DEFAULT_MAX_AUDIT_BYTES`] (both adjustable per binding); what the cap dropped is said once,
//! in one `truncated` record written when the invocation's trail ends.
//!
//! And a process that ends before its calls settle (the CLI's watchdog ends it at a skill's
//! deadline) must not lose their records: a skill could open bodies, never finish them, and
//! compute on until it is stopped. Records still open are kept in a list of the process, and
//! [`write_open`] writes them, and the `truncated` record of every trail, at once.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use serde::Serialize;

/// Default cap on the audit bytes one invocation writes: 16 MiB.
pub const DEFAULT_MAX_AUDIT_BYTES: u64 = 16 * 1024 * 1024;

/// Default cap on one skill-controlled field (service, path, reason) of a record: 2 KiB.
pub const DEFAULT_MAX_FIELD_BYTES: usize = 2 * 1024;

/// One call's record.
#[derive(Debug, Serialize)]
pub struct AuditRecord<'a> {
    /// RFC 3339 time the call finished.
    pub time: String,
    /// The skill that made the call.
    pub skill: &'a str,
    /// The tenant (isolation key).
    pub tenant: &'a str,
    /// The connection.
    pub connection: &'a str,
    /// The service named by the skill.
    pub service: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Path and query as requested (after resolution when allowed).
    pub path: &'a str,
    /// `allowed` or `denied`; `truncated` for the one record saying what the cap dropped.
    pub decision: &'a str,
    /// Why it was denied, or the transport error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// Final HTTP status, if an answer came.
    pub status: Option<u16>,
    /// Response body bytes.
    pub bytes: u64,
    /// Wall time including retries and pacing, milliseconds.
    pub latency_ms: u64,
    /// Retries made (429, 5xx, transport, one 401 refresh).
    pub retries: u32,
}

/// Appends records to a file, one JSON object per line.
pub struct AuditLog {
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    /// Opens (creating or appending to) `path`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AuditLog {
            file: Mutex::new(file),
        })
    }

    /// Writes one record. A failing audit write is logged, not fatal to the call.
    pub fn write(&self, record: &AuditRecord<'_>) {
        if let Some(line) = encode(record) {
            self.write_line(&line);
        }
    }

    /// Writes any serializable record (such as the one `skillhost serve` writes per invocation)
    /// as one line.
    pub fn write_json<T: Serialize>(&self, record: &T) {
        match serde_json::to_vec(record) {
            Ok(mut line) => {
                line.push(b'\n');
                self.write_line(&line);
            }
            Err(e) => tracing::error!("could not encode an audit record: {e}"),
        }
    }

    /// Writes one encoded line (ending in `\n`).
    fn write_line(&self, line: &[u8]) {
        let result = match self.file.lock() {
            Ok(mut file) => file.write_all(line),
            Err(_) => Err(std::io::Error::other("audit log lock poisoned")),
        };
        if let Err(e) = result {
            tracing::error!("could not write the audit log: {e}");
        }
    }
}

/// `record` as one JSON line.
fn encode(record: &AuditRecord<'_>) -> Option<Vec<u8>> {
    let mut line = serde_json::to_vec(record).ok()?;
    line.push(b'\n');
    Some(line)
}

/// `text` cut to at most `max` bytes (at a character boundary), the cut marked with how much
/// was dropped.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}…[{} more bytes cut]",
        &text[..end],
        text.len() - end
    ))
}

/// One call's facts, gathered as it proceeds, for its record.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// The skill that made the call.
    pub skill: String,
    /// The service it named.
    pub service: String,
    /// The HTTP method.
    pub method: &'static str,
    /// The path and query (resolved once the policy allowed it).
    pub path: String,
    /// When the call began.
    pub started: Instant,
    /// Retries so far.
    pub retries: u32,
    /// Whether the host asked for it ahead of the skill (and the skill has not taken it): its
    /// record's reason then starts with [`ASKED_AHEAD`].
    pub ahead: bool,
}

/// How a record of a call the host made ahead of the skill begins its reason.
pub const ASKED_AHEAD: &str = "asked for ahead of the skill";

/// Where one invocation's calls of one connection are recorded: the log, if any, whose calls
/// they are, and the invocation's audit budget. Clones share the budget (a streamed body
/// writes its record through a clone).
#[derive(Clone)]
pub struct AuditTrail {
    inner: Arc<Trail>,
}

struct Trail {
    log: Option<Arc<AuditLog>>,
    tenant: String,
    connection: String,
    max_bytes: u64,
    max_field_bytes: usize,
    budget: Mutex<Budget>,
}

/// The records of this process's calls still open, and its trails that have a log: what
/// [`write_open`] writes. Kept only once [`keep_open_records`] was called.
static OPEN: Mutex<Listed<Mutex<Option<Open>>>> = Mutex::new(Listed::new());
static TRAILS: Mutex<Listed<Trail>> = Mutex::new(Listed::new());

/// Whether open records and trails are listed ([`keep_open_records`]).
static KEEP: AtomicBool = AtomicBool::new(false);

/// Lists this process's open records and trails from now on, for [`write_open`]: for a process
/// that may end without running its destructors (the CLI's watchdog). Others (`serve`) do not
/// pay for the list.
pub fn keep_open_records() {
    KEEP.store(true, Ordering::Release);
}

/// A list of the process: entries whose owners are gone are dropped when it has doubled.
struct Listed<T> {
    entries: Vec<Weak<T>>,
    /// The write_open reason once the process is ending: records opened later are written at
    /// once.
    closing: Option<String>,
}

impl<T> Listed<T> {
    const fn new() -> Self {
        Listed {
            entries: Vec::new(),
            closing: None,
        }
    }

    fn push(&mut self, item: Weak<T>) {
        let len = self.entries.len();
        if len >= 64 && len.is_power_of_two() {
            self.entries.retain(|entry| entry.strong_count() > 0);
        }
        self.entries.push(item);
    }

    fn live(&self) -> Vec<Arc<T>> {
        self.entries.iter().filter_map(Weak::upgrade).collect()
    }
}

/// Writes, now, the record of every call of this process still open (a body not read to its
/// end, a call asked for ahead that has not settled), with `reason` added to its own, and the
/// `truncated` record of every trail that dropped records: for a process about to end without
/// running its destructors. Each record is written once: a call that settles later writes
/// nothing more, and one opened later is written as it opens.
pub fn write_open(reason: &str) {
    let open = {
        let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
        open.closing = Some(reason.to_string());
        open.live()
    };
    for record in open {
        OpenRecord(record).write_with(reason);
    }
    let trails = TRAILS.lock().unwrap_or_else(PoisonError::into_inner).live();
    for trail in trails {
        trail.close();
    }
}

/// The record of a call still open: written once, when the call settles
/// ([`OpenRecord::write`]), or by [`write_open`] if the process ends first.
pub struct OpenRecord(Arc<Mutex<Option<Open>>>);

struct Open {
    trail: AuditTrail,
    call: CallRecord,
    decision: &'static str,
    reason: Option<String>,
    status: Option<u16>,
    bytes: u64,
}

impl OpenRecord {
    fn with<R>(&self, f: impl FnOnce(&mut Option<Open>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether it is still to be written.
    pub fn is_open(&self) -> bool {
        self.with(|open| open.is_some())
    }

    /// Changes the call's record before it is written.
    pub fn update(&self, change: impl FnOnce(&mut CallRecord)) {
        self.with(|open| {
            if let Some(open) = open {
                change(&mut open.call);
            }
        })
    }

    /// The body bytes handed out so far, for a record written before the call settles.
    pub fn bytes(&self, bytes: u64) {
        self.with(|open| {
            if let Some(open) = open {
                open.bytes = bytes;
            }
        })
    }

    /// The reason given if the call is left before it settles ([`OpenRecord::write_left`], or
    /// [`write_open`]).
    pub fn reason(&self, reason: &str) {
        self.with(|open| {
            if let Some(open) = open {
                open.reason = Some(reason.to_string());
            }
        })
    }

    /// Writes the record (once) with `reason` and `bytes`.
    pub fn write(&self, reason: Option<&str>, bytes: u64) {
        if let Some(open) = self.with(Option::take) {
            open.record(reason, bytes);
        }
    }

    /// Writes the record (once) of a call left before it settled: the reason given by
    /// [`OpenRecord::reason`], and `bytes`.
    pub fn write_left(&self, bytes: u64) {
        if let Some(open) = self.with(Option::take) {
            open.record(open.reason.as_deref(), bytes);
        }
    }

    /// Forgets the record: the call is audited elsewhere.
    pub fn discard(&self) {
        self.with(Option::take);
    }

    fn write_with(&self, why: &str) {
        if let Some(open) = self.with(Option::take) {
            let reason = match &open.reason {
                Some(own) => format!("{own}; {why}"),
                None => why.to_string(),
            };
            open.record(Some(&reason), open.bytes);
        }
    }
}

impl Open {
    fn record(&self, reason: Option<&str>, bytes: u64) {
        self.trail
            .record(&self.call, self.decision, reason, self.status, bytes);
    }
}

/// What one invocation wrote and what its cap dropped.
#[derive(Default)]
struct Budget {
    written: u64,
    dropped_bytes: u64,
    dropped_records: u64,
    skill: String,
}

impl AuditTrail {
    /// Records calls of `connection` (of `tenant`) to `log` under the default caps; no log
    /// records nothing.
    pub fn new(log: Option<Arc<AuditLog>>, tenant: &str, connection: &str) -> Self {
        Self::with_caps(
            log,
            tenant,
            connection,
            DEFAULT_MAX_AUDIT_BYTES,
            DEFAULT_MAX_FIELD_BYTES,
        )
    }

    /// Like [`AuditTrail::new`], writing at most `max_bytes` of records in all (then one
    /// `truncated` record when the trail ends) and at most `max_field_bytes` of each
    /// skill-controlled field.
    pub fn with_caps(
        log: Option<Arc<AuditLog>>,
        tenant: &str,
        connection: &str,
        max_bytes: u64,
        max_field_bytes: usize,
    ) -> Self {
        let listed = log.is_some();
        let inner = Arc::new(Trail {
            log,
            tenant: tenant.to_string(),
            connection: connection.to_string(),
            max_bytes,
            max_field_bytes,
            budget: Mutex::new(Budget::default()),
        });
        if listed && KEEP.load(Ordering::Acquire) {
            TRAILS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::downgrade(&inner));
        }
        AuditTrail { inner }
    }

    /// Holds the record of `call` (`decision`, and `status` if an answer came) until the call
    /// settles; [`write_open`] writes it if the process ends first.
    pub fn open(
        &self,
        call: CallRecord,
        decision: &'static str,
        status: Option<u16>,
    ) -> OpenRecord {
        let open = Arc::new(Mutex::new(Some(Open {
            trail: self.clone(),
            call,
            decision,
            reason: None,
            status,
            bytes: 0,
        })));
        let record = OpenRecord(open);
        if self.inner.log.is_some() && KEEP.load(Ordering::Acquire) {
            let mut list = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
            match &list.closing {
                // The process is ending: nothing will write it later.
                Some(reason) => {
                    let reason = reason.clone();
                    drop(list);
                    record.write_with(&reason);
                }
                None => list.push(Arc::downgrade(&record.0)),
            }
        }
        record
    }

    /// Bytes of records written so far, and bytes the cap dropped.
    pub fn usage(&self) -> (u64, u64) {
        match self.inner.budget.lock() {
            Ok(budget) => (budget.written, budget.dropped_bytes),
            Err(_) => (0, 0),
        }
    }

    /// Writes the record of `call`, ended with `decision` and what came back, unless the
    /// invocation's audit cap is reached (then it is counted as dropped).
    pub fn record(
        &self,
        call: &CallRecord,
        decision: &str,
        reason: Option<&str>,
        status: Option<u16>,
        bytes: u64,
    ) {
        let trail = &self.inner;
        let Some(log) = &trail.log else {
            return;
        };
        let max = trail.max_field_bytes;
        let ahead;
        let reason = match (call.ahead, reason) {
            (true, Some(reason)) => {
                ahead = format!("{ASKED_AHEAD}; {reason}");
                Some(ahead.as_str())
            }
            (true, None) => Some(ASKED_AHEAD),
            (false, reason) => reason,
        }
        .map(|r| cut(r, max));
        let record = AuditRecord {
            time: jiff::Timestamp::now().to_string(),
            skill: &cut(&call.skill, max),
            tenant: &trail.tenant,
            connection: &trail.connection,
            service: &cut(&call.service, max),
            method: call.method,
            path: &cut(&call.path, max),
            decision,
            reason: reason.as_deref(),
            status,
            bytes,
            latency_ms: call.started.elapsed().as_millis() as u64,
            retries: call.retries,
        };
        let Some(line) = encode(&record) else {
            return;
        };
        let Ok(mut budget) = trail.budget.lock() else {
            return;
        };
        let size = line.len() as u64;
        // Once one record is dropped every later one is too: the trail has one gap, at its end.
        if budget.dropped_records > 0 || budget.written + size > trail.max_bytes {
            if budget.dropped_records == 0 {
                budget.skill = record.skill.to_string();
            }
            budget.dropped_bytes += size;
            budget.dropped_records += 1;
            return;
        }
        budget.written += size;
        // Written under the budget's lock, so records keep their order.
        log.write_line(&line);
    }
}

impl Drop for Trail {
    /// The trail ends with the invocation: one record says what the cap dropped, if anything.
    fn drop(&mut self) {
        self.close();
    }
}

impl Trail {
    /// Writes the record of what the cap dropped, if anything (once: it then counts nothing).
    fn close(&self) {
        let Some(log) = &self.log else {
            return;
        };
        let Ok(mut budget) = self.budget.lock() else {
            return;
        };
        if budget.dropped_records == 0 {
            return;
        }
        let reason = format!(
            "audit truncated: {} bytes in {} records dropped after the invocation's cap of {} bytes",
            budget.dropped_bytes, budget.dropped_records, self.max_bytes
        );
        log.write(&AuditRecord {
            time: jiff::Timestamp::now().to_string(),
            skill: &budget.skill,
            tenant: &self.tenant,
            connection: &self.connection,
            service: "",
            method: "",
            path: "",
            decision: "truncated",
            reason: Some(&reason),
            status: None,
            bytes: 0,
            latency_ms: 0,
            retries: 0,
        });
        budget.dropped_records = 0;
        budget.dropped_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    struct TempLog(std::path::PathBuf);

    impl TempLog {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "skillhost-audit-{name}-{}-{}.jsonl",
                std::process::id(),
                fastrand::u64(..)
            ));
            TempLog(path)
        }

        fn open(&self) -> Option<Arc<AuditLog>> {
            Some(Arc::new(AuditLog::open(&self.0).unwrap()))
        }

        fn lines(&self) -> Vec<Value> {
            std::fs::read_to_string(&self.0)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }

        fn size(&self) -> u64 {
            std::fs::metadata(&self.0).unwrap().len()
        }
    }

    impl Drop for TempLog {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn call(path: &str) -> CallRecord {
        CallRecord {
            skill: "flood".into(),
            service: "defender".into(),
            method: "GET",
            path: path.into(),
            started: Instant::now(),
            retries: 0,
            ahead: false,
        }
    }

    #[test]
    fn a_short_field_is_kept_and_a_long_one_is_cut_and_marked() {
        assert_eq!(cut("/api/incidents", 2048), "/api/incidents");
        assert_eq!(cut(&"a".repeat(10), 4), "aaaa…[6 more bytes cut]");
        // Never inside a character: `é` is two bytes.
        assert_eq!(cut("éé", 3), "é…[2 more bytes cut]");
    }

    #[test]
    fn a_record_keeps_at_most_the_field_cap_of_path_and_reason() {
        let log = TempLog::new("fields");
        let trail = AuditTrail::new(log.open(), "acme", "sim");
        let long = format!("/{}", "p".repeat(1024 * 1024));
        trail.record(&call(&long), "denied", Some(&long), None, 0);
        drop(trail);
        let lines = log.lines();
        assert_eq!(lines.len(), 1);
        let expected = format!(
            "/{}…[{} more bytes cut]",
            "p".repeat(2047),
            1024 * 1024 + 1 - 2048
        );
        assert_eq!(lines[0]["path"], expected.as_str());
        assert_eq!(lines[0]["reason"], expected.as_str());
        assert_eq!(lines[0]["decision"], "denied");
        assert!(log.size() < 5 * 1024, "{}", log.size());
    }

    #[test]
    fn records_stop_at_the_cap_and_one_truncated_record_says_what_was_dropped() {
        let log = TempLog::new("cap");
        let trail = AuditTrail::with_caps(log.open(), "acme", "sim", 4096, 2048);
        let body_trail = trail.clone();
        for _ in 0..100 {
            trail.record(&call("/api/incidents"), "denied", Some("no"), None, 0);
        }
        let (written, dropped) = trail.usage();
        assert!(written <= 4096 && written > 3000, "{written}");
        drop(trail);
        // A clone (a streamed body) still holds the trail: nothing is said yet.
        assert!(log.lines().iter().all(|l| l["decision"] == "denied"));
        drop(body_trail);
        let lines = log.lines();
        let last = lines.last().unwrap();
        assert_eq!(last["decision"], "truncated");
        assert_eq!(last["skill"], "flood");
        let records = lines.len() as u64 - 1;
        assert_eq!(
            last["reason"],
            format!(
                "audit truncated: {dropped} bytes in {} records dropped after the invocation's \
                 cap of 4096 bytes",
                100 - records
            )
            .as_str()
        );
        let last_line = std::fs::read_to_string(&log.0)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .len() as u64;
        assert_eq!(log.size(), written + last_line + 1);
    }

    #[test]
    fn a_trail_under_its_cap_writes_no_truncated_record() {
        let log = TempLog::new("under");
        let trail = AuditTrail::new(log.open(), "acme", "sim");
        trail.record(&call("/api/incidents"), "allowed", None, Some(200), 10);
        drop(trail);
        let lines = log.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["status"], 200);
    }
}
