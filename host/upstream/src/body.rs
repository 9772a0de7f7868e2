//! The body of a streamed answer, read ahead of the guest and handed to it as it reads.
//!
//! A task reads the body from the network while the guest works on what it already has, at most
//! [`READ_AHEAD`] bytes ahead of it (more waits until the guest reads), so the download overlaps
//! the guest's parse instead of alternating with it. Where the body ends in an OData
//! `@odata.nextLink`, the task notes the link, so that the next page can be asked for before the
//! guest gets there (see [`IncomingBody::on_next_link`]).
//!
//! Threat: the body comes from the network. Reads are bounded by the connection's size cap, the
//! invocation's deadline and a read-idle timeout; what is held ahead of the guest is bounded by
//! [`READ_AHEAD`] (and the number of pieces in flight), and after an error every later read
//! returns the same error, so a body cut short is never mistaken for a complete one. A body that
//! ends before its announced length, stalls, or breaks is reported as what it is ("cut short
//! after N of M bytes"), a transient fault the caller may fetch again, never as an unreachable
//! service. Its audit record is written once, when it ends (read to the end, failed, or dropped),
//! with the bytes actually handed out and the reason, or, in a process that ends before it
//! does, by [`crate::audit::write_open`]. The reading task ends with the body.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use skillhost_contract::types::HttpError;
use tokio::sync::{Semaphore, mpsc};

use crate::audit::{AuditTrail, CallRecord, OpenRecord};
use crate::client::error_chain;

/// Bytes of a body read ahead of the guest at most, besides the piece it is reading and the
/// network's piece being cut up.
pub const READ_AHEAD: usize = 1024 * 1024;

/// Pieces of a body in flight between the reading task and the guest at most (a service
/// sending tiny pieces is bounded by this, a service sending large ones by [`READ_AHEAD`]).
const PIECES_IN_FLIGHT: usize = 64;

/// Bytes at the end of a body kept to look for its `@odata.nextLink` (a link is a path and
/// query, which the egress policy caps well below this).
const TAIL: usize = 16 * 1024;

/// The guest is this far into a body (a fraction, as the divisor of its length) before its next
/// page is asked for: early enough for the next answer to arrive while the guest works on this
/// one, late enough that a skill stopping after the first incidents of a page (a `limit`) does
/// not spend a call on a page it never reads.
const NEXT_PAGE_AFTER: u64 = 4;

/// The largest piece the reading task hands over: pieces are copied out of the network's
/// buffers on the task (not on the guest's thread), at most this size, so that a read of this
/// much takes a whole piece as it is.
pub const PIECE: usize = 16 * 1024;

/// The reason the audit record of a body the guest dropped before its end gives.
const NOT_READ_TO_THE_END: &str = "body not read to the end";

/// What the reading task hands over: a piece, or the error that ended the body (with the reason
/// its audit record gives).
type Piece = Result<Vec<u8>, (String, HttpError)>;

/// How a body ended well: its length and the `@odata.nextLink` it closes with, if any.
struct End {
    total: u64,
    next_link: Option<String>,
}

/// What to do with the link to the next page (called once, as the guest reads).
pub type OnNextLink = Box<dyn FnOnce(String) + Send + Sync>;

/// A response body being read.
pub struct IncomingBody {
    /// The length the answer announced (`Content-Length`), if it did.
    announced: Option<u64>,
    pieces: mpsc::Receiver<Piece>,
    budget: Arc<Semaphore>,
    end: Arc<OnceLock<End>>,
    reader: tokio::task::JoinHandle<()>,
    pending: Vec<u8>,
    /// Bytes of `pending` already handed out.
    handed: usize,
    received: u64,
    cap: u64,
    record: OpenRecord,
    failed: Option<HttpError>,
    on_next_link: Option<OnNextLink>,
}

impl IncomingBody {
    /// The body of `response`, capped at `cap` bytes, read by `deadline` with at most
    /// `read_idle` between two pieces; `record` is written to `audit` when the body ends. The
    /// reading starts at once, on a task of the current tokio runtime.
    pub fn new(
        response: reqwest::Response,
        cap: u64,
        deadline: Instant,
        read_idle: Duration,
        audit: AuditTrail,
        record: CallRecord,
    ) -> Self {
        let status = response.status().as_u16();
        let announced = response.content_length();
        let (sender, pieces) = mpsc::channel(PIECES_IN_FLIGHT);
        let budget = Arc::new(Semaphore::new(READ_AHEAD));
        let end = Arc::new(OnceLock::new());
        let reading = Reading {
            announced: response.content_length(),
            response,
            downloaded: 0,
            cap,
            deadline,
            read_idle,
            tail: Vec::new(),
        };
        let reader = tokio::spawn(reading.run(sender, budget.clone(), end.clone()));
        IncomingBody {
            announced,
            pieces,
            budget,
            end,
            reader,
            pending: Vec::new(),
            handed: 0,
            received: 0,
            cap,
            record: {
                let open = audit.open(record, "allowed", Some(status));
                open.reason(NOT_READ_TO_THE_END);
                open
            },
            failed: None,
            on_next_link: None,
        }
    }

