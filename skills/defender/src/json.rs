//! JSON pieces of the fast path, each the exact equivalent of what parsing into
//! [`serde_json::Value`] and serializing it again would give, without building the tree.
//!
//! - [`write_str`] escapes a string as serde_json's compact serializer does.
//! - [`Skip`] walks over a value, validating it exactly as parsing it into a `Value` would (UTF-8,
//!   escapes, lone surrogates, numbers), without keeping any of it.
//! - [`Transcode`] writes a value in the form `Value`'s serializer would give it (compact, escapes
//!   normalized, numbers re-formatted), and reports a duplicate key, where a `Value` would keep the
//!   last value at the first key's place, so that the caller can fall back to a `Value`.
//!
//! Each counts nesting levels from the page object, the way serde_json does while it parses a
//! whole page: an incident is parsed on its own, from its first byte, but a container nested
//! deeper than serde_json allows inside a page is still refused (see [`enter`]).

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use crate::incident::{AlertIds, AlertsShape, ListedNotes, listed_note};

/// The nesting level at which serde_json refuses a container (its recursion limit, counting the
/// page object as level 1).
const LEVEL_LIMIT: u32 = 128;

/// The nesting level of an incident object in a page: the page object is 1, its `value` list 2.
pub(crate) const INCIDENT_LEVEL: u32 = 3;

/// Refuses a container at `level` as serde_json would inside a whole page.
pub(crate) fn enter<E: de::Error>(level: u32) -> Result<(), E> {
    if level >= LEVEL_LIMIT {
        Err(E::custom("recursion limit exceeded"))
    } else {
        Ok(())
    }
}

/// Appends `s` as a JSON string, quotes included, escaped exactly as serde_json does: `"`, `\`
/// and the control characters U+0000 to U+001F, with `\b \f \n \r \t` for those that have one and
/// lowercase `\u00xx` for the rest; everything else (U+2028 and U+007F included) as is.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

/// Appends the escaped content of `s`, without quotes.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = first_to_escape(bytes);
    while i < bytes.len() {
        let byte = bytes[i];
        let short = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0C => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1F => "",
            _ => {
                i += 1;
                continue;
            }
        };
        // Every byte that is escaped is ASCII, so `i` is on a character boundary.
        out.push_str(&s[start..i]);
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xF)] as char);
        } else {
            out.push_str(short);
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
}

