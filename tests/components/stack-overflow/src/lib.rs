//! Recurses until the wasm call stack is exhausted. Only scalars are live, so the recursion
//! uses the engine's stack (not the shadow stack in linear memory).
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct StackOverflow;

fn depth(n: u64) -> u64 {
    // The exit the optimizer cannot prove unreachable, so the recursion stays real.
    if n == std::hint::black_box(u64::MAX) {
        return 0;
    }
    std::hint::black_box(depth(n + 1)).wrapping_add(n)
}

impl Guest for StackOverflow {
    fn describe() -> SkillInfo {
        SkillInfo::new(
            "stack-overflow",
            env!("CARGO_PKG_VERSION"),
            "Recurses without bound.",
        )
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        Ok(depth(0).to_string())
    }
}

skillhost_guest::export_skill!(StackOverflow);
