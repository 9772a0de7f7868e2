//! The body of a streamed answer, handed to the guest as it reads.
//!
//! Threat: the body comes from the network. Reads are bounded by the connection's size cap, the
//! invocation's deadline and a read-idle timeout, and after an error every later read returns the
//! same error, so a body cut short is never mistaken for a complete one. A body that ends before
//! its announced length, stalls, or breaks is reported as what it is ("cut short after N of M
//! bytes"), a transient fault the caller may fetch again, never as an unreachable service. Its
//! audit record is written once, when it ends (read to the end, failed, or dropped), with the
//! bytes actually handed out and the reason.

use std::time::{Duration, Instant};

use skillhost_contract::types::HttpError;

use crate::audit::{AuditTrail, CallRecord};
use crate::client::error_chain;

/// A response body being read.
pub struct IncomingBody {
    response: reqwest::Response,
    pending: bytes::Bytes,
    received: u64,
    downloaded: u64,
    announced: Option<u64>,
    cap: u64,
    deadline: Instant,
    read_idle: Duration,
    status: u16,
    audit: AuditTrail,
    record: Option<CallRecord>,
    failed: Option<HttpError>,
}

impl IncomingBody {
    /// The body of `response`, capped at `cap` bytes, read by `deadline` with at most
    /// `read_idle` between two pieces; `record` is written to `audit` when the body ends.
    pub fn new(
        response: reqwest::Response,
        cap: u64,
        deadline: Instant,
        read_idle: Duration,
        audit: AuditTrail,
        record: CallRecord,
    ) -> Self {
        IncomingBody {
            status: response.status().as_u16(),
            announced: response.content_length(),
            response,
            pending: bytes::Bytes::new(),
            received: 0,
            downloaded: 0,
            cap,
            deadline,
            read_idle,
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
            match self.next_chunk().await {
                Ok(Some(chunk)) => {
                    self.downloaded += chunk.len() as u64;
                    self.pending = chunk;
                }
                Ok(None) => {
                    self.finish(None);
                    return Ok(Vec::new());
                }
                Err((reason, error)) => return Err(self.fail(&reason, error)),
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

    /// The next piece from the network, `None` at the end; an error comes with the reason the
    /// audit record gives.
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, (String, HttpError)> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let wait = remaining.min(self.read_idle);
        match tokio::time::timeout(wait, self.response.chunk()).await {
            Err(_) if wait < remaining => {
                let what = format!(
                    "stalled: no data for {} ms after {}",
                    self.read_idle.as_millis(),
                    self.progress()
                );
                Err((
                    what.clone(),
                    HttpError::Transport(format!("the answer {what}")),
                ))
            }
            Err(_) => Err(("timeout".into(), HttpError::Timeout)),
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(e)) if e.is_timeout() => Err(("timeout".into(), HttpError::Timeout)),
            Ok(Err(e)) => {
                let what = format!("was cut short after {}", self.progress());
                let error = HttpError::Transport(format!(
                    "the answer {what} ({}); the service was reached, the connection broke \
                     mid-answer",
                    error_chain(&e)
                ));
                Err((what, error))
            }
        }
    }

    /// `N of M bytes` (or `N bytes` when the length was not announced).
    fn progress(&self) -> String {
        match self.announced {
            Some(total) => format!("{} of {total} bytes", self.downloaded),
            None => format!("{} bytes", self.downloaded),
        }
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
