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
        // Most rows are plainly one object on one line: one quick pass says so. Anything else
        // (an error included) takes serde_json's parse, whose verdict and words stand.
        if plainly_one_object(text.as_bytes()) {
            return Ok(Row(text));
        }
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

/// Levels of nesting [`plainly_one_object`] follows (deeper rows take serde_json's parse).
const PLAIN_DEPTH: u32 = 64;

/// What [`plainly_one_object`] expects next.
#[derive(Clone, Copy)]
enum Expect {
    /// A key or `}` (just after `{`).
    KeyOrClose,
    /// A key (after a comma in an object).
    Key,
    /// A value or `]` (just after `[`).
    ValueOrClose,
    /// A value.
    Value,
    /// A comma or the end of the container.
    CommaOrClose,
}

/// Whether `text` is, for certain, one JSON object on one line that serde_json's parse accepts
/// as well: tokens separated by spaces and tabs only, strings without `\u` escapes, numbers of
/// at most 18 digits without an exponent (always finite), at most [`PLAIN_DEPTH`] levels. False
/// means "not plainly", not "invalid": such a text is left to serde_json, which decides.
fn plainly_one_object(text: &[u8]) -> bool {
    // One bit per open container, 1 for an object.
    let mut objects: u64 = 0;
    let mut depth: u32 = 0;
    let mut i = skip_blanks(text, 0);
    if text.get(i) != Some(&b'{') {
        return false;
    }
    let mut expect = Expect::Value;
    loop {
        i = skip_blanks(text, i);
        let Some(&byte) = text.get(i) else {
            return false;
        };
        let closes = match (expect, byte) {
            (Expect::KeyOrClose, b'}') | (Expect::ValueOrClose, b']') => true,
            (Expect::CommaOrClose, b'}') => objects & 1 == 1,
            (Expect::CommaOrClose, b']') => objects & 1 == 0,
            _ => false,
        };
        if closes {
            depth -= 1;
            objects >>= 1;
            i += 1;
            if depth == 0 {
                return skip_blanks(text, i) == text.len();
            }
            expect = Expect::CommaOrClose;
            continue;
        }
        match expect {
            Expect::CommaOrClose => {
                if byte != b',' {
                    return false;
                }
                i += 1;
                expect = if objects & 1 == 1 {
                    Expect::Key
                } else {
                    Expect::Value
                };
            }
            Expect::KeyOrClose | Expect::Key => {
                let Some(end) = string_end(text, i) else {
                    return false;
                };
                i = skip_blanks(text, end);
                if text.get(i) != Some(&b':') {
                    return false;
                }
                i += 1;
                expect = Expect::Value;
            }
            Expect::ValueOrClose | Expect::Value => {
                i = match byte {
                    b'{' | b'[' => {
                        if depth == PLAIN_DEPTH {
                            return false;
                        }
                        depth += 1;
                        objects = (objects << 1) | u64::from(byte == b'{');
                        expect = if byte == b'{' {
                            Expect::KeyOrClose
                        } else {
                            Expect::ValueOrClose
                        };
                        i += 1;
                        continue;
                    }
                    b'"' => string_end(text, i),
                    b't' => literal(text, i, b"true"),
                    b'f' => literal(text, i, b"false"),
                    b'n' => literal(text, i, b"null"),
                    _ => number_end(text, i),
                }
                .unwrap_or(usize::MAX);
                if i == usize::MAX {
                    return false;
                }
                expect = Expect::CommaOrClose;
            }
        }
    }
}

