//! Never returns from `invoke`: the deadline must stop it.
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct Spin;

impl Guest for Spin {
    fn describe() -> SkillInfo {
        SkillInfo::new("spin", env!("CARGO_PKG_VERSION"), "Loops forever.")
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

skillhost_guest::export_skill!(Spin);
