//! What a skill declares about itself (`describe()`), in the host's own serializable form.
//!
//! [`SkillInfo`] is what a guest's `describe()` returned, converted from whichever contract
//! version it was built against; [`SkillManifest`] is what the host accepted of it. The manifest
//! is read once per component build and cached beside its compiled artifact, so listing skills or
//! validating input never needs to instantiate a component.
//!
//! Threat: `describe()` is answered by untrusted code, and its answer is held, cached, printed
//! and searched by the host outside any sandbox budget. An answer with 150,000 parameters used to
//! cost 25 s of host CPU in a quadratic duplicate check; a megabyte-long id or description would
//! be copied into every listing. [`SkillManifest::from_guest`] therefore checks the counts first
//! (before touching any element), then every length in one pass, then duplicates with a hash set:
//! the work is linear in the answer and refused answers stop at the first broken cap. The caps
//! are the `MAX_*` constants below, documented in this one place; each refusal is one line naming
//! the cap.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest skill id, in bytes (ids are also limited to `a-z`, `0-9`, `_` and `-`).
pub const MAX_ID_BYTES: usize = 128;
/// The longest human-readable name of a skill, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The longest version string of a skill, in bytes.
pub const MAX_VERSION_BYTES: usize = 64;
/// The longest description, in bytes: the skill's, each parameter's, and the output's.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;
/// The most parameters a skill may declare.
pub const MAX_PARAMETERS: usize = 256;
/// The most allowed values one parameter may list.
pub const MAX_ALLOWED_VALUES: usize = 256;
/// The most dataset columns a skill may declare.
pub const MAX_COLUMNS: usize = 512;
/// The most connection services a skill may declare.
pub const MAX_SERVICES: usize = 64;
/// The longest parameter name, allowed value, column name or service name, in bytes.
pub const MAX_ITEM_BYTES: usize = 256;
/// The longest default value of a parameter, as JSON text, in bytes.
pub const MAX_DEFAULT_BYTES: usize = 4096;
/// The most text a whole `describe()` answer may hold, all strings added up, in bytes. (Each
/// cap above allows more in total: 256 parameters of 256 allowed values of 256 bytes would be
/// 16 MiB; this bounds what is cached and printed.)
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// The type of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    /// A JSON string.
    Text,
    /// A JSON integer.
    Integer,
    /// A JSON boolean.
    Boolean,
    /// An RFC 3339 timestamp in a JSON string.
    Timestamp,
}

impl ParamKind {
    /// How the kind is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            ParamKind::Text => "a string",
            ParamKind::Integer => "an integer",
            ParamKind::Boolean => "true or false",
            ParamKind::Timestamp => "an RFC 3339 timestamp such as 2026-11-26T08:00:00Z",
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamManifest {
    /// The key in the input object.
    pub name: String,
    /// What it means.
    pub description: String,
    /// Its type.
    pub kind: ParamKind,
    /// Whether the caller must supply it.
    pub required: bool,
    /// The value used when it is omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// For text: the only values accepted (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_values: Vec<String>,
    /// For integers: the smallest value accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<i64>,
    /// For integers: the largest value accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<i64>,
}

/// Whether a skill returns one object or streams rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// `invoke` returns the result object.
    Object,
    /// Rows leave through `emit`; `invoke` returns a summary.
    Dataset,
}

/// One parameter as a guest declared it (the default still JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// The key in the input object.
    pub name: String,
    /// What it means.
    pub description: String,
    /// Its type.
    pub kind: ParamKind,
    /// Whether the caller must supply it.
    pub required: bool,
    /// The default as JSON text.
    pub default_value: Option<String>,
    /// For text: the only values accepted.
    pub allowed_values: Vec<String>,
    /// For integers: the smallest value accepted.
    pub minimum: Option<i64>,
    /// For integers: the largest value accepted.
    pub maximum: Option<i64>,
}

/// What a guest's `describe()` returned, before the host vetted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillInfo {
    /// The ID it is invoked by.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The skill's version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// The parameters it accepts.
    pub parameters: Vec<ParamSpec>,
    /// The connection services it calls.
    pub services: Vec<String>,
    /// Object or dataset.
    pub output: OutputKind,
    /// Dataset columns, in order.
    pub columns: Vec<String>,
    /// What the output holds.
    pub output_description: String,
}

