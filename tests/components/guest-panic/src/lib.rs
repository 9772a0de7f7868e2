//! Panics in `invoke`.
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct GuestPanic;

impl Guest for GuestPanic {
    fn describe() -> SkillInfo {
        SkillInfo::new(
            "guest-panic",
            env!("CARGO_PKG_VERSION"),
            "Panics when invoked.",
        )
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        panic!("guest-panic was asked to panic")
    }
}

skillhost_guest::export_skill!(GuestPanic);
