//! A hand-written walk over one incident in a window's text, for the detections skill: the same
//! [`ParsedIncident`] as its serde parse ([`crate::incident`]), in one pass over the bytes that
//! are skipped (most of an incident: entities, evidence, descriptions), without serde's
//! per-value dispatch or the decoding of strings nobody reads.
//!
//! It accepts and refuses exactly what parsing the incident into a `serde_json::Value` inside a
//! page does: the text is already valid UTF-8 (the window checked it); strings refuse raw control
//! characters, unknown escapes, and `\u` surrogates that are not a leading one followed by a
//! trailing one; numbers follow the JSON grammar, and those that could be out of `f64`'s range
//! (an exponent, or more than 300 integer digits) are handed to serde_json to decide; literals
//! are exact; objects and lists refuse trailing commas and nest no deeper than within a page.
//! Values the rows copy are decoded by serde_json from their exact text, so they are what a
//! `Value` would hold.

use std::borrow::Cow;

use serde::de::DeserializeSeed;

use crate::incident::{ALERT_KEYS, Alerts, INCIDENT_KEYS, Keys, ParsedAlert, ParsedIncident};
use crate::json::{Cell, INCIDENT_LEVEL, LEVEL_LIMIT, Role, Transcode};

/// Why a walk stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The text ended before the value did.
    Eof,
    /// Not JSON: what was wrong, at which byte of the text.
    Bad(&'static str, usize),
}

type Step<T> = Result<T, Stop>;

