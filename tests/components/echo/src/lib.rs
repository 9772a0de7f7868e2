//! Echoes its validated input back, with the bound connection's name when there is one.
use skillhost_guest::{Guest, ParamKind, ParamSpec, SkillError, SkillInfo};

struct Echo;

impl Guest for Echo {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "echo",
            env!("CARGO_PKG_VERSION"),
            "Returns its input, transformed by `mode`.",
        );
        info.parameters = vec![
            ParamSpec::new("message", ParamKind::Text, true, "Text to echo."),
            ParamSpec::new("repeat", ParamKind::Integer, false, "How many times.")
                .default_json("1")
                .range(Some(1), Some(10)),
            ParamSpec::new("mode", ParamKind::Text, false, "Letter case.")
                .default_json("\"lower\"")
                .allowed(&["upper", "lower"]),
            ParamSpec::new(
                "loud",
                ParamKind::Boolean,
                false,
                "Adds an exclamation mark.",
            ),
            ParamSpec::new("since", ParamKind::Timestamp, false, "Any RFC 3339 time."),
        ];
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| SkillError::Internal(e.to_string()))?;
        let message = input["message"].as_str().unwrap_or_default();
        let repeat = input["repeat"].as_u64().unwrap_or(1) as usize;
        let mut text = message.repeat(repeat);
        text = if input["mode"] == "upper" {
            text.to_uppercase()
        } else {
            text.to_lowercase()
        };
        if input["loud"] == true {
            text.push('!');
        }
        Ok(serde_json::json!({ "echo": text, "input": input }).to_string())
    }
}

skillhost_guest::export_skill!(Echo);
