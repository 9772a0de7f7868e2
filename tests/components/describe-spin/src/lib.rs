//! Never returns from `describe`: the describe budget must stop it, and the registry must
//! remember the refusal so that later commands do not wait for it again.
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct DescribeSpin;

impl Guest for DescribeSpin {
    fn describe() -> SkillInfo {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        Ok(String::from("{}"))
    }
}

skillhost_guest::export_skill!(DescribeSpin);
