//! Calls `GET /slow` on the `defender` service and returns the status it got.
use skillhost_guest::{Guest, HttpError, SkillError, SkillInfo};

struct SlowCall;

impl Guest for SlowCall {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "slow-call",
            env!("CARGO_PKG_VERSION"),
            "Waits on a slow upstream.",
        );
        info.services = vec!["defender".to_string()];
        info
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        match skillhost_guest::get("defender", "/slow") {
            Ok(response) => Ok(format!("{{\"status\":{}}}", response.status)),
            Err(HttpError::Timeout) => Err(SkillError::Timeout("slow call".to_string())),
            Err(e) => Err(SkillError::Internal(format!("{e:?}"))),
        }
    }
}

skillhost_guest::export_skill!(SlowCall);
