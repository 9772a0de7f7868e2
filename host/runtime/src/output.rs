//! A run's result: the JSON text `invoke` returned, checked by the host without building a tree.
//!
//! Threat: a skill's result is guest-controlled text up to the output cap. Expanded into a
//! `serde_json::Value`, each of its values costs the host tens of bytes however few it took in
//! the text (the CLI's peak RSS for an 18.5 MB list of incidents was 194 MB with the tree, 82 MB
//! without), and a host serving many tenants would hold those trees side by side. Here the text is parsed once by serde_json, which keeps
//! nothing but a count of the values (stopped past a cap) and whether an object repeats a key
//! ([`Output::check`]); the text is kept as it is. Whoever reads it later parses it once,
//! straight into the form it writes ([`Output::compact`], [`Output::write_pretty`]) or into a
//! tree ([`Output::into_value`]), so what reaches a reader is byte for byte what serializing the
//! tree of one parse would give, numbers included (a number's text parsed twice can move by one
//! step of a float). A result that repeats a key in one object is held as its tree (the last
//! value at the first key's place), as before, so that every reader sees the same object.

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::io::Write;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::ser::PrettyFormatter;

/// A checked result: JSON that serde_json parses.
#[derive(Debug, Clone, PartialEq)]
pub struct Output(Form);

#[derive(Debug, Clone, PartialEq)]
enum Form {
    /// The guest's text, no object of which repeats a key.
    Text(String),
    /// A result whose text repeats a key in an object, or one the host built.
    Tree(Value),
}

/// Why a result was refused.
#[derive(Debug)]
pub enum Refused {
    /// It holds more JSON values than the cap given to [`Output::check`].
    TooManyValues,
    /// It is not JSON: serde_json's error, with its position.
    NotJson(serde_json::Error),
}

impl Output {
    /// Checks `json`: serde_json must parse it, and it must hold at most `max_values` values
    /// (objects, arrays and scalars; keys are not counted).
    pub fn check(json: String, max_values: usize) -> Result<Output, Refused> {
        let mut scan = Scan {
            values: 0,
            max_values,
            over: false,
            repeated: false,
            hasher: RandomState::new(),
        };
        let mut parse = serde_json::Deserializer::from_str(&json);
        let scanned = (&mut scan)
            .deserialize(&mut parse)
            .and_then(|()| parse.end());
        match scanned {
            Err(_) if scan.over => Err(Refused::TooManyValues),
            Err(e) => Err(Refused::NotJson(e)),
            Ok(()) if scan.repeated => serde_json::from_str(&json)
                .map(|tree| Output(Form::Tree(tree)))
                .map_err(Refused::NotJson),
            Ok(()) => Ok(Output(Form::Text(json))),
        }
    }

    /// A result built by the host (such as a summary it added a note to).
    pub fn from_value(value: Value) -> Output {
        Output(Form::Tree(value))
    }

    /// The result as a tree (for a small result, such as a dataset's summary, or a reader that
    /// needs one).
    pub fn into_value(self) -> Result<Value, serde_json::Error> {
        match self.0 {
            Form::Text(text) => serde_json::from_str(&text),
            Form::Tree(tree) => Ok(tree),
        }
    }

    /// The result in serde_json's compact form (no whitespace between tokens).
    pub fn compact(&self) -> Result<Vec<u8>, serde_json::Error> {
        match &self.0 {
            Form::Text(text) => {
                let mut out = Vec::with_capacity(text.len());
                let mut parse = serde_json::Deserializer::from_str(text);
                serde_transcode::transcode(&mut parse, &mut serde_json::Serializer::new(&mut out))?;
                Ok(out)
            }
            Form::Tree(tree) => serde_json::to_vec(tree),
        }
    }