/// Everything a skill declares about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillManifest {
    /// The ID it is invoked by.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The skill's version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// The parameters it accepts.
    pub parameters: Vec<ParamManifest>,
    /// The connection services it calls.
    pub services: Vec<String>,
    /// Object or dataset.
    pub output: OutputKind,
    /// Dataset columns, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// What the output holds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output_description: String,
}

impl SkillManifest {
    /// Converts a guest's `describe()` answer, refusing what the host could not honour and
    /// anything over the caps (`MAX_*` in this module), with one line naming the broken rule.
    ///
    /// Linear in the size of the answer: counts are checked before any element is looked at,
    /// and duplicate parameter names are found with a hash set.
    pub fn from_guest(info: SkillInfo) -> Result<Self, String> {
        check_caps(&info)?;
        if !is_valid_id(&info.id) {
            return Err(format!(
                "describe() returned the id {:?}; an id is 1-128 characters of a-z, 0-9, `_` and `-`",
                info.id
            ));
        }
        let mut seen = HashSet::with_capacity(info.parameters.len());
        for p in &info.parameters {
            if !seen.insert(p.name.as_str()) {
                return Err(format!("describe() declares parameter `{}` twice", p.name));
            }
        }
        let mut parameters = Vec::with_capacity(info.parameters.len());
        for p in info.parameters {
            let default = match &p.default_value {
                None => None,
                Some(text) => Some(serde_json::from_str(text).map_err(|e| {
                    format!(
                        "describe() gave parameter `{}` a default that is not JSON ({e}): {text}",
                        p.name
                    )
                })?),
            };
            parameters.push(ParamManifest {
                name: p.name,
                description: p.description,
                kind: p.kind,
                required: p.required,
                default,
                allowed_values: p.allowed_values,
                minimum: p.minimum,
                maximum: p.maximum,
            });
        }
        Ok(SkillManifest {
            id: info.id,
            name: info.name,
            version: info.version,
            description: info.description,
            parameters,
            services: info.services,
            output: info.output,
            columns: info.columns,
            output_description: info.output_description,
        })
    }

    /// The parameter called `name`, if declared.
    pub fn parameter(&self, name: &str) -> Option<&ParamManifest> {
        self.parameters.iter().find(|p| p.name == name)
    }
}

/// Every cap of this module, cheapest first: counts (no element is looked at before they pass),
/// then each string's length in one pass, adding up the total as it goes.
fn check_caps(info: &SkillInfo) -> Result<(), String> {
    count("parameters", info.parameters.len(), MAX_PARAMETERS)?;
    count("columns", info.columns.len(), MAX_COLUMNS)?;
    count("services", info.services.len(), MAX_SERVICES)?;
    let mut total = Total(0);
    total.add(length("returned an id", &info.id, MAX_ID_BYTES)?)?;
    total.add(length("returned a name", &info.name, MAX_NAME_BYTES)?)?;
    total.add(length(
        "returned a version",
        &info.version,
        MAX_VERSION_BYTES,
    )?)?;
    total.add(length(
        "returned a description",
        &info.description,
        MAX_DESCRIPTION_BYTES,
    )?)?;
    total.add(length(
        "returned an output description",
        &info.output_description,
        MAX_DESCRIPTION_BYTES,
    )?)?;
    for service in &info.services {
        total.add(length("declares a service name", service, MAX_ITEM_BYTES)?)?;
    }
    for column in &info.columns {
        total.add(length("declares a column name", column, MAX_ITEM_BYTES)?)?;
    }
    for p in &info.parameters {
        if p.name.is_empty() {
            return Err("describe() declares a parameter with an empty name".to_string());
        }
        total.add(length(
            "declares a parameter name",
            &p.name,
            MAX_ITEM_BYTES,
        )?)?;
        // The name is short enough to be quoted from here on.
        let name = &p.name;
        total.add(length(
            &format!("gave parameter `{name}` a description"),
            &p.description,
            MAX_DESCRIPTION_BYTES,
        )?)?;
        if let Some(default) = &p.default_value {
            total.add(length(
                &format!("gave parameter `{name}` a default"),
                default,
                MAX_DEFAULT_BYTES,
            )?)?;
        }
        if p.allowed_values.len() > MAX_ALLOWED_VALUES {
            return Err(format!(
                "describe() gave parameter `{name}` {} allowed values; at most {MAX_ALLOWED_VALUES} are allowed",
                p.allowed_values.len()
            ));
        }
        for value in &p.allowed_values {
            total.add(length(
                &format!("gave parameter `{name}` an allowed value"),
                value,
                MAX_ITEM_BYTES,
            )?)?;
        }
    }
    Ok(())
}