/// The index after the spaces and tabs from `i` on.
fn skip_blanks(text: &[u8], mut i: usize) -> usize {
    while matches!(text.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// The index after `word` at `i`, if it is there.
fn literal(text: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    text.get(i..i + word.len())
        .filter(|found| *found == word)
        .map(|_| i + word.len())
}

/// The index after the number at `i`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, 18 digits at most.
fn number_end(text: &[u8], mut i: usize) -> Option<usize> {
    let digits_from = |text: &[u8], i: usize| {
        text.get(i..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    if text.get(i) == Some(&b'-') {
        i += 1;
    }
    let whole = digits_from(text, i);
    if whole == 0 || (whole > 1 && text[i] == b'0') {
        return None;
    }
    i += whole;
    let mut fraction = 0;
    if text.get(i) == Some(&b'.') {
        fraction = digits_from(text, i + 1);
        if fraction == 0 {
            return None;
        }
        i += 1 + fraction;
    }
    if whole + fraction > 18 || matches!(text.get(i), Some(b'e' | b'E')) {
        return None;
    }
    Some(i)
}

/// The index after the string whose opening quote is at `i`; `None` if it is not plainly a
/// string (a `\u` escape, a control character, an unknown escape, no closing quote).
fn string_end(text: &[u8], i: usize) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    if text.get(i) != Some(&b'"') {
        return None;
    }
    let mut i = i + 1;
    loop {
        // Eight bytes at a time up to the first quote, backslash or control character: each
        // test flags the first such byte exactly (a borrow only flags bytes after it).
        while let Some(chunk) = text.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let word = u64::from_le_bytes(word);
            let quote = word ^ (ONES * u64::from(b'"'));
            let backslash = word ^ (ONES * u64::from(b'\\'));
            let flagged = (word.wrapping_sub(ONES * 0x20) & !word)
                | (quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash);
            let flagged = flagged & HIGH;
            if flagged != 0 {
                i += flagged.trailing_zeros() as usize / 8;
                break;
            }
            i += 8;
        }
        match *text.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *text.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                _ => return None,
            },
            byte if byte < 0x20 => return None,
            _ => i += 1,
        }
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

    /// Texts on the edge of what [`plainly_one_object`] takes, each with serde_json's verdict.
    const EDGES: &[&str] = &[
        r#"{}"#,
        r#" {"a":1} "#,
        "{\t\"a\" :\t[1, -0, 0.5, -12.25, true, false, null, {}, [], \"\"]}",
        r#"{"a":"\"\\\/\b\f\n\r\t","b":"é\u00e9 😀"}"#,
        r#"{"a":"\ud800"}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":-}"#,
        r#"{"a":1e5}"#,
        r#"{"a":1E400}"#,
        r#"{"a":123456789012345678}"#,
        r#"{"a":1234567890123456789012345678901234567890}"#,
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{,"a":1}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":[1 2]}"#,
        r#"{"a":[}"#,
        r#"{"a":{]}"#,
        r#"{"a":tru}"#,
        r#"{"a":nul}"#,
        r#"{"a":"x}"#,
        r#"{"a":1}}"#,
        r#"{"a":1} x"#,
        r#"{1:1}"#,
        r#"{"a":"x\"}"#,
        "{\"a\":\"\u{1f}\"}",
        "{\"a\":\"\u{7f}\"}",
        r#"[{"a":1}]"#,
        r#""{}""#,
        "",
        "{",
    ];

    #[test]
    fn the_quick_check_takes_only_what_serde_json_takes() {
        for text in EDGES {
            let serde = serde_json::from_str::<ObjectShape>(text).is_ok();
            if plainly_one_object(text.as_bytes()) {
                assert!(serde, "taken quickly but refused by serde_json: {text:?}");
            }
            assert_eq!(Row::check(text.to_string()).is_ok(), serde, "{text:?}");
        }
    }

    #[test]
    fn the_quick_check_takes_no_damaged_row_that_serde_json_refuses() {
        // Every cut and every one-byte change of a row with every value kind.
        let row = r#"{"id":"1","n":-12.5,"z":0,"t":true,"f":false,"x":null,"l":["a\"b",{"k":[]}],"e":"\\\/"}"#;
        let mut tried = 0;
        for at in 0..row.len() {
            let mut texts = vec![row[..at].to_string()];
            for byte in b"{}[]\":,.-+0159eE \"\\/tfnux\t\n" {
                let mut bytes = row.as_bytes().to_vec();
                bytes[at] = *byte;
                texts.extend(String::from_utf8(bytes).ok());
                let mut bytes = row.as_bytes().to_vec();
                bytes.insert(at, *byte);
                texts.extend(String::from_utf8(bytes).ok());
            }
            for text in texts {
                tried += 1;
                let serde = serde_json::from_str::<ObjectShape>(&text).is_ok();
                assert!(
                    !plainly_one_object(text.as_bytes()) || serde,
                    "taken quickly but refused by serde_json: {text:?}"
                );
            }
        }
        assert!(tried > 4000, "{tried}");
    }

    /// A small deterministic generator (xorshift64*), so that the differential test below is the
    /// same on every run.
    struct Draw(u64);

    impl Draw {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }

    /// A random JSON value, or nearly one: the pieces include numbers and escapes serde_json
    /// refuses or the quick check leaves to it.
    fn random_value(draw: &mut Draw, depth: u32, out: &mut String) {
        let kinds = if depth >= 4 { 3 } else { 5 };
        match draw.below(kinds) {
            0 => out.push_str(draw.pick(&[
                "0",
                "-0",
                "7",
                "-12.5",
                "0.25",
                "123456789012345678",
                "1234567890123456789",
                "1e5",
                "01",
                "1.",
                "true",
                "false",
                "null",
            ])),
            1 => {
                out.push('"');
                for _ in 0..draw.below(4) {
                    out.push_str(draw.pick(&[
                        "a",
                        "ü",
                        "😀",
                        r#"\""#,
                        r"\\",
                        r"\/",
                        r"\n",
                        r"\t",
                        r"\u00e9",
                        r"\ud800",
                        "long text past eight bytes",
                        "\u{7f}",
                    ]));
                }
                out.push('"');
            }
            2 => out.push_str(draw.pick(&[r#""""#, "[]", "{}"])),
            3 => {
                out.push('[');
                for n in 0..draw.below(4) {
                    if n > 0 {
                        out.push_str(draw.pick(&[",", ", ", ",\t"]));
                    }
                    random_value(draw, depth + 1, out);
                }
                out.push(']');
            }
            _ => random_object(draw, depth + 1, out),
        }
    }

    /// A random JSON object of [`random_value`]s.
    fn random_object(draw: &mut Draw, depth: u32, out: &mut String) {
        out.push('{');
        for n in 0..draw.below(4) {
            if n > 0 {
                out.push(',');
            }
            out.push_str(draw.pick(&[r#""k""#, r#""key with \" quote""#, r#""""#]));
            out.push_str(draw.pick(&[":", " : ", ":\t"]));
            random_value(draw, depth, out);
        }
        out.push('}');
    }

    #[test]
    fn the_quick_check_agrees_with_serde_json_on_random_rows_and_their_damage() {
        let mut draw = Draw(0x9e37_79b9_7f4a_7c15);
        let (mut quick, mut tried) = (0, 0);
        let noise: &[u8] = b"{}[]\":,.-+0e \\/tfnu\t";
        for _ in 0..20_000 {
            let mut row = String::new();
            random_object(&mut draw, 0, &mut row);
            let mut texts = vec![row.clone()];
            for _ in 0..4 {
                let mut bytes = row.clone().into_bytes();
                for _ in 0..1 + draw.below(3) {
                    let at = draw.below(bytes.len() + 1);
                    let byte = noise[draw.below(noise.len())];
                    match draw.below(3) {
                        0 if at < bytes.len() => bytes[at] = byte,
                        1 if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        _ => bytes.insert(at, byte),
                    }
                }
                texts.extend(String::from_utf8(bytes).ok());
            }
            for text in texts {
                tried += 1;
                let serde = serde_json::from_str::<ObjectShape>(&text).is_ok();
                if plainly_one_object(text.as_bytes()) {
                    quick += 1;
                    assert!(serde, "taken quickly but refused by serde_json: {text:?}");
                }
                assert_eq!(Row::check(text.clone()).is_ok(), serde, "{text:?}");
            }
        }
        // Enough of both kinds for the comparison to mean something.
        assert!(tried > 90_000, "{tried}");
        assert!(
            quick > 10_000 && quick < tried - 30_000,
            "{quick} of {tried}"
        );
    }

    #[test]
    fn the_quick_check_takes_plain_rows_of_every_value_kind() {
        for text in [
            r#"{}"#,
            r#"{"a":{"b":[1,-2.5,"x",true,false,null,[],{}]},"c":"\"\\\n"}"#,
            "{\"a\": 1,\t\"b\": \"ünïcödé and a long string past eight bytes\"}",
            r#"{"a":123456789012345678}"#,
        ] {
            assert!(plainly_one_object(text.as_bytes()), "{text:?}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(63), "]".repeat(63));
        assert!(plainly_one_object(deep.as_bytes()));
        let deeper = format!("{{\"a\":{}{}}}", "[".repeat(64), "]".repeat(64));
        assert!(!plainly_one_object(deeper.as_bytes()));
        assert!(Row::check(deeper).is_ok());
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
