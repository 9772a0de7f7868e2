//! One JSON line per HTTP call a skill makes: who, where, what came back, how long, how decided.
//!
//! Threat: an audit trail that records credentials becomes a credential store. Records hold the
//! method, the path and query (which carry filters, not secrets), status, sizes, timings and the
//! policy decision; never a header, a token or a body.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

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
    /// `allowed` or `denied`.
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
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        let result = match self.file.lock() {
            Ok(mut file) => file.write_all(&line),
            Err(_) => Err(std::io::Error::other("audit log lock poisoned")),
        };
        if let Err(e) = result {
            tracing::error!("could not write the audit log: {e}");
        }
    }
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
}

/// Where one connection's calls are recorded: the log, if any, and whose calls they are.
#[derive(Clone)]
pub struct AuditTrail {
    log: Option<Arc<AuditLog>>,
    tenant: String,
    connection: String,
}

impl AuditTrail {
    /// Records calls of `connection` (of `tenant`) to `log`; no log records nothing.
    pub fn new(log: Option<Arc<AuditLog>>, tenant: &str, connection: &str) -> Self {
        AuditTrail {
            log,
            tenant: tenant.to_string(),
            connection: connection.to_string(),
        }
    }

    /// Writes the record of `call`, ended with `decision` and what came back.
    pub fn record(
        &self,
        call: &CallRecord,
        decision: &str,
        reason: Option<&str>,
        status: Option<u16>,
        bytes: u64,
    ) {
        if let Some(log) = &self.log {
            log.write(&AuditRecord {
                time: jiff::Timestamp::now().to_string(),
                skill: &call.skill,
                tenant: &self.tenant,
                connection: &self.connection,
                service: &call.service,
                method: call.method,
                path: &call.path,
                decision,
                reason,
                status,
                bytes,
                latency_ms: call.started.elapsed().as_millis() as u64,
                retries: call.retries,
            });
        }
    }
}