    /// Calls `then` with the body's closing `@odata.nextLink`, once the body was read to its end
    /// and the guest is a quarter of the way into it (at once if both already hold).
    pub fn on_next_link(&mut self, then: OnNextLink) {
        self.on_next_link = Some(then);
        self.check_next_link();
    }

    /// The length the answer announced (`Content-Length`), if it did.
    pub fn announced(&self) -> Option<u64> {
        self.announced
    }

    /// The reason the audit record gives if the body is dropped before it ended.
    pub fn set_drop_reason(&mut self, reason: &str) {
        self.record.reason(reason);
    }

    /// The guest took this body, which the host asked for ahead of it: its audit record is the
    /// guest's own from now on.
    pub fn taken(&mut self) {
        self.set_drop_reason(NOT_READ_TO_THE_END);
        self.record.update(|record| record.ahead = false);
    }

    /// Up to `max` more bytes; empty when the body is complete. After an error, every later
    /// read returns the same error.
    pub async fn read(&mut self, max: u32) -> Result<Vec<u8>, HttpError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if !self.record.is_open() {
            return Ok(Vec::new());
        }
        if self.handed == self.pending.len() {
            match self.pieces.recv().await {
                Some(Ok(piece)) => {
                    self.budget.add_permits(piece.len());
                    self.pending = piece;
                    self.handed = 0;
                }
                Some(Err((reason, error))) => return Err(self.fail(&reason, error)),
                None if self.end.get().is_some() => {
                    self.finish(None);
                    self.check_next_link();
                    return Ok(Vec::new());
                }
                None => {
                    let error = HttpError::Transport("the answer's reading stopped".into());
                    return Err(self.fail("reading stopped", error));
                }
            }
        }
        let left = self.pending.len() - self.handed;
        let n = left.min(max.max(1) as usize);
        if self.received + n as u64 > self.cap {
            let cap = self.cap;
            return Err(self.fail("response too large", HttpError::TooLarge(cap)));
        }
        self.received += n as u64;
        self.record.bytes(self.received);
        self.check_next_link();
        if n == left && self.handed == 0 {
            // The whole piece: handed over as it is.
            return Ok(std::mem::take(&mut self.pending));
        }
        let piece = self.pending[self.handed..self.handed + n].to_vec();
        self.handed += n;
        Ok(piece)
    }

    /// Hands the next link over when the body ended with one and the guest is far enough in.
    fn check_next_link(&mut self) {
        let Some(End {
            total,
            next_link: Some(link),
        }) = self.end.get()
        else {
            return;
        };
        if self.received >= total / NEXT_PAGE_AFTER
            && let Some(then) = self.on_next_link.take()
        {
            then(link.clone());
        }
    }

    fn fail(&mut self, reason: &str, error: HttpError) -> HttpError {
        self.finish(Some(reason));
        self.failed = Some(error.clone());
        self.reader.abort();
        error
    }

    /// Writes the audit record (once), with the bytes handed out so far.
    fn finish(&mut self, reason: Option<&str>) {
        self.record.write(reason, self.received);
    }
}

impl Drop for IncomingBody {
    fn drop(&mut self) {
        self.reader.abort();
        self.record.write_left(self.received);
    }
}

/// The reading task's side of a body.
struct Reading {
    response: reqwest::Response,
    announced: Option<u64>,
    downloaded: u64,
    cap: u64,
    deadline: Instant,
    read_idle: Duration,
    tail: Vec<u8>,
}