/// Walks the incident at the start of `text`; returns it and the bytes it took. An element that
/// is not an object is refused once walked, whatever follows it; if it is a number or a literal
/// that reaches the end of `text`, it may go on, unless `complete_at_end`.
pub(crate) fn incident(text: &str, complete_at_end: bool) -> Step<(ParsedIncident<'_>, usize)> {
    let mut walk = Walk {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    walk.space();
    let incident = if walk.peek()? == b'{' {
        walk.incident()?
    } else {
        let scalar = !matches!(walk.peek()?, b'"' | b'[');
        walk.skip(INCIDENT_LEVEL)?;
        if scalar && walk.at == walk.bytes.len() && !complete_at_end {
            // A number or a literal may go on.
            return Err(Stop::Eof);
        }
        ParsedIncident::not_object()
    };
    Ok((incident, walk.at))
}

struct Walk<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

/// The index of the first byte from `at` that ends or escapes a string, or is a control
/// character (eight bytes at a time); the length when there is none.
fn string_stop(bytes: &[u8], at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut at = at;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let found = has_zero(x ^ (ONES * u64::from(b'"')))
            | has_zero(x ^ (ONES * u64::from(b'\\')))
            | has_zero(x & (ONES * 0xE0));
        if found != 0 {
            break;
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if b < 0x20 || b == b'"' || b == b'\\' {
            return at;
        }
        at += 1;
    }
    at
}

impl<'a> Walk<'a> {
    fn peek(&self) -> Step<u8> {
        self.bytes.get(self.at).copied().ok_or(Stop::Eof)
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn bad<T>(&self, what: &'static str) -> Step<T> {
        Err(Stop::Bad(what, self.at))
    }

    fn enter(&self, level: u32) -> Step<()> {
        if level >= LEVEL_LIMIT {
            self.bad("recursion limit exceeded")
        } else {
            Ok(())
        }
    }

    /// The string at `at` (its opening quote): the span of its content and whether it has an
    /// escape sequence.
    fn string(&mut self) -> Step<(usize, usize, bool)> {
        let start = self.at + 1;
        let mut at = start;
        let mut escaped = false;
        loop {
            at = string_stop(self.bytes, at);
            match self.bytes.get(at) {
                None => return Err(Stop::Eof),
                Some(b'"') => {
                    self.at = at + 1;
                    return Ok((start, at, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    at = self.escape(at + 1)?;
                }
                Some(_) => {
                    self.at = at;
                    return self
                        .bad("control character (\\u0000-\\u001F) found while parsing a string");
                }
            }
        }
    }

    /// The escape sequence after a backslash at `at`; returns where it ends.
    fn escape(&mut self, at: usize) -> Step<usize> {
        match self.bytes.get(at) {
            None => Err(Stop::Eof),
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 1),
            Some(b'u') => {
                let (n, at) = self.hex(at + 1)?;
                if (0xDC00..=0xDFFF).contains(&n) {
                    self.at = at;
                    return self.bad("lone leading surrogate in hex escape");
                }
                if !(0xD800..=0xDBFF).contains(&n) {
                    return Ok(at);
                }
                // A leading surrogate: a trailing one must follow.
                match (self.bytes.get(at), self.bytes.get(at + 1)) {
                    (None, _) | (Some(b'\\'), None) => return Err(Stop::Eof),
                    (Some(b'\\'), Some(b'u')) => {}
                    _ => {
                        self.at = at;
                        return self.bad("unexpected end of hex escape");
                    }
                }
                let (n2, end) = self.hex(at + 2)?;
                if (0xDC00..=0xDFFF).contains(&n2) {
                    Ok(end)
                } else {
                    self.at = end;
                    self.bad("lone leading surrogate in hex escape")
                }
            }
            Some(_) => {
                self.at = at;
                self.bad("invalid escape")
            }
        }
    }

    /// Four hex digits at `at`.
    fn hex(&mut self, at: usize) -> Step<(u16, usize)> {
        let Some(digits) = self.bytes.get(at..at + 4) else {
            return Err(Stop::Eof);
        };
        let mut n = 0u16;
        for &digit in digits {
            let value = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                b'A'..=b'F' => digit - b'A' + 10,
                _ => {
                    self.at = at;
                    return self.bad("invalid escape");
                }
            };
            n = (n << 4) | u16::from(value);
        }
        Ok((n, at + 4))
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
        self.at - start
    }

    /// The number at `at`: its span. One that reaches the end of the text may go on: what
    /// follows it (a container's `,` or end) says so.
    fn number(&mut self) -> Step<(usize, usize)> {
        let start = self.at;
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let integer = match self.peek()? {
            b'0' => {
                self.at += 1;
                if let Some(b'0'..=b'9') = self.bytes.get(self.at) {
                    return self.bad("invalid number");
                }
                1
            }
            b'1'..=b'9' => self.digits(),
            _ => return self.bad("invalid number"),
        };
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                self.peek()?;
                return self.bad("invalid number");
            }
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            exponent = true;
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            if self.digits() == 0 {
                self.peek()?;
                return self.bad("invalid number");
            }
        }
        // Only these can be out of range; serde_json decides as it would in a page.
        if (exponent || integer > 300)
            && serde_json::from_str::<serde_json::Value>(&self.text[start..self.at]).is_err()
        {
            self.at = start;
            return self.bad("number out of range");
        }
        Ok((start, self.at))
    }

    fn literal(&mut self, word: &[u8]) -> Step<()> {
        for &expected in word {
            match self.bytes.get(self.at) {
                None => return Err(Stop::Eof),
                Some(&b) if b == expected => self.at += 1,
                Some(_) => return self.bad("expected ident"),
            }
        }
        Ok(())
    }

    /// After a member or an element: `,` (not followed by `close`) or `close`; returns whether
    /// the container goes on.
    fn next(&mut self, close: u8) -> Step<bool> {
        self.space();
        match self.peek()? {
            b',' => {
                self.at += 1;
                self.space();
                if self.peek()? == close {
                    return self.bad("trailing comma");
                }
                Ok(true)
            }
            b if b == close => {
                self.at += 1;
                Ok(false)
            }
            _ if close == b'}' => self.bad("expected `,` or `}`"),
            _ => self.bad("expected `,` or `]`"),
        }
    }

    /// A key and its colon: the key's text (decoded only when it has an escape sequence).
    fn key(&mut self) -> Step<Cow<'a, str>> {
        self.space();
        if self.peek()? != b'"' {
            return self.bad("key must be a string");
        }
        let quote = self.at;
        let (start, end, escaped) = self.string()?;
        let key = if escaped {
            Cow::Owned(self.decode(quote)?)
        } else {
            Cow::Borrowed(&self.text[start..end])
        };
        self.space();
        if self.peek()? != b':' {
            return self.bad("expected `:`");
        }
        self.at += 1;
        Ok(key)
    }

    /// The string (already checked) whose opening quote is at `quote`, decoded.
    fn decode(&self, quote: usize) -> Step<String> {
        serde_json::from_str(&self.text[quote..self.at]).or(Err(Stop::Bad("invalid string", quote)))
    }

    /// Skips one value, a container at `level`.
    fn skip(&mut self, level: u32) -> Step<()> {
        self.space();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                self.enter(level)?;
                self.at += 1;
                self.space();
                if self.peek()? == b'}' {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.space();
                    if self.peek()? != b'"' {
                        return self.bad("key must be a string");
                    }
                    self.string()?;
                    self.space();
                    if self.peek()? != b':' {
                        return self.bad("expected `:`");
                    }
                    self.at += 1;
                    self.skip(level + 1)?;
                    if !self.next(b'}')? {
                        return Ok(());
                    }
                }
            }
            b'[' => {
                self.enter(level)?;
                self.at += 1;
                self.space();
                if self.peek()? == b']' {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.skip(level + 1)?;
                    if !self.next(b']')? {
                        return Ok(());
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => self.bad("expected value"),
        }
    }

    /// A value the rows read, a container at `level`.
    fn cell(&mut self, level: u32, incident: &mut Captures<'a, '_>) -> Step<Cell<'a>> {
        self.space();
        let start = self.at;
        Ok(match self.peek()? {
            b'"' => match self.string()? {
                (start, end, false) => Cell::Str(Cow::Borrowed(&self.text[start..end])),
                (_, _, true) => Cell::Str(Cow::Owned(self.decode(start)?)),
            },
            b'-' | b'0'..=b'9' => {
                let (start, end) = self.number()?;
                match serde_json::from_str(&self.text[start..end]) {
                    Ok(serde_json::Value::Number(n)) => Cell::Num(n),
                    _ => return Err(Stop::Bad("invalid number", start)),
                }
            }
            b't' => {
                self.literal(b"true")?;
                Cell::Bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                Cell::Bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                Cell::Null
            }
            b'{' | b'[' => {
                self.skip(level)?;
                // Written the way a `Value` of it would be serialized, from its exact text.
                let mut de = serde_json::Deserializer::from_str(&self.text[start..self.at]);
                Transcode {
                    out: incident.scratch,
                    level,
                    scalars: false,
                    keys: incident.keys,
                    duplicate: incident.duplicate,
                    role: Role::Plain,
                }
                .deserialize(&mut de)
                .or(Err(Stop::Bad("invalid value", start)))?
            }
            _ => return self.bad("expected value"),
        })
    }

    /// The members of an object (its `{` at `at`) at `level`: each key's slot in `keys`, and
    /// `member` called with it.
    fn members<const N: usize>(
        &mut self,
        level: u32,
        keys: &Keys<N>,
        mut member: impl FnMut(&mut Self, Option<usize>, &str) -> Step<()>,
    ) -> Step<()> {
        self.enter(level)?;
        self.at += 1;
        self.space();
        if self.peek()? == b'}' {
            self.at += 1;
            return Ok(());
        }
        loop {
            let key = self.key()?;
            member(self, keys.find(&key), &key)?;
            if !self.next(b'}')? {
                return Ok(());
            }
        }
    }

    fn incident(&mut self) -> Step<ParsedIncident<'a>> {
        let mut incident = ParsedIncident::not_object();
        incident.object = true;
        let mut cells: [Cell<'a>; 18] = Default::default();
        let mut alerts = Alerts::Absent;
        let mut keys = Vec::new();
        let mut captures = Captures {
            scratch: &mut incident.scratch,
            keys: &mut keys,
            duplicate: &mut incident.duplicate,
        };
        let level = INCIDENT_LEVEL + 1;
        self.members(INCIDENT_LEVEL, &INCIDENT_KEYS, |walk, slot, key| {
            match slot {
                Some(i) => cells[i] = walk.cell(level, &mut captures)?,
                None if key == "alerts" => alerts = walk.alerts(level, &mut captures)?,
                None => walk.skip(level)?,
            }
            Ok(())
        })?;
        incident.cells = cells;
        incident.alerts = alerts;
        Ok(incident)
    }

    fn alerts(&mut self, level: u32, captures: &mut Captures<'a, '_>) -> Step<Alerts<'a>> {
        self.space();
        match self.peek()? {
            b'n' => {
                self.literal(b"null")?;
                Ok(Alerts::Null)
            }
            b'[' => {
                self.enter(level)?;
                self.at += 1;
                let mut alerts = Vec::with_capacity(8);
                self.space();
                if self.peek()? == b']' {
                    self.at += 1;
                    return Ok(Alerts::List(alerts));
                }
                loop {
                    self.space();
                    if self.peek()? == b'{' {
                        alerts.push(self.alert(level + 1, captures)?);
                    } else {
                        self.skip(level + 1)?;
                        alerts.push(ParsedAlert::not_object());
                    }
                    if !self.next(b']')? {
                        return Ok(Alerts::List(alerts));
                    }
                }
            }
            _ => {
                self.skip(level)?;
                Ok(Alerts::NotList)
            }
        }
    }

    fn alert(&mut self, level: u32, captures: &mut Captures<'a, '_>) -> Step<ParsedAlert<'a>> {
        let mut alert = ParsedAlert::not_object();
        alert.object = true;
        self.members(level, &ALERT_KEYS, |walk, slot, _| {
            match slot {
                Some(i) => alert.cells[i] = walk.cell(level + 1, captures)?,
                None => walk.skip(level + 1)?,
            }
            Ok(())
        })?;
        Ok(alert)
    }
}

