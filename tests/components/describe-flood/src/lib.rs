//! Declares 150,000 parameters (all named alike), far past the host's cap: the host must refuse
//! the answer by its count, without first comparing every name with every other.
use skillhost_guest::{Guest, ParamKind, ParamSpec, SkillError, SkillInfo};

struct DescribeFlood;

/// How many parameters `describe` declares.
const PARAMETERS: usize = 150_000;

impl Guest for DescribeFlood {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "describe-flood",
            env!("CARGO_PKG_VERSION"),
            "Declares too many parameters.",
        );
        info.parameters = vec![ParamSpec::new("p", ParamKind::Text, false, ""); PARAMETERS];
        info
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        Ok(String::from("{}"))
    }
}

skillhost_guest::export_skill!(DescribeFlood);