/// The index of the first byte that needs escaping (`"`, `\`, below 0x20), or the length: eight
/// bytes at a time, since most strings need none.
fn first_to_escape(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte below 0x20 has its three high bits clear (on top of the exact matches).
        let found = has_zero(x ^ (ONES * u64::from(b'"')))
            | has_zero(x ^ (ONES * u64::from(b'\\')))
            | has_zero(x & (ONES * 0xE0));
        if found != 0 {
            break;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .unwrap_or(bytes.len() - at)
}

/// Appends a number as serde_json writes it (integers as they are, floats in their shortest
/// round-trip form).
pub(crate) fn write_number(out: &mut String, number: &Number) {
    // `Number`'s `Display` and its serialization use the same formatter; a `String` never fails.
    let _ = write!(out, "{number}");
}

/// A float as a `Value` holds it: a number, or null when it is not finite.
pub(crate) fn float(value: f64) -> Option<Number> {
    Number::from_f64(value)
}

thread_local! {
    /// Whether the text being parsed was checked as UTF-8 as a whole (see [`Skip`]).
    static TEXT_IS_UTF8: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `parse` on text checked as UTF-8 as a whole, so that [`Skip`] takes the quick way.
pub(crate) fn on_utf8_text<T>(parse: impl FnOnce() -> T) -> T {
    let before = TEXT_IS_UTF8.replace(true);
    let out = parse();
    TEXT_IS_UTF8.set(before);
    out
}

/// Walks over one value that no row or incident uses, keeping nothing.
///
/// On bytes, it is validated as parsing it into a `Value` would (UTF-8, escapes, lone
/// surrogates, number range, nesting). On text already checked as UTF-8
/// ([`on_utf8_text`]), it is skipped as serde_json skips ignored values, which checks its
/// structure, escapes and control characters but not three things a `Value` refuses: a lone
/// UTF-16 surrogate escape (`"\ud800"`), a number beyond `f64`'s range (`1e400`), and nesting
/// deeper than 128 (serde_json keeps that skip's nesting on the heap, one byte a level, so it
/// cannot overflow the stack). None of them can reach a row; a page that has one in a field
/// nobody reads is read instead of refused.
///
/// The `u32` is the nesting level the value has if it is a container.
#[derive(Clone, Copy)]
pub(crate) struct Skip(pub u32);

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if TEXT_IS_UTF8.get() {
            // Text already checked as UTF-8: serde_json's own skip (structure, escapes and
            // control characters checked, nothing visited) is several times quicker than
            // visiting every key and string.
            deserializer.deserialize_ignored_any(self)
        } else {
            // `deserialize_any`, not `deserialize_ignored_any`: serde_json skips ignored strings
            // without checking their UTF-8, where a `Value` refuses them.
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        enter(self.0)?;
        while seq.next_element_seed(Skip(self.0 + 1))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        enter(self.0)?;
        // Keys are parsed as strings (validated) like a `Value`'s keys.
        while map.next_key_seed(Skip(self.0))?.is_some() {
            map.next_value_seed(Skip(self.0 + 1))?;
        }
        Ok(())
    }
}

/// An object key, borrowed from the text when it has no escape.
pub(crate) struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// A value as the fast path keeps it: scalars as they are (strings borrowed from the text when
/// they have no escape), lists and objects as the text a `Value` would serialize them to.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Cell<'de> {
    /// The key was not there.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as a `Value` holds it.
    Num(Number),
    /// A string.
    Str(Cow<'de, str>),
    /// A list or an object: its canonical text, at this range of the buffer it was written to.
    Json(std::ops::Range<usize>),
}

impl Cell<'_> {
    /// A string, or `None`.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A non-empty string or a number: what counts as an identity.
    pub(crate) fn is_id(&self) -> bool {
        match self {
            Cell::Str(s) => !s.is_empty(),
            Cell::Num(_) => true,
            _ => false,
        }
    }

    /// Appends the value as a `Value` would serialize it; `buffer` holds the text of
    /// [`Cell::Json`].
    pub(crate) fn write(&self, out: &mut String, buffer: &str) {
        match self {
            Cell::Absent | Cell::Null => out.push_str("null"),
            Cell::Bool(true) => out.push_str("true"),
            Cell::Bool(false) => out.push_str("false"),
            Cell::Num(n) => write_number(out, n),
            // serde_json lends a string from the text only when it holds no escape sequence, and
            // refuses raw control characters: such a string has nothing to escape.
            Cell::Str(Cow::Borrowed(s)) => {
                out.push('"');
                out.push_str(s);
                out.push('"');
            }
            Cell::Str(s) => write_str(out, s),
            Cell::Json(range) => out.push_str(buffer.get(range.clone()).unwrap_or("null")),
        }
    }
}

/// Writes a value in canonical form (as `Value`'s serializer would) to `out` and returns it as a
/// [`Cell`]. Scalars are written only when `scalars` is set (a captured scalar is written later,
/// from its cell); lists and objects always are.
pub(crate) struct Transcode<'a, 'de> {
    /// Where the text goes.
    pub out: &'a mut String,
    /// The nesting level of the value if it is a container.
    pub level: u32,
    /// Whether scalars are written too.
    pub scalars: bool,
    /// Keys of the objects being written, innermost last (a stack shared by the nested calls).
    pub keys: &'a mut Vec<Cow<'de, str>>,
    /// Set when an object repeats a key: the text written is then not what a `Value` gives.
    pub duplicate: &'a mut bool,
    /// What is noted of the value on the way (the list skill's checks).
    pub role: Role<'a, 'de>,
}