    /// Writes the result indented by two spaces, as `serde_json::to_writer_pretty` writes its
    /// tree. An error of `out` is returned as `out` gave it (its kind, and what it carries).
    pub fn write_pretty(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let text = match &self.0 {
            Form::Text(text) => text,
            Form::Tree(tree) => return serde_json::to_writer_pretty(out, tree).map_err(Into::into),
        };
        let mut kept = KeepError { out, error: None };
        let mut parse = serde_json::Deserializer::from_str(text);
        let written = serde_transcode::transcode(
            &mut parse,
            &mut serde_json::Serializer::with_formatter(&mut kept, PrettyFormatter::new()),
        );
        match (written, kept.error) {
            (Ok(()), _) => Ok(()),
            // serde_transcode passes errors on as text; the writer's own is the one that counts.
            (Err(_), Some(error)) => Err(error),
            (Err(e), None) => Err(e.into()),
        }
    }
}

/// A writer that keeps the first error of the one it wraps: serde_transcode hands errors on as
/// text, which would lose their kind (a closed pipe) and what they carry (the output cap).
struct KeepError<'a> {
    out: &'a mut dyn Write,
    error: Option<std::io::Error>,
}

impl KeepError<'_> {
    fn keep(&mut self, error: std::io::Error) -> std::io::Error {
        let kind = error.kind();
        self.error.get_or_insert(error);
        kind.into()
    }
}

impl Write for KeepError<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf).map_err(|e| self.keep(e))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out.write_all(buf).map_err(|e| self.keep(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush().map_err(|e| self.keep(e))
    }
}

/// The check's one pass: every value goes through serde_json's `deserialize_any` (as a tree's
/// parse does, so numbers out of `f64`'s range and lone surrogates are refused the same way),
/// nothing is kept but the count and whether a key repeats.
struct Scan {
    values: usize,
    max_values: usize,
    /// The count passed `max_values` (the parse was stopped).
    over: bool,
    /// An object repeats a key.
    repeated: bool,
    /// Hashes keys with a key of its own (a skill cannot aim at collisions).
    hasher: RandomState,
}

