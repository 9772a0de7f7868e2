//! Runs `defender::workload::normalize` on generated incidents and reports the time it took
//! inside the guest, so the benchmark compares the same code in wasm and natively.
use skillhost_guest::{Guest, ParamKind, ParamSpec, SkillError, SkillInfo};

struct NormalizeBench;

impl Guest for NormalizeBench {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "normalize-bench",
            env!("CARGO_PKG_VERSION"),
            "Times the detection normalization.",
        );
        info.parameters = vec![
            ParamSpec::new(
                "incidents",
                ParamKind::Integer,
                true,
                "Incidents to normalize.",
            ),
            ParamSpec::new("alerts", ParamKind::Integer, true, "Alerts per incident."),
        ];
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| SkillError::Internal(e.to_string()))?;
        let incidents = input["incidents"].as_u64().unwrap_or(0) as usize;
        let alerts = input["alerts"].as_u64().unwrap_or(0) as usize;
        let page = defender::workload::page(alerts);
        let started = std::time::Instant::now();
        let (rows, bytes) = defender::workload::normalize(&page, incidents);
        let nanos = started.elapsed().as_nanos() as u64;
        Ok(serde_json::json!({ "rows": rows, "bytes": bytes, "nanos": nanos }).to_string())
    }
}

skillhost_guest::export_skill!(NormalizeBench);