/// What [`Transcode`] notes of the value it writes, besides writing it.
pub(crate) enum Role<'a, 'de> {
    /// Nothing.
    Plain,
    /// A listed incident: its identities and version, and the shape of its alerts.
    Incident(&'a mut ListedNotes<'de>),
    /// The value of `alerts`.
    Alerts(&'a mut AlertsShape),
    /// One element of `alerts`.
    Alert(&'a mut AlertIds),
}

impl<'de> Transcode<'_, 'de> {
    fn child<'b>(&'b mut self, role: Role<'b, 'de>) -> Transcode<'b, 'de> {
        Transcode {
            out: self.out,
            level: self.level + 1,
            scalars: true,
            keys: self.keys,
            duplicate: self.duplicate,
            role,
        }
    }

    fn scalar(self, text: &str, cell: Cell<'de>) -> Cell<'de> {
        if self.scalars {
            self.out.push_str(text);
        }
        cell
    }
}

impl<'de> DeserializeSeed<'de> for Transcode<'_, 'de> {
    type Value = Cell<'de>;

    fn deserialize<D: Deserializer<'de>>(
        mut self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        // Anything but a list or null is not a list of alerts; `visit_seq` and `visit_unit` say
        // otherwise.
        if let Role::Alerts(shape) = &mut self.role {
            **shape = AlertsShape::NotList;
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Transcode<'_, 'de> {
    type Value = Cell<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<Self::Value, E> {
        if let Role::Alerts(shape) = &mut self.role {
            **shape = AlertsShape::Null;
        }
        Ok(self.scalar("null", Cell::Null))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(self.scalar(if v { "true" } else { "false" }, Cell::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.visit_number(Number::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_number(Number::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        match float(v) {
            Some(n) => self.visit_number(n),
            None => self.visit_unit(),
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        if self.scalars {
            write_str(self.out, v);
        }
        Ok(Cell::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if self.scalars {
            write_str(self.out, v);
        }
        Ok(Cell::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        enter(self.level)?;
        let start = self.out.len();
        self.out.push('[');
        let mut role = std::mem::replace(&mut self.role, Role::Plain);
        let mut alerts = (true, true);
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push(',');
            }
            let mut ids = AlertIds::default();
            let child = match role {
                Role::Alerts(_) => self.child(Role::Alert(&mut ids)),
                _ => self.child(Role::Plain),
            };
            if seq.next_element_seed(child)?.is_none() {
                self.out.truncate(mark);
                break;
            }
            alerts.0 &= ids.object && ids.legacy;
            alerts.1 &= ids.object && ids.graph;
            first = false;
        }
        if let Role::Alerts(shape) = &mut role {
            **shape = AlertsShape::List {
                legacy: alerts.0,
                graph: alerts.1,
            };
        }
        self.out.push(']');
        Ok(Cell::Json(start..self.out.len()))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        enter(self.level)?;
        let start = self.out.len();
        let frame = self.keys.len();
        self.out.push('{');
        let mut role = std::mem::replace(&mut self.role, Role::Plain);
        if let Role::Alert(ids) = &mut role {
            ids.object = true;
        }
        while let Some(key) = map.next_key_seed(Key)? {
            if self.keys[frame..].contains(&key) {
                *self.duplicate = true;
            }
            if self.keys.len() > frame {
                self.out.push(',');
            }
            write_str(self.out, &key);
            self.out.push(':');
            let note = match &role {
                Role::Incident(_) if key == "alerts" => Note::Alerts,
                Role::Incident(_) => listed_note(&key).map_or(Note::Nothing, Note::Incident),
                Role::Alert(_) if key == "alertId" => Note::LegacyAlertId,
                Role::Alert(_) if key == "id" => Note::GraphAlertId,
                _ => Note::Nothing,
            };
            self.keys.push(key);
            let child = match (&mut role, note) {
                (Role::Incident(notes), Note::Alerts) => {
                    self.child(Role::Alerts(&mut notes.alerts))
                }
                _ => self.child(Role::Plain),
            };
            let cell = map.next_value_seed(child)?;
            match (&mut role, note) {
                (Role::Incident(notes), Note::Incident(i)) => notes.ids[i] = cell,
                (Role::Alert(ids), Note::LegacyAlertId) => ids.legacy = cell.is_id(),
                (Role::Alert(ids), Note::GraphAlertId) => ids.graph = cell.is_id(),
                _ => {}
            }
        }
        self.keys.truncate(frame);
        self.out.push('}');
        Ok(Cell::Json(start..self.out.len()))
    }
}

/// Which value of an object [`Transcode`] notes for its role.
#[derive(Clone, Copy)]
enum Note {
    Nothing,
    Incident(usize),
    Alerts,
    LegacyAlertId,
    GraphAlertId,
}

impl<'de> Transcode<'_, 'de> {
    fn visit_number<E: de::Error>(self, n: Number) -> Result<Cell<'de>, E> {
        if self.scalars {
            write_number(self.out, &n);
        }
        Ok(Cell::Num(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn transcode(text: &str) -> Result<(String, bool), serde_json::Error> {
        let mut out = String::new();
        let mut keys = Vec::new();
        let mut duplicate = false;
        let mut de = serde_json::Deserializer::from_str(text);
        Transcode {
            out: &mut out,
            level: INCIDENT_LEVEL,
            scalars: true,
            keys: &mut keys,
            duplicate: &mut duplicate,
            role: Role::Plain,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok((out, duplicate))
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut every: String = (0u32..0x80).filter_map(char::from_u32).collect();
        every.push_str("\u{80}\u{a0}\u{2028}\u{2029}\u{feff}é😀\u{10ffff}");
        for text in [every.as_str(), "", "plain", "\\\"", "a\u{0}b\u{1f}c\u{7f}"] {
            let mut out = String::new();
            write_str(&mut out, text);
            assert_eq!(out, serde_json::to_string(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn escaping_finds_each_character_wherever_it_stands() {
        for offset in 0..20 {
            for c in (0u32..0x80)
                .chain([0xe9, 0x2028, 0x1f600])
                .filter_map(char::from_u32)
            {
                let text = format!("{}{c}{}", "a".repeat(offset), "é".repeat(offset % 3));
                let mut out = String::new();
                write_str(&mut out, &text);
                assert_eq!(out, serde_json::to_string(&text).unwrap(), "{text:?}");
            }
        }
    }

    #[test]
    fn transcoding_gives_what_a_value_serializes_to() {
        for text in [
            r#"{"b":1,"a":[1.0,1e3,-0,-0.0,1E+2,12345678901234567890,123456789012345678901234567890,-9223372036854775808,0.1,2.5e-8,1e308]}"#,
            r#" { "x" : "\u0041\/\u00e9\ud83d\ude00\u2028\u001F\"" , "y" : [ true , false , null , { } , [ ] ] } "#,
            r#"[["deep",{"k":{"l":[1,2,{"m":"n"}]}}]]"#,
            r#""just a string""#,
            "-12.50",
            "null",
        ] {
            let (out, duplicate) = transcode(text).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(out, value.to_string(), "{text}");
            assert!(!duplicate);
        }
    }

    #[test]
    fn a_repeated_key_is_reported_and_keys_of_sibling_objects_are_not_confused() {
        assert!(transcode(r#"{"a":1,"b":2,"a":3}"#).unwrap().1);
        assert!(
            transcode(r#"[{"a":1},{"a":{"a":1,"\u0061":2}}]"#)
                .unwrap()
                .1
        );
        assert!(
            !transcode(r#"[{"a":1},{"a":{"a":1}},{"b":{"a":1},"a":2}]"#)
                .unwrap()
                .1
        );
    }

    #[test]
    fn a_string_is_lent_from_the_text_only_when_it_has_nothing_to_escape() {
        // `Cell::write` copies lent strings as they are.
        for text in [
            r#""plain é 😀 \u2028""#,
            r#""a\"b""#,
            r#""a\\b""#,
            r#""\u0041""#,
            r#""\/""#,
        ] {
            let mut de = serde_json::Deserializer::from_str(text);
            let mut keys = Vec::new();
            let mut duplicate = false;
            let mut scratch = String::new();
            let cell = Transcode {
                out: &mut scratch,
                level: INCIDENT_LEVEL,
                scalars: false,
                keys: &mut keys,
                duplicate: &mut duplicate,
                role: Role::Plain,
            }
            .deserialize(&mut de)
            .unwrap();
            let mut out = String::new();
            cell.write(&mut out, "");
            assert_eq!(
                out,
                serde_json::from_str::<Value>(text).unwrap().to_string()
            );
            assert_eq!(
                matches!(cell, Cell::Str(Cow::Borrowed(_))),
                !text.contains('\\')
            );
        }
        // Raw control characters are refused.
        for c in 0u8..0x20 {
            let text = format!("\"a{}b\"", c as char);
            assert!(serde_json::from_str::<Value>(&text).is_err());
            assert!(serde_json::from_str::<&str>(&text).is_err());
        }
    }

    #[test]
    fn what_a_value_refuses_is_refused() {
        for text in [
            r#""\ud800""#,
            "\"\u{1}\"",
            r#""\x""#,
            "1e400",
            "[1,]",
            r#"{"a":1,}"#,
        ] {
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
            assert!(transcode(text).is_err(), "{text}");
            let mut de = serde_json::Deserializer::from_str(text);
            assert!(Skip(INCIDENT_LEVEL).deserialize(&mut de).is_err(), "{text}");
        }
        // Invalid UTF-8 inside a string that is skipped.
        let bytes = b"{\"a\":[\"\xff\"]}";
        assert!(serde_json::from_slice::<Value>(bytes).is_err());
        let mut de = serde_json::Deserializer::from_slice(bytes);
        assert!(Skip(INCIDENT_LEVEL).deserialize(&mut de).is_err());
    }

    #[test]
    fn on_utf8_text_a_skipped_value_is_checked_for_structure_and_escapes_only() {
        let skip = |text: &str| {
            on_utf8_text(|| {
                let mut de = serde_json::Deserializer::from_str(text);
                Skip(INCIDENT_LEVEL).deserialize(&mut de)
            })
        };
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        for accepted in [
            r#""\ud800""#,
            "1e400",
            deep.as_str(),
            r#"{"a":[1,"\u00e9"]}"#,
        ] {
            assert!(skip(accepted).is_ok(), "{accepted}");
        }
        for refused in [
            "\"\u{1}\"",
            r#""\x""#,
            "[1,]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            "[1",
        ] {
            assert!(skip(refused).is_err(), "{refused}");
        }
        // The quick way ends with the parse it was asked for.
        let mut de = serde_json::Deserializer::from_str(r#""\ud800""#);
        assert!(Skip(INCIDENT_LEVEL).deserialize(&mut de).is_err());
    }

    #[test]
    fn nesting_is_refused_where_serde_json_refuses_it_inside_a_page() {
        // Inside a page, an incident is level 3: a page nests 127 levels at most.
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        let page = |levels: usize| format!("{{\"value\":[{}]}}", nested(levels));
        assert!(serde_json::from_str::<Value>(&page(125)).is_ok());
        assert!(serde_json::from_str::<Value>(&page(126)).is_err());
        assert!(transcode(&nested(125)).is_ok());
        assert!(transcode(&nested(126)).is_err());
        let skip = |text: &str| {
            let mut de = serde_json::Deserializer::from_str(text);
            Skip(INCIDENT_LEVEL).deserialize(&mut de)
        };
        assert!(skip(&nested(125)).is_ok());
        assert!(skip(&nested(126)).is_err());
    }
}
