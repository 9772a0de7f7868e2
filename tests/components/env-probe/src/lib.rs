//! Reports every environment variable and argument the sandbox lets it see.
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct EnvProbe;

impl Guest for EnvProbe {
    fn describe() -> SkillInfo {
        SkillInfo::new(
            "env-probe",
            env!("CARGO_PKG_VERSION"),
            "Lists environment variables and arguments.",
        )
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
        let args: Vec<String> = std::env::args().collect();
        let cwd = std::env::current_dir()
            .ok()
            .map(|p| p.display().to_string());
        Ok(serde_json::json!({ "vars": vars, "args": args, "cwd": cwd }).to_string())
    }
}

skillhost_guest::export_skill!(EnvProbe);
