//! Sends `GET target` on the `defender` service, where `target` is a path or an absolute URL.
use skillhost_guest::{Guest, HttpError, ParamKind, ParamSpec, SkillError, SkillInfo};

struct EgressProbe;

impl Guest for EgressProbe {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "egress-probe",
            env!("CARGO_PKG_VERSION"),
            "Requests a given target.",
        );
        info.services = vec!["defender".to_string()];
        info.parameters = vec![ParamSpec::new(
            "target",
            ParamKind::Text,
            true,
            "Path or URL.",
        )];
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| SkillError::Internal(e.to_string()))?;
        let target = input["target"].as_str().unwrap_or_default();
        match skillhost_guest::get("defender", target) {
            Ok(r) => Ok(serde_json::json!({ "status": r.status }).to_string()),
            Err(HttpError::Denied(why)) => Err(SkillError::Denied(why)),
            Err(e) => Err(SkillError::Internal(format!("{e:?}"))),
        }
    }
}

skillhost_guest::export_skill!(EgressProbe);