impl Scan {
    fn count<E: de::Error>(&mut self) -> Result<(), E> {
        self.values += 1;
        if self.values > self.max_values {
            self.over = true;
            return Err(E::custom("too many values"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for &mut Scan {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Scan {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.count()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.count()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.count()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.count()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.count()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.count()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.count()?;
        while seq.next_element_seed(&mut *self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.count()?;
        let mut keys = Keys::default();
        while let Some(key) = map.next_key_seed(KeyHash(&self.hasher))? {
            if !self.repeated && !keys.insert(key) {
                self.repeated = true;
            }
            map.next_value_seed(&mut *self)?;
        }
        Ok(())
    }
}

/// Hashes an object's key as serde_json gives it (unescaped), keeping nothing of it.
struct KeyHash<'a>(&'a RandomState);

impl<'de> DeserializeSeed<'de> for KeyHash<'_> {
    type Value = u64;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyHash<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<u64, E> {
        Ok(self.0.hash_one(key))
    }
}

/// The hashes of one object's keys seen so far: a list while there are few, a hash set beyond
/// (so that an object of a million keys costs a million lookups, not a million squared
/// comparisons). Two keys with one hash read as a repeat: the result is then held as its tree,
/// which is what the text would have printed anyway, so a collision costs memory, never bytes.
#[derive(Default)]
struct Keys {
    few: Vec<u64>,
    many: HashSet<u64>,
}

impl Keys {
    const FEW: usize = 16;

    /// Adds `key`; false if it was there.
    fn insert(&mut self, key: u64) -> bool {
        if self.many.is_empty() && self.few.len() < Self::FEW {
            if self.few.contains(&key) {
                return false;
            }
            self.few.push(key);
            return true;
        }
        if self.many.is_empty() {
            self.many.extend(self.few.drain(..));
        }
        self.many.insert(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Output {
        Output::check(text.to_string(), usize::MAX).unwrap()
    }

    /// Texts whose compact and pretty forms must equal what the tree of one parse serializes to.
    const TEXTS: &[&str] = &[
        r#"{}"#,
        r#"[]"#,
        r#"{"a":{},"b":[],"c":[{}],"d":[[]]}"#,
        " { \"incidents\" : [ { \"id\" : 1 , \"title\" : \"x\" } ] , \"count\" : 1 } ",
        r#"{"n":[0,-0,1.0,-1.5,1e5,1E-7,12345678901234567890,-9223372036854775808,1.7976931348623157e308,0.1]}"#,
        // Parsed twice (text, compact text, tree), this number comes back one step apart.
        r#"{"score":99439530718308437e-7}"#,
        r#"{"s":["\u00e9","é","\/","\"\\\b\f\n\r\t","\u001b[31m","\ud83d\ude00","\u2028"]}"#,
        r#"{"deep":[[[[{"a":[null,true,false]}]]]]}"#,
        r#""just a string""#,
        r#"42"#,
        // Repeated keys, the second spelled with an escape: held as the tree.
        r#"{"a":1,"b":{"x":1,"x":[2]},"\u0061":3}"#,
    ];

    #[test]
    fn a_checked_result_is_what_the_tree_of_one_parse_serializes_to_compact_and_pretty() {
        for text in TEXTS {
            let tree: Value = serde_json::from_str(text).unwrap();
            let output = check(text);
            assert_eq!(
                String::from_utf8(output.compact().unwrap()).unwrap(),
                serde_json::to_string(&tree).unwrap(),
                "{text}"
            );
            let mut pretty = Vec::new();
            output.write_pretty(&mut pretty).unwrap();
            assert_eq!(
                String::from_utf8(pretty).unwrap(),
                serde_json::to_string_pretty(&tree).unwrap(),
                "{text}"
            );
            assert_eq!(output.into_value().unwrap(), tree, "{text}");
        }
    }

    #[test]
    fn a_result_that_repeats_a_key_is_held_as_its_tree_and_one_that_does_not_as_its_text() {
        assert!(matches!(check(r#"{"a":1,"\u0061":2}"#).0, Form::Tree(_)));
        assert!(matches!(check(r#"[{"a":1},{"a":2}]"#).0, Form::Text(_)));
        let many: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
        let text = format!("{{{},\"k77\":0}}", many.join(","));
        assert!(matches!(check(&text).0, Form::Tree(_)));
        assert!(matches!(
            check(&format!("{{{}}}", many.join(","))).0,
            Form::Text(_)
        ));
    }

    #[test]
    fn a_result_that_is_not_json_is_refused_with_the_words_of_a_tree_parse() {
        for text in [
            r#"{"a":1"#,
            r#"{"a":1} x"#,
            r#"{"a":01}"#,
            r#"{"a":1e400}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":"\ud800"}"#,
            r#"{"a":tru}"#,
            "",
        ] {
            let tree = serde_json::from_str::<Value>(text).unwrap_err();
            match Output::check(text.to_string(), usize::MAX) {
                Err(Refused::NotJson(e)) => assert_eq!(e.to_string(), tree.to_string(), "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_result_nested_past_serde_jsons_depth_is_refused_as_a_tree_parse_refuses_it() {
        let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let tree = serde_json::from_str::<Value>(&text).unwrap_err();
        match Output::check(text, usize::MAX) {
            Err(Refused::NotJson(e)) => assert_eq!(e.to_string(), tree.to_string()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_result_of_more_values_than_the_cap_is_refused_as_such() {
        // An object, an array and three numbers: five values.
        let text = r#"{"a":[1,2,3]}"#;
        assert!(Output::check(text.to_string(), 5).is_ok());
        assert!(matches!(
            Output::check(text.to_string(), 4),
            Err(Refused::TooManyValues)
        ));
    }

    /// Fails every write with a broken pipe carrying `Marker`, once `room` bytes were taken.
    struct Closing {
        room: usize,
    }

    #[derive(Debug)]
    struct Marker;

    impl fmt::Display for Marker {
        fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("marker")
        }
    }

    impl std::error::Error for Marker {}

    impl Write for Closing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room < buf.len() {
                return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, Marker));
            }
            self.room -= buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_while_printing_pretty_is_returned_as_the_writer_gave_it() {
        let output = check(r#"{"incidents":[{"id":1},{"id":2},{"id":3}]}"#);
        let error = output.write_pretty(&mut Closing { room: 20 }).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
        assert!(
            error.get_ref().is_some_and(|e| e.is::<Marker>()),
            "{error:?}"
        );
    }
}
