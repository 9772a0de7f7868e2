//! What a skill declares about itself (`describe()`), in the host's own serializable form.
//!
//! [`SkillInfo`] is what a guest's `describe()` returned, converted from whichever contract
//! version it was built against; [`SkillManifest`] is what the host accepted of it. The manifest
//! is read once per component build and cached beside its compiled artifact, so listing skills or
//! validating input never needs to instantiate a component.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// Converts a guest's `describe()` answer, refusing what the host could not honour.
    pub fn from_guest(info: SkillInfo) -> Result<Self, String> {
        if !is_valid_id(&info.id) {
            return Err(format!(
                "describe() returned the id {:?}; an id is 1-128 characters of a-z, 0-9, `_` and `-`",
                info.id
            ));
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
            if parameters.iter().any(|q: &ParamManifest| q.name == p.name) {
                return Err(format!("describe() declares parameter `{}` twice", p.name));
            }
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

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}
