//! The body of a streamed answer, handed to the guest as it reads.
//!
//! Threat: the body comes from the network. Reads are bounded by the connection's size cap and
//! the invocation's deadline, and after an error every later read returns the same error, so a
//! body cut short is never mistaken for a complete one. Its audit record is written once, when it
//! ends (read to the end, failed, or dropped), with the bytes actually handed out.

use std::time::Instant;

use skillhost_contract::types::HttpError;

use crate::audit::{AuditTrail, CallRecord};
use crate::client::error_chain;

/// A response body being read.
pub struct IncomingBody {
    response: reqwest::Response,
    pending: bytes::Bytes,
    received: u64,
    cap: u64,
    deadline: Instant,
    status: u16,
    audit: AuditTrail,
    record: Option<CallRecord>,
    failed: Option<HttpError>,
}

impl IncomingBody {
    /// The body of `response`, capped at `cap` bytes and read by `deadline`; `record` is written
    /// to `audit` when the body ends.
    pub fn new(
        response: reqwest::Response,
        cap: u64,
        deadline: Instant,
        audit: AuditTrail,
        record: CallRecord,
    ) -> Self {
        IncomingBody {
            status: response.status().as_u16(),
            response,
            pending: bytes::Bytes::new(),
            received: 0,
            cap,
            deadline,
            audit,
            record: Some(record),
            failed: None,
        }
    }

    /// Up to `max` more bytes; empty when the body is complete. After an error, every later
    /// read returns the same error.
    pub async fn read(&mut self, max: u32) -> Result<Vec<u8>, HttpError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.record.is_none() {
            return Ok(Vec::new());
        }
        if self.pending.is_empty() {
            match read_chunk(&mut self.response, self.deadline).await {
                Ok(Some(chunk)) => self.pending = chunk,
                Ok(None) => {
                    self.finish(None);
                    return Ok(Vec::new());
                }
                Err(error) => return Err(self.fail("body not received", error)),
            }
        }
        let n = self.pending.len().min(max.max(1) as usize);
        if self.received + n as u64 > self.cap {
            let cap = self.cap;
            return Err(self.fail("response too large", HttpError::TooLarge(cap)));
        }
        self.received += n as u64;
        Ok(self.pending.split_to(n).to_vec())
    }

    fn fail(&mut self, reason: &str, error: HttpError) -> HttpError {
        self.finish(Some(reason));
        self.failed = Some(error.clone());
        error
    }

    /// Writes the audit record (once), with the bytes handed out so far.
    fn finish(&mut self, reason: Option<&str>) {
        if let Some(record) = self.record.take() {
            self.audit
                .record(&record, "allowed", reason, Some(self.status), self.received);
        }
    }
}

impl Drop for IncomingBody {
    fn drop(&mut self) {
        self.finish(Some("body not read to the end"));
    }
}

/// The next chunk of `response`, bounded by `deadline`.
async fn read_chunk(
    response: &mut reqwest::Response,
    deadline: Instant,
) -> Result<Option<bytes::Bytes>, HttpError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(remaining, response.chunk()).await {
        Err(_) => Err(HttpError::Timeout),
        Ok(Ok(chunk)) => Ok(chunk),
        Ok(Err(e)) if e.is_timeout() => Err(HttpError::Timeout),
        Ok(Err(e)) => Err(HttpError::Transport(error_chain(&e))),
    }
}
