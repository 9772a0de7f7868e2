//! Typed reading of the input `invoke` receives.
//!
//! The host has already validated the input against the declared parameters (names, types,
//! allowed values, bounds) and applied the defaults, so a wrong type here means the skill reads
//! a parameter it did not declare as such: that is reported as a bug of the skill (`internal`).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::SkillError;

/// The validated input of one invocation: a JSON object keyed by parameter name.
#[derive(Debug, Clone, Default)]
pub struct Input {
    values: Map<String, Value>,
}

impl Input {
    /// Parses the JSON object `invoke` was given.
    pub fn parse(json: &str) -> Result<Self, SkillError> {
        match serde_json::from_str(json) {
            Ok(Value::Object(values)) => Ok(Input { values }),
            Ok(_) => Err(SkillError::Internal(
                "the input is not a JSON object".into(),
            )),
            Err(e) => Err(SkillError::Internal(format!("the input is not JSON: {e}"))),
        }
    }

    /// The whole input as a type of the skill's (a `#[derive(Deserialize)]` struct, say).
    pub fn deserialize<T: DeserializeOwned>(json: &str) -> Result<T, SkillError> {
        serde_json::from_str(json)
            .map_err(|e| SkillError::Internal(format!("the input does not fit the skill: {e}")))
    }

    /// The raw value of parameter `name`, if the caller gave one or it has a default.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values.get(name).filter(|v| !v.is_null())
    }

    /// A `text` or `timestamp` parameter, if present.
    pub fn text(&self, name: &str) -> Result<Option<&str>, SkillError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(name, "a string", other)),
        }
    }

    /// An `integer` parameter, if present.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, SkillError> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| wrong_type(name, "an integer", v)),
        }
    }

    /// A `boolean` parameter, if present.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, SkillError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(name, "a boolean", other)),
        }
    }

    /// A `text` parameter that must be present (declared required, or with a default).
    pub fn required_text(&self, name: &str) -> Result<&str, SkillError> {
        self.text(name)?.ok_or_else(|| missing(name))
    }

    /// An `integer` parameter that must be present (declared required, or with a default).
    pub fn required_integer(&self, name: &str) -> Result<i64, SkillError> {
        self.integer(name)?.ok_or_else(|| missing(name))
    }
}

fn wrong_type(name: &str, expected: &str, found: &Value) -> SkillError {
    SkillError::Internal(format!(
        "parameter `{name}` is {found} where the skill reads {expected}; declare it with the \
         matching kind in describe()"
    ))
}

fn missing(name: &str) -> SkillError {
    SkillError::Internal(format!(
        "parameter `{name}` is missing; declare it required or give it a default in describe()"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_kinds_read_as_their_types() {
        let input =
            Input::parse(r#"{"top": 5, "status": "active", "all": true, "x": null}"#).unwrap();
        assert_eq!(input.integer("top").unwrap(), Some(5));
        assert_eq!(input.required_text("status").unwrap(), "active");
        assert_eq!(input.boolean("all").unwrap(), Some(true));
        assert_eq!(input.text("x").unwrap(), None);
        assert_eq!(input.integer("absent").unwrap(), None);
    }

    #[test]
    fn a_parameter_read_as_another_kind_is_a_bug_of_the_skill() {
        let input = Input::parse(r#"{"top": "5"}"#).unwrap();
        assert!(
            matches!(input.integer("top"), Err(SkillError::Internal(m)) if m.starts_with("parameter `top` is \"5\" where the skill reads an integer"))
        );
        assert!(
            matches!(input.required_integer("limit"), Err(SkillError::Internal(m)) if m.starts_with("parameter `limit` is missing"))
        );
    }
}
