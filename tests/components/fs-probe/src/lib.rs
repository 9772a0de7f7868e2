//! Tries to read and list files; reports each outcome.
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct FsProbe;

fn outcome<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("error: {e}"),
    }
}

impl Guest for FsProbe {
    fn describe() -> SkillInfo {
        SkillInfo::new(
            "fs-probe",
            env!("CARGO_PKG_VERSION"),
            "Tries to read files.",
        )
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        Ok(serde_json::json!({
            "read_etc_passwd": outcome(std::fs::read("/etc/passwd")),
            "read_relative": outcome(std::fs::read("Cargo.toml")),
            "list_root": outcome(std::fs::read_dir("/")),
            "list_cwd": outcome(std::fs::read_dir(".")),
            "write_tmp": outcome(std::fs::write("/tmp/skillhost-fs-probe", b"x")),
        })
        .to_string())
    }
}

skillhost_guest::export_skill!(FsProbe);
