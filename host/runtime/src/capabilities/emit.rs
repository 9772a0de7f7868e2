//! `emit.emit`: a dataset's rows, one JSON object at a time, to whoever consumes them.
//!
//! Threat: a guest controls every byte of a row and how many it sends. Rows count against the
//! invocation's output cap before they are checked, one row is at most [`MAX_ROW_BYTES`], and a
//! row must be one JSON object. The check is one pass over the text that builds nothing (a
//! [`Row`] keeps the guest's text, which the NDJSON and JSON printers and `serve` pass on as it
//! is); a row with line breaks between its tokens is re-serialized on one line, so it cannot
//! split an NDJSON line. A consumer that can take no more (its own output cap, or a reader so
//! slow the deadline passes) stops the skill with the matching violation.

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

/// One row a guest emitted: a JSON object, checked, as JSON text on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(String);

impl Row {
    /// Checks that `text` is one JSON object; the text is kept as it is unless it holds line
    /// breaks between tokens (a JSON string cannot hold a raw one), in which case it is written
    /// again on one line.
    pub fn check(text: String) -> Result<Row, String> {
        if text.bytes().any(|b| b == b'\n' || b == b'\r') {
            let object = match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(object)) => object,
                Ok(_) => return Err("a row must be a JSON object".to_string()),
                Err(e) => return Err(format!("a row must be a JSON object: {e}")),
            };
            return serde_json::to_string(&object)
                .map(Row)
                .map_err(|e| format!("a row could not be re-encoded: {e}"));
        }
        match serde_json::from_str::<ObjectShape>(&text) {
            Ok(ObjectShape) => Ok(Row(text)),
            Err(e) if e.is_data() => Err("a row must be a JSON object".to_string()),
            Err(e) => Err(format!("a row must be a JSON object: {e}")),
        }
    }

    /// The row's JSON text (one line, an object).
    pub fn text(&self) -> &str {
        &self.0
    }

    /// The row's JSON text, owned.
    pub fn into_text(self) -> String {
        self.0
    }

    /// The row as a map, for consumers that need its values (CSV, tables, tests).
    pub fn to_map(&self) -> std::io::Result<Map<String, Value>> {
        serde_json::from_str(&self.0).map_err(std::io::Error::other)
    }
}

/// A JSON object, every value checked and none kept: validation in one pass, nothing built.
/// Values go through serde_json's own parse (not `IgnoredAny`), so its nesting limit, escape
/// checks (lone surrogates) and number ranges hold as they did when rows were parsed into trees.
struct ObjectShape;

/// Any JSON value, checked and dropped.
struct AnyShape;

impl<'de> serde::de::Visitor<'de> for AnyShape {
    type Value = AnyShape;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<AnyShape, E> {
        Ok(AnyShape)
    }

    fn visit_i64<E>(self, _: i64) -> Result<AnyShape, E> {
        Ok(AnyShape)
    }

    fn visit_u64<E>(self, _: u64) -> Result<AnyShape, E> {
        Ok(AnyShape)
    }

    fn visit_f64<E>(self, _: f64) -> Result<AnyShape, E> {
        Ok(AnyShape)
    }

    fn visit_str<E>(self, _: &str) -> Result<AnyShape, E> {
        Ok(AnyShape)
    }

    fn visit_unit<E>(self) -> Result<AnyShape, E> {
        Ok(AnyShape)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<AnyShape, A::Error> {
        while seq.next_element::<AnyShape>()?.is_some() {}
        Ok(AnyShape)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<AnyShape, A::Error> {
        while map.next_entry::<AnyShape, AnyShape>()?.is_some() {}
        Ok(AnyShape)
    }
}

impl<'de> serde::Deserialize<'de> for AnyShape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnyShape)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectShape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ObjectShape;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ObjectShape, A::Error> {
                while map.next_entry::<AnyShape, AnyShape>()?.is_some() {}
                Ok(ObjectShape)
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// Where a dataset's rows go, one JSON object at a time, as the guest emits them.
pub trait RowSink: Send {
    /// Takes one row. An error stops the skill (the host reports it).
    fn row(&mut self, row: Row) -> std::io::Result<()>;

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
    fn row(&mut self, _row: Row) -> std::io::Result<()> {
        Err(std::io::Error::other("rows cannot be emitted here"))
    }
}

/// A sink that keeps rows in memory (tests and library callers).
#[derive(Clone, Default)]
pub struct CollectRows(pub Arc<Mutex<Vec<Map<String, Value>>>>);

impl RowSink for CollectRows {
    fn row(&mut self, row: Row) -> std::io::Result<()> {
        let row = row.to_map()?;
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
    pub async fn emit(&mut self, row_json: String) -> Result<(), Refusal> {
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
        let row = Row::check(row_json).map_err(Refusal::Rejected)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_keeps_its_text_when_it_is_one_object_on_one_line() {
        let text = r#"{"b": 1, "a": [null, "x\u001b"], "c": {"d": 1.50}}"#;
        assert_eq!(Row::check(text.to_string()).unwrap().text(), text);
    }

    #[test]
    fn a_row_with_line_breaks_between_tokens_is_written_on_one_line() {
        let row = Row::check("{\"a\":\r\n 1,\n\"b\": \"x\"}".to_string()).unwrap();
        assert_eq!(row.text(), r#"{"a":1,"b":"x"}"#);
    }

    #[test]
    fn a_row_that_is_not_one_object_is_refused() {
        for text in [
            "[1]",
            "1",
            "\"x\"",
            "{\"a\":}",
            "{} {}",
            "{\"a\":\"\u{1}\"}",
            "",
        ] {
            let refused = Row::check(text.to_string()).unwrap_err();
            assert!(
                refused.starts_with("a row must be a JSON object"),
                "{text:?}: {refused}"
            );
        }
    }
}
