//! Returns `{}` at once: what remains is the host's cost of an invocation.
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct Noop;

impl Guest for Noop {
    fn describe() -> SkillInfo {
        SkillInfo::new("noop", env!("CARGO_PKG_VERSION"), "Does nothing.")
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        Ok(String::from("{}"))
    }
}

skillhost_guest::export_skill!(Noop);