impl Reading {
    /// Reads the body into `sender` while `budget` allows, then notes how it ended in `end`
    /// (an error is handed over instead).
    async fn run(
        mut self,
        sender: mpsc::Sender<Piece>,
        budget: Arc<Semaphore>,
        end: Arc<OnceLock<End>>,
    ) {
        let looks_for_link = self.response.status().is_success();
        loop {
            let chunk = match self.next_piece().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    let next_link = looks_for_link.then(|| next_link(&self.tail)).flatten();
                    let _ = end.set(End {
                        total: self.downloaded,
                        next_link,
                    });
                    return;
                }
                Err(failure) => {
                    let _ = sender.send(Err(failure)).await;
                    return;
                }
            };
            self.downloaded += chunk.len() as u64;
            if looks_for_link {
                keep_tail(&mut self.tail, &chunk);
            }
            for piece in chunk.chunks(PIECE) {
                // Permits come back as the guest receives pieces (dropping the body aborts
                // this task).
                let Ok(permits) = budget.acquire_many(piece.len() as u32).await else {
                    return;
                };
                permits.forget();
                if sender.send(Ok(piece.to_vec())).await.is_err() {
                    return;
                }
            }
            if self.downloaded > self.cap {
                // The guest's side refuses the piece that passed the cap; nothing more is read.
                return;
            }
        }
    }

    /// The next piece from the network, `None` at the end; an error comes with the reason the
    /// audit record gives.
    async fn next_piece(&mut self) -> Result<Option<Bytes>, (String, HttpError)> {
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
}

/// Keeps at least the last [`TAIL`] bytes of a body in `tail` (at most twice that, so that
/// tiny pieces cost no more than large ones), `piece` being the latest.
fn keep_tail(tail: &mut Vec<u8>, piece: &[u8]) {
    if piece.len() >= TAIL {
        tail.clear();
        tail.extend_from_slice(&piece[piece.len() - TAIL..]);
        return;
    }
    if tail.len() + piece.len() > 2 * TAIL {
        tail.drain(..tail.len() - TAIL);
    }
    tail.extend_from_slice(piece);
}

/// The `@odata.nextLink` a JSON object closes with: the text ends with
/// `, "@odata.nextLink": "<link>" }` (or `{` before the key; whitespace allowed between the
/// tokens). Anything else, a link elsewhere in the object or a key that only ends like it
/// (`"\"@odata.nextLink"`) included, gives `None`: the link is only a hint of what the guest
/// will ask for next.
fn next_link(tail: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"@odata.nextLink\"";
    let text = tail.trim_ascii_end().strip_suffix(b"}")?;
    let at = text.windows(KEY.len()).rposition(|w| w == KEY)?;
    if !matches!(text[..at].trim_ascii_end().last(), Some(b',' | b'{')) {
        return None;
    }
    let value = text[at + KEY.len()..]
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii();
    if value.first() != Some(&b'"') {
        return None;
    }
    serde_json::from_slice::<String>(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_the_string_the_object_closes_with() {
        let page = br#"{"value":[{"id":1}],"@odata.nextLink" : "https://x/api/incidents?$skip=100\u0026a=b" }
"#;
        assert_eq!(
            next_link(page).as_deref(),
            Some("https://x/api/incidents?$skip=100&a=b")
        );
    }

    #[test]
    fn a_link_after_a_comma_or_opening_the_object_is_the_next_link() {
        for page in [
            &br#"{ "@odata.nextLink": "https://x/a" }"#[..],
            br#"{"value":[] ,
  "@odata.nextLink":"https://x/a"}"#,
        ] {
            assert_eq!(
                next_link(page).as_deref(),
                Some("https://x/a"),
                "{}",
                String::from_utf8_lossy(page)
            );
        }
    }

    #[test]
    fn a_link_that_does_not_close_the_object_is_no_next_link() {
        for page in [
            &br#"{"@odata.nextLink":"https://x/a","value":[]}"#[..],
            br#"{"value":[],"@odata.nextLink":"https://x/a""#,
            br#"{"value":[],"@odata.nextLink":"https://x/a","n":1}"#,
            br#"{"value":[],"@odata.nextLink":null}"#,
            br#"{"value":[],"@odata.nextLink":"https://x/a" "b"}"#,
            br#"{"v":"\"@odata.nextLink\":\"https://x/a\"}"}"#,
            br#"{"value":[],"\"@odata.nextLink":"https://x/a"}"#,
        ] {
            assert_eq!(next_link(page), None, "{}", String::from_utf8_lossy(page));
        }
    }

    #[test]
    fn the_tail_keeps_the_last_bytes_across_pieces() {
        let mut tail = Vec::new();
        keep_tail(&mut tail, &vec![b'a'; TAIL - 3]);
        keep_tail(&mut tail, b"bcdef");
        assert!(tail.ends_with(b"aaabcdef"));
        for _ in 0..3 * TAIL {
            keep_tail(&mut tail, b"y");
            assert!((TAIL..=2 * TAIL).contains(&tail.len()), "{}", tail.len());
        }
        keep_tail(&mut tail, b"x");
        assert!(tail.ends_with(&[&[b'y'; 100][..], b"x"].concat()));
        keep_tail(&mut tail, &vec![b'z'; TAIL + 5]);
        assert_eq!(tail, vec![b'z'; TAIL]);
    }
}