/// `describe() declares N WHAT; at most MAX are allowed` when `n` is over `max`.
fn count(what: &str, n: usize, max: usize) -> Result<(), String> {
    if n > max {
        return Err(format!(
            "describe() declares {n} {what}; at most {max} are allowed"
        ));
    }
    Ok(())
}

/// The length of `text`, or `describe() SUBJECT of N bytes; at most MAX are allowed`.
fn length(subject: &str, text: &str, max: usize) -> Result<usize, String> {
    if text.len() > max {
        return Err(format!(
            "describe() {subject} of {} bytes; at most {max} are allowed",
            text.len()
        ));
    }
    Ok(text.len())
}

/// The bytes of text of a whole answer, against [`MAX_MANIFEST_BYTES`].
struct Total(usize);

impl Total {
    fn add(&mut self, n: usize) -> Result<(), String> {
        self.0 = self.0.saturating_add(n);
        if self.0 > MAX_MANIFEST_BYTES {
            return Err(format!(
                "describe() returned more than {MAX_MANIFEST_BYTES} bytes of text in all, the most a skill may declare"
            ));
        }
        Ok(())
    }
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str) -> ParamSpec {
        ParamSpec {
            name: name.to_string(),
            description: String::new(),
            kind: ParamKind::Text,
            required: false,
            default_value: None,
            allowed_values: Vec::new(),
            minimum: None,
            maximum: None,
        }
    }

    fn info() -> SkillInfo {
        SkillInfo {
            id: "probe".to_string(),
            name: "Probe".to_string(),
            version: "1.0.0".to_string(),
            description: "A skill.".to_string(),
            parameters: vec![param("a"), param("b")],
            services: vec!["defender".to_string()],
            output: OutputKind::Dataset,
            columns: vec!["one".to_string(), "two".to_string()],
            output_description: String::new(),
        }
    }

    /// A change to a valid answer.
    type Change = fn(&mut SkillInfo);

    fn refusal(info: SkillInfo) -> String {
        SkillManifest::from_guest(info).expect_err("refused")
    }

    #[test]
    fn an_answer_within_every_cap_is_accepted() {
        let manifest = SkillManifest::from_guest(info()).expect("accepted");
        assert_eq!(manifest.id, "probe");
        assert_eq!(manifest.parameters.len(), 2);
    }

    #[test]
    fn an_answer_at_every_count_cap_is_accepted() {
        let mut at_caps = info();
        at_caps.parameters = (0..MAX_PARAMETERS)
            .map(|i| param(&format!("p{i}")))
            .collect();
        at_caps.parameters[0].allowed_values =
            (0..MAX_ALLOWED_VALUES).map(|i| i.to_string()).collect();
        at_caps.columns = (0..MAX_COLUMNS).map(|i| format!("c{i}")).collect();
        at_caps.services = (0..MAX_SERVICES).map(|i| format!("s{i}")).collect();
        at_caps.id = "x".repeat(MAX_ID_BYTES);
        at_caps.description = "d".repeat(MAX_DESCRIPTION_BYTES);
        assert!(SkillManifest::from_guest(at_caps).is_ok());
    }

    #[test]
    fn one_hundred_fifty_thousand_parameters_are_refused_by_count_before_any_is_looked_at() {
        let mut flood = info();
        // Every name the same: a check that compared names before counting them would report a
        // duplicate (after quadratic work); the count comes first.
        flood.parameters = vec![param("same"); 150_000];
        assert_eq!(
            refusal(flood),
            "describe() declares 150000 parameters; at most 256 are allowed"
        );
    }

    #[test]
    fn every_count_cap_is_named_in_its_refusal() {
        let mut columns = info();
        columns.columns = vec![String::from("c"); MAX_COLUMNS + 1];
        assert_eq!(
            refusal(columns),
            "describe() declares 513 columns; at most 512 are allowed"
        );
        let mut services = info();
        services.services = vec![String::from("s"); MAX_SERVICES + 1];
        assert_eq!(
            refusal(services),
            "describe() declares 65 services; at most 64 are allowed"
        );
        let mut values = info();
        values.parameters[1].allowed_values = vec![String::from("v"); MAX_ALLOWED_VALUES + 1];
        assert_eq!(
            refusal(values),
            "describe() gave parameter `b` 257 allowed values; at most 256 are allowed"
        );
    }

    #[test]
    fn every_length_cap_is_named_in_its_refusal() {
        let cases: [(Change, &str); 11] = [
            (
                |i| i.id = "x".repeat(129),
                "describe() returned an id of 129 bytes; at most 128 are allowed",
            ),
            (
                |i| i.name = "x".repeat(257),
                "describe() returned a name of 257 bytes; at most 256 are allowed",
            ),
            (
                |i| i.version = "1".repeat(65),
                "describe() returned a version of 65 bytes; at most 64 are allowed",
            ),
            (
                |i| i.description = "x".repeat(4097),
                "describe() returned a description of 4097 bytes; at most 4096 are allowed",
            ),
            (
                |i| i.output_description = "x".repeat(4097),
                "describe() returned an output description of 4097 bytes; at most 4096 are allowed",
            ),
            (
                |i| i.services[0] = "x".repeat(257),
                "describe() declares a service name of 257 bytes; at most 256 are allowed",
            ),
            (
                |i| i.columns[1] = "x".repeat(257),
                "describe() declares a column name of 257 bytes; at most 256 are allowed",
            ),
            (
                |i| i.parameters[0].name = "x".repeat(257),
                "describe() declares a parameter name of 257 bytes; at most 256 are allowed",
            ),
            (
                |i| i.parameters[0].description = "x".repeat(4097),
                "describe() gave parameter `a` a description of 4097 bytes; at most 4096 are allowed",
            ),
            (
                |i| i.parameters[1].default_value = Some(format!("\"{}\"", "x".repeat(4095))),
                "describe() gave parameter `b` a default of 4097 bytes; at most 4096 are allowed",
            ),
            (
                |i| i.parameters[1].allowed_values = vec!["x".repeat(257)],
                "describe() gave parameter `b` an allowed value of 257 bytes; at most 256 are allowed",
            ),
        ];
        for (change, expected) in cases {
            let mut answer = info();
            change(&mut answer);
            assert_eq!(refusal(answer), expected);
        }
    }

    #[test]
    fn the_total_text_of_an_answer_is_capped() {
        let mut big = info();
        // 256 parameters of 256 allowed values of 200 bytes: every per-item cap is kept, the
        // total (about 13 MB) is not.
        big.parameters = (0..MAX_PARAMETERS)
            .map(|i| {
                let mut p = param(&format!("p{i}"));
                p.allowed_values = vec!["v".repeat(200); MAX_ALLOWED_VALUES];
                p
            })
            .collect();
        assert_eq!(
            refusal(big),
            "describe() returned more than 1048576 bytes of text in all, the most a skill may declare"
        );
    }

    #[test]
    fn duplicate_and_empty_parameter_names_are_refused() {
        let mut twice = info();
        twice.parameters.push(param("a"));
        assert_eq!(refusal(twice), "describe() declares parameter `a` twice");
        let mut empty = info();
        empty.parameters[1].name = String::new();
        assert_eq!(
            refusal(empty),
            "describe() declares a parameter with an empty name"
        );
    }

    #[test]
    fn the_duplicate_check_over_the_most_parameters_allowed_finds_the_last_one() {
        let mut last = info();
        last.parameters = (0..MAX_PARAMETERS - 1)
            .map(|i| param(&format!("p{i}")))
            .collect();
        last.parameters.push(param("p0"));
        assert_eq!(refusal(last), "describe() declares parameter `p0` twice");
    }
}
