//! `emit.emit`: a dataset's rows, one JSON object at a time, to whoever consumes them.
//!
//! Threat: a guest controls every byte of a row and how many it sends. Rows count against the
//! invocation's output cap before they are parsed, one row is at most [`MAX_ROW_BYTES`] (so what
//! the host builds from it stays a bounded multiple), and a row must be a JSON object. A consumer
//! that can take no more (its own output cap, or a reader so slow the deadline passes) stops the
//! skill with the matching violation.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use crate::limits::human_bytes;

/// The largest row the host takes, bytes (a detection row is about 2 KB).
pub const MAX_ROW_BYTES: usize = 1 << 20;

/// The error a [`RowSink`] returns when the output it writes reached the output cap.
#[derive(Debug)]
pub struct OutputFull(pub usize);

impl std::fmt::Display for OutputFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "output limit of {} reached", human_bytes(self.0))
    }
}

impl std::error::Error for OutputFull {}

/// A wait until a sink can take the next row.
pub type Ready<'a> = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send + 'a>>;

/// Where a dataset's rows go, one JSON object at a time, as the guest emits them.
pub trait RowSink: Send {
    /// Takes one row. An error stops the skill (the host reports it).
    fn row(&mut self, row: Map<String, Value>) -> std::io::Result<()>;

    /// A wait until the sink can take a row without blocking, for a sink whose reader is across
    /// a network (the guest waits, the runtime's threads do not); `None` when it always can.
    /// The invocation's deadline bounds the wait.
    fn ready(&mut self) -> Option<Ready<'_>> {
        None
    }
}

/// A sink for skills that must not emit (during `describe`).
pub struct RefuseRows;

impl RowSink for RefuseRows {
    fn row(&mut self, _row: Map<String, Value>) -> std::io::Result<()> {
        Err(std::io::Error::other("rows cannot be emitted here"))
    }
}

/// A sink that keeps rows in memory (tests and library callers).
#[derive(Clone, Default)]
pub struct CollectRows(pub Arc<Mutex<Vec<Map<String, Value>>>>);

impl RowSink for CollectRows {
    fn row(&mut self, row: Map<String, Value>) -> std::io::Result<()> {
        match self.0.lock() {
            Ok(mut rows) => {
                rows.push(row);
                Ok(())
            }
            Err(_) => Err(std::io::Error::other("row collector poisoned")),
        }
    }
}

/// Why a row was not taken.
pub enum Refusal {
    /// The output cap (bytes) was reached: a sandbox violation.
    OverCap(usize),
    /// The consumer could not take the row before the deadline: a deadline violation.
    Deadline,
    /// The row was malformed or the consumer went away; the guest is told why.
    Rejected(String),
}

/// The emit capability of one invocation: the sink and the output used so far.
pub struct EmitCapability {
    sink: Box<dyn RowSink>,
    cap: usize,
    used: usize,
}

impl EmitCapability {
    /// Rows to `sink`, at most `cap` bytes of them (the result counts too).
    pub fn new(sink: Box<dyn RowSink>, cap: usize) -> Self {
        EmitCapability { sink, cap, used: 0 }
    }

    /// Output bytes used so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Takes one row, once the sink is ready for it.
    pub async fn emit(&mut self, row_json: &str) -> Result<(), Refusal> {
        self.used = self.used.saturating_add(row_json.len());
        if self.used > self.cap {
            return Err(Refusal::OverCap(self.cap));
        }
        if row_json.len() > MAX_ROW_BYTES {
            return Err(Refusal::Rejected(format!(
                "a row of {} is larger than the host takes ({} per row)",
                human_bytes(row_json.len()),
                human_bytes(MAX_ROW_BYTES)
            )));
        }
        let row = match serde_json::from_str::<Value>(row_json) {
            Ok(Value::Object(row)) => row,
            Ok(_) => return Err(Refusal::Rejected("a row must be a JSON object".to_string())),
            Err(e) => {
                return Err(Refusal::Rejected(format!(
                    "a row must be a JSON object: {e}"
                )));
            }
        };
        if let Some(ready) = self.sink.ready() {
            ready.await.map_err(sink_refusal)?;
        }
        // A consumer that went away (closed pipe) can take nothing more.
        self.sink.row(row).map_err(sink_refusal)
    }
}

/// What a sink's error means for the guest.
fn sink_refusal(e: std::io::Error) -> Refusal {
    if let Some(OutputFull(cap)) = e.get_ref().and_then(|r| r.downcast_ref::<OutputFull>()) {
        Refusal::OverCap(*cap)
    } else if e.kind() == std::io::ErrorKind::TimedOut {
        Refusal::Deadline
    } else {
        Refusal::Rejected(format!("the host could not take the row: {e}"))
    }
}

impl Refusal {
    /// What the guest is told.
    pub fn message(&self) -> String {
        match self {
            Refusal::OverCap(cap) => format!(
                "output limit of {} reached; stop emitting",
                human_bytes(*cap)
            ),
            Refusal::Deadline => "the invocation's deadline passed; stop emitting".to_string(),
            Refusal::Rejected(why) => why.clone(),
        }
    }
}
