//! Validates a caller's input against a skill's declared parameters, before any instantiation.
//!
//! Threat: a guest must only ever see input of the shape it declared, so malformed or unexpected
//! values are refused here with a message naming the parameter and what it accepts; the component
//! is never instantiated for input that fails.

use serde_json::{Map, Value};

use skillhost_contract::manifest::{ParamKind, ParamManifest, SkillManifest};

/// Why the input was refused. Always names the parameter and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Builds the input object from `--input` JSON and `--param key=value` pairs (which win).
///
/// `--param` values are text; they are converted to the declared kind of the parameter, so
/// `--param duration=3` gives the integer 3.
pub fn merge_cli_input(
    manifest: &SkillManifest,
    input_json: Option<&str>,
    params: &[String],
) -> Result<Map<String, Value>, InputError> {
    let mut input = match input_json {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(InputError(
                    "--input must be a JSON object such as {\"duration\": 3}".to_string(),
                ));
            }
            Err(e) => return Err(InputError(format!("--input is not valid JSON: {e}"))),
        },
    };
    for pair in params {
        let Some((name, raw)) = pair.split_once('=') else {
            return Err(InputError(format!(
                "--param {pair:?} is not of the form name=value"
            )));
        };
        let spec = manifest
            .parameter(name)
            .ok_or_else(|| unknown_parameter(manifest, name))?;
        let value = match spec.kind {
            ParamKind::Text | ParamKind::Timestamp => Value::String(raw.to_string()),
            ParamKind::Integer => match raw.trim().parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => return Err(wrong_type(spec, raw)),
            },
            ParamKind::Boolean => match raw.trim() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(wrong_type(spec, raw)),
            },
        };
        input.insert(name.to_string(), value);
    }
    Ok(input)
}

/// Checks `input` against the manifest and returns it with defaults applied.
pub fn validate(
    manifest: &SkillManifest,
    mut input: Map<String, Value>,
) -> Result<Map<String, Value>, InputError> {
    if let Some(name) = input.keys().find(|k| manifest.parameter(k).is_none()) {
        return Err(unknown_parameter(manifest, name));
    }
    for spec in &manifest.parameters {
        match input.get(&spec.name) {
            None | Some(Value::Null) => {
                input.remove(&spec.name);
                if let Some(default) = &spec.default {
                    input.insert(spec.name.clone(), default.clone());
                } else if spec.required {
                    return Err(InputError(format!(
                        "missing required parameter `{}` ({}): pass --param {}=<value>",
                        spec.name,
                        spec.kind.describe(),
                        spec.name
                    )));
                }
            }
            Some(value) => check_value(spec, value)?,
        }
    }
    Ok(input)
}

fn check_value(spec: &ParamManifest, value: &Value) -> Result<(), InputError> {
    match spec.kind {
        ParamKind::Text => {
            let Some(text) = value.as_str() else {
                return Err(wrong_type(spec, &value.to_string()));
            };
            if !spec.allowed_values.is_empty() && !spec.allowed_values.iter().any(|a| a == text) {
                return Err(InputError(format!(
                    "parameter `{}` does not accept {text:?}; allowed values: {}",
                    spec.name,
                    spec.allowed_values.join(", ")
                )));
            }
        }
        ParamKind::Timestamp => {
            let Some(text) = value.as_str() else {
                return Err(wrong_type(spec, &value.to_string()));
            };
            if text.parse::<jiff::Timestamp>().is_err() {
                return Err(wrong_type(spec, text));
            }
        }
        ParamKind::Boolean => {
            if !value.is_boolean() {
                return Err(wrong_type(spec, &value.to_string()));
            }
        }
        ParamKind::Integer => {
            let Some(n) = value.as_i64() else {
                return Err(wrong_type(spec, &value.to_string()));
            };
            let below = spec.minimum.is_some_and(|min| n < min);
            let above = spec.maximum.is_some_and(|max| n > max);
            if below || above {
                return Err(InputError(format!(
                    "parameter `{}` is {n}, outside the allowed range {}",
                    spec.name,
                    describe_range(spec.minimum, spec.maximum)
                )));
            }
        }
    }
    Ok(())
}

fn describe_range(minimum: Option<i64>, maximum: Option<i64>) -> String {
    match (minimum, maximum) {
        (Some(lo), Some(hi)) => format!("{lo}..={hi}"),
        (Some(lo), None) => format!(">= {lo}"),
        (None, Some(hi)) => format!("<= {hi}"),
        (None, None) => "(any)".to_string(),
    }
}