/// Where the lists and objects among the cells are written.
struct Captures<'a, 's> {
    scratch: &'s mut String,
    keys: &'s mut Vec<Cow<'a, str>>,
    duplicate: &'s mut bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Rng;
    use serde_json::Value;

    /// Whether the walk takes `text` as one whole value (the page goes on after it).
    fn walked_whole(text: &str) -> bool {
        let text = format!("{text} ");
        match incident(&text, false) {
            Ok((_, used)) => text[used..]
                .trim_matches([' ', '\n', '\t', '\r'])
                .is_empty(),
            Err(_) => false,
        }
    }

    const NASTY: &[&str] = &[
        "\"",
        "\\",
        "\\u",
        "\\ud800",
        "\\udc00",
        "\\ud800\\udc00",
        "\\ud83d\\ude00",
        "\\uD83D",
        "\\uDE00",
        "\\u00e9",
        "\\uZZZZ",
        "\\x",
        "\\/",
        "\u{1}",
        "\u{1f}",
        "\u{7f}",
        "é",
        "1",
        "0",
        "-",
        "+",
        ".",
        "e",
        "E",
        "1e400",
        "-0",
        "01",
        "1.",
        ".5",
        "1e",
        "1e+",
        "true",
        "tru",
        "null",
        "nul",
        "false",
        ",",
        ":",
        "{",
        "}",
        "[",
        "]",
        " ",
        "\n",
        "\t",
        "\r",
        "\u{2028}",
        "12345678901234567890",
        "1e-400",
        "0e99999999999",
    ];

