//! Panics in `describe`, so the host cannot register it.
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct DescribePanic;

impl Guest for DescribePanic {
    fn describe() -> SkillInfo {
        panic!("describe-panic cannot describe itself")
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        Ok(String::from("{}"))
    }
}

skillhost_guest::export_skill!(DescribePanic);