fn wrong_type(spec: &ParamManifest, raw: &str) -> InputError {
    let mut message = format!(
        "parameter `{}` must be {}, not {raw}",
        spec.name,
        spec.kind.describe()
    );
    if spec.kind == ParamKind::Integer && (spec.minimum.is_some() || spec.maximum.is_some()) {
        message.push_str(&format!(
            " (allowed range {})",
            describe_range(spec.minimum, spec.maximum)
        ));
    }
    InputError(message)
}

fn unknown_parameter(manifest: &SkillManifest, name: &str) -> InputError {
    let known: Vec<&str> = manifest
        .parameters
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    InputError(format!(
        "skill `{}` has no parameter `{name}`; its parameters are: {}",
        manifest.id,
        if known.is_empty() {
            "(none)".to_string()
        } else {
            known.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skillhost_contract::manifest::OutputKind;

    fn manifest() -> SkillManifest {
        SkillManifest {
            id: "demo".into(),
            name: "demo".into(),
            version: "1".into(),
            description: String::new(),
            parameters: vec![
                ParamManifest {
                    name: "duration".into(),
                    description: String::new(),
                    kind: ParamKind::Integer,
                    required: false,
                    default: Some(json!(1)),
                    allowed_values: vec![],
                    minimum: Some(1),
                    maximum: Some(100),
                },
                ParamManifest {
                    name: "unit".into(),
                    description: String::new(),
                    kind: ParamKind::Text,
                    required: true,
                    default: None,
                    allowed_values: vec!["hours".into(), "days".into()],
                    minimum: None,
                    maximum: None,
                },
                ParamManifest {
                    name: "since".into(),
                    description: String::new(),
                    kind: ParamKind::Timestamp,
                    required: false,
                    default: None,
                    allowed_values: vec![],
                    minimum: None,
                    maximum: None,
                },
            ],
            services: vec![],
            output: OutputKind::Object,
            columns: vec![],
            output_description: String::new(),
        }
    }

    fn run(params: &[&str]) -> Result<Map<String, Value>, InputError> {
        let m = manifest();
        let params: Vec<String> = params.iter().map(|s| s.to_string()).collect();
        validate(&m, merge_cli_input(&m, None, &params)?)
    }

    #[test]
    fn defaults_are_applied_and_cli_text_becomes_the_declared_type() {
        let input = run(&["unit=days"]).unwrap();
        assert_eq!(Value::Object(input), json!({"unit": "days", "duration": 1}));
        let input = run(&["unit=hours", "duration=7"]).unwrap();
        assert_eq!(input["duration"], json!(7));
    }

    #[test]
    fn missing_required_parameter_is_named() {
        let err = run(&[]).unwrap_err();
        assert_eq!(
            err.0,
            "missing required parameter `unit` (a string): pass --param unit=<value>"
        );
    }

    #[test]
    fn disallowed_value_lists_the_allowed_ones() {
        let err = run(&["unit=weeks"]).unwrap_err();
        assert_eq!(
            err.0,
            "parameter `unit` does not accept \"weeks\"; allowed values: hours, days"
        );
    }

    #[test]
    fn fractional_and_out_of_range_integers_are_refused() {
        assert_eq!(
            run(&["unit=days", "duration=1.5"]).unwrap_err().0,
            "parameter `duration` must be an integer, not 1.5 (allowed range 1..=100)"
        );
        assert_eq!(
            run(&["unit=days", "duration=0"]).unwrap_err().0,
            "parameter `duration` is 0, outside the allowed range 1..=100"
        );
    }

    #[test]
    fn unknown_parameter_lists_the_known_ones() {
        assert_eq!(
            run(&["unit=days", "colour=red"]).unwrap_err().0,
            "skill `demo` has no parameter `colour`; its parameters are: duration, unit, since"
        );
    }

    #[test]
    fn malformed_timestamp_is_refused() {
        assert!(
            run(&["unit=days", "since=yesterday"])
                .unwrap_err()
                .0
                .starts_with("parameter `since` must be an RFC 3339 timestamp")
        );
        assert!(run(&["unit=days", "since=2026-11-26T08:00:00Z"]).is_ok());
    }

    #[test]
    fn json_input_with_wrong_type_is_refused() {
        let m = manifest();
        let input = merge_cli_input(&m, Some(r#"{"unit": "days", "duration": "3"}"#), &[]).unwrap();
        assert_eq!(
            validate(&m, input).unwrap_err().0,
            "parameter `duration` must be an integer, not \"3\" (allowed range 1..=100)"
        );
    }
}
