//! A run's result: the JSON text `invoke` returned, checked and re-written by the host without
//! building a tree.
//!
//! Threat: a skill's result is guest-controlled text up to the output cap. Expanded into a
//! `serde_json::Value`, each of its values costs the host tens of bytes however few it took in
//! the text (about ten times the text for a page of incidents), and a host serving many tenants
//! would hold those trees side by side. Here the text is parsed once by serde_json and written
//! straight back in its compact form ([`Output::check`]), so a result costs the host its size
//! about twice. Whatever reads it later parses serde_json's own output, which it cannot refuse;
//! what reaches a reader is byte for byte what serializing the parsed tree would write, except
//! that a key repeated in one object is kept each time (a tree keeps the last value).

use std::io::Write;

use serde_json::Value;
use serde_json::ser::PrettyFormatter;

/// A result's JSON text in serde_json's compact form (no whitespace between tokens, strings
/// escaped as serde_json escapes them, numbers as serde_json prints them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output(String);

impl Output {
    /// Parses `json` and re-writes it in compact form; the error is serde_json's, with its
    /// position.
    pub fn check(json: &str) -> Result<Output, serde_json::Error> {
        let mut compact = Vec::with_capacity(json.len());
        let mut parse = serde_json::Deserializer::from_str(json);
        serde_transcode::transcode(&mut parse, &mut serde_json::Serializer::new(&mut compact))?;
        parse.end()?;
        String::from_utf8(compact)
            .map(Output)
            .map_err(|_| serde::de::Error::custom("the re-written result is not UTF-8"))
    }

    /// The compact text of `value`.
    pub fn from_value(value: &Value) -> Result<Output, serde_json::Error> {
        serde_json::to_string(value).map(Output)
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The result as a tree (for a small result, such as a dataset's summary, or a reader that
    /// needs one).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// Writes the result indented by two spaces, as `serde_json::to_writer_pretty` writes its
    /// tree.
    pub fn write_pretty(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut parse = serde_json::Deserializer::from_str(&self.0);
        let mut pretty = serde_json::Serializer::with_formatter(out, PrettyFormatter::new());
        serde_transcode::transcode(&mut parse, &mut pretty).map_err(std::io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts whose compact and pretty forms must equal what a tree of them serializes to.
    const TEXTS: &[&str] = &[
        r#"{}"#,
        r#"[]"#,
        r#"{"a":{},"b":[],"c":[{}],"d":[[]]}"#,
        " { \"incidents\" : [ { \"id\" : 1 , \"title\" : \"x\" } ] , \"count\" : 1 } ",
        r#"{"n":[0,-0,1.0,-1.5,1e5,1E-7,12345678901234567890,-9223372036854775808,1.7976931348623157e308,0.1]}"#,
        r#"{"s":["\u00e9","é","\/","\"\\\b\f\n\r\t","\u001b[31m","\ud83d\ude00","\u2028"]}"#,
        r#"{"deep":[[[[{"a":[null,true,false]}]]]]}"#,
        r#""just a string""#,
        r#"42"#,
    ];

    #[test]
    fn a_checked_result_is_what_its_tree_serializes_to_compact_and_pretty() {
        for text in TEXTS {
            let tree: Value = serde_json::from_str(text).unwrap();
            let output = Output::check(text).unwrap();
            assert_eq!(
                output.as_str(),
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
            assert_eq!(output.to_value().unwrap(), tree, "{text}");
        }
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
            let checked = Output::check(text).unwrap_err();
            assert_eq!(checked.to_string(), tree.to_string(), "{text:?}");
        }
    }

    #[test]
    fn a_result_nested_past_serde_jsons_depth_is_refused_as_a_tree_parse_refuses_it() {
        let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let tree = serde_json::from_str::<Value>(&text).unwrap_err();
        assert_eq!(
            Output::check(&text).unwrap_err().to_string(),
            tree.to_string()
        );
    }

    #[test]
    fn a_key_repeated_in_one_object_is_kept_each_time() {
        let output = Output::check(r#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(output.as_str(), r#"{"a":1,"a":2}"#);
    }
}