    #[test]
    fn the_walk_accepts_and_refuses_what_a_value_parse_does() {
        let mut rng = Rng::new(7);
        let (mut checked, mut accepted, mut cut) = (0, 0, 0);
        let seeds = [
            r#"{"incidentId":1,"alerts":[{"alertId":"a","title":"x","mitreTechniques":["T1"]}],"tags":["a"],"n":-1.5e3}"#,
            r#"{"id":"7","a":[1,2.5,-0,true,false,null,{"k":"v"},[]],"s":"é\u00e9\ud83d\ude00\n","alerts":null}"#,
            r#"[1,{"a":"b"}]"#,
            r#""just text""#,
            r#"12.5e-3"#,
        ];
        for _ in 0..40_000 {
            let mut text = seeds[rng.below(seeds.len() as u64) as usize].to_string();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(text.len() as u64 + 1) as usize;
                let at = (0..=at)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                match rng.below(3) {
                    0 => text.insert_str(at, NASTY[rng.below(NASTY.len() as u64) as usize]),
                    1 => text.truncate(at),
                    _ => {
                        let end = (at + 1 + rng.below(3) as usize).min(text.len());
                        if let Some(end) = (end..=text.len()).find(|&i| text.is_char_boundary(i)) {
                            text.replace_range(at..end, "");
                        }
                    }
                }
            }
            let expected = serde_json::from_str::<Value>(&text);
            assert_eq!(
                walked_whole(&text),
                expected.is_ok(),
                "{text:?}: {expected:?}"
            );
            accepted += usize::from(expected.is_ok());
            cut += usize::from(expected.as_ref().is_err_and(serde_json::Error::is_eof));
            // Text a value parse finds cut short is cut short to the walk too, so that a window
            // ending there reads on instead of refusing the page.
            if expected.as_ref().is_err_and(serde_json::Error::is_eof) {
                assert_eq!(incident(&text, false).err(), Some(Stop::Eof), "{text:?}");
            }
            checked += 1;
        }
        assert_eq!(checked, 40_000);
        // Both outcomes are well represented.
        assert!(
            accepted > 5_000 && cut > 5_000,
            "{accepted} accepted, {cut} cut short"
        );
    }

    #[test]
    fn deep_nesting_is_refused_where_a_page_refuses_it() {
        let nested =
            |levels: usize| format!("{{\"x\":{}{}}}", "[".repeat(levels), "]".repeat(levels));
        for levels in 120..130 {
            let text = nested(levels);
            let page = format!("{{\"value\":[{text}]}}");
            assert_eq!(
                walked_whole(&text),
                serde_json::from_str::<Value>(&page).is_ok(),
                "{levels}"
            );
        }
    }

    #[test]
    fn a_number_or_literal_at_the_end_is_whole_only_when_the_body_ended_cleanly() {
        for text in ["5", "-12.5e3", "true", "null"] {
            assert_eq!(incident(text, false).err(), Some(Stop::Eof), "{text}");
            let (parsed, used) = incident(text, true).unwrap();
            assert!(!parsed.object);
            assert_eq!(used, text.len());
        }
        for text in ["-", "1.", "1e", "1e+", "tru", "\"ab"] {
            assert_eq!(incident(text, true).err(), Some(Stop::Eof), "{text}");
        }
        // Whatever follows a non-incident, it is refused as one.
        for text in ["5x", "truex", "5,", "\"s\"x"] {
            assert!(!incident(text, false).unwrap().0.object, "{text}");
        }
    }

    #[test]
    fn every_cut_of_an_incident_is_cut_short_to_the_walk() {
        let text = r#"{"incidentId":12,"n":-1.5e3,"s":"a\u00e9\ud83d\ude00\"","alerts":[{"alertId":"a","x":[true,false,null,{}]}],"tags":["t"]} "#;
        for end in (0..text.len() - 1).filter(|&end| text.is_char_boundary(end)) {
            assert_eq!(
                incident(&text[..end], false).err(),
                Some(Stop::Eof),
                "{}",
                &text[..end]
            );
        }
        assert!(incident(text, false).is_ok());
    }
}
