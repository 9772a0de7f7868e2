//! Makes the host produce far more than it was given: `mode=rows` emits `count` empty rows of a
//! dataset declaring 500 columns (each an empty cell in csv and table), ignoring refusals;
//! `mode=result` returns one JSON array of `count` zeros (two bytes a value in the guest, tens
//! of bytes each in a host that expands it).
use skillhost_guest::{Guest, OutputKind, ParamKind, ParamSpec, SkillError, SkillInfo, emit};

struct OutputFlood;

impl Guest for OutputFlood {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "output-flood",
            env!("CARGO_PKG_VERSION"),
            "Amplifies its output.",
        );
        info.parameters = vec![
            ParamSpec::new("mode", ParamKind::Text, true, "rows or result.")
                .allowed(&["rows", "result"]),
            ParamSpec::new("count", ParamKind::Integer, true, "How many.").range(Some(1), None),
        ];
        info.output = OutputKind::Dataset;
        info.columns = (0..500).map(|i| format!("c{i}")).collect();
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| SkillError::Internal(e.to_string()))?;
        let count = input["count"].as_u64().unwrap_or(1);
        if input["mode"] == "result" {
            let mut text = String::with_capacity(count as usize * 2 + 2);
            text.push('[');
            for i in 0..count {
                if i > 0 {
                    text.push(',');
                }
                text.push('0');
            }
            text.push(']');
            return Ok(text);
        }
        let mut refused = 0u64;
        for _ in 0..count {
            if emit("{}").is_err() {
                refused += 1;
            }
        }
        Ok(format!("{{\"refused\": {refused}}}"))
    }
}

skillhost_guest::export_skill!(OutputFlood);
