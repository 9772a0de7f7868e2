//! Allocates 1 MiB blocks until the host's memory cap stops it.
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct MemoryHog;

impl Guest for MemoryHog {
    fn describe() -> SkillInfo {
        SkillInfo::new(
            "memory-hog",
            env!("CARGO_PKG_VERSION"),
            "Allocates without bound.",
        )
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        let mut blocks = Vec::new();
        loop {
            blocks.push(std::hint::black_box(vec![1u8; 1 << 20]));
            if blocks.len() > 1 << 20 {
                return Ok(blocks.len().to_string());
            }
        }
    }
}

skillhost_guest::export_skill!(MemoryHog);
