//! Takes host handles in a loop and keeps every one: `count` (default 100,000) WASI stdout
//! streams (`get-stdout`), or, with `kind` = `pollable`, clock pollables
//! (`subscribe-duration`). Returns how many it took. The imports are declared by hand, as
//! Rust's standard library declares them, so the component needs no WASI bindings of its own.
use skillhost_guest::{Guest, ParamKind, ParamSpec, SkillError, SkillInfo};

#[link(wasm_import_module = "wasi:cli/stdout@0.2.0")]
unsafe extern "C" {
    #[link_name = "get-stdout"]
    fn get_stdout() -> i32;
}

#[link(wasm_import_module = "wasi:clocks/monotonic-clock@0.2.0")]
unsafe extern "C" {
    #[link_name = "subscribe-duration"]
    fn subscribe_duration(nanoseconds: i64) -> i32;
}

struct HandleHoard;

impl Guest for HandleHoard {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "handle-hoard",
            env!("CARGO_PKG_VERSION"),
            "Takes host handles without dropping any.",
        );
        info.parameters = vec![
            ParamSpec::new("count", ParamKind::Integer, false, "handles to take"),
            ParamSpec::new("kind", ParamKind::Text, false, "stdout or pollable"),
        ];
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| SkillError::Internal(e.to_string()))?;
        let count = input["count"].as_u64().unwrap_or(100_000);
        let pollables = input["kind"].as_str() == Some("pollable");
        let mut held = Vec::new();
        for _ in 0..count {
            // SAFETY: both imports take plain values and return a handle the guest now owns.
            let handle = unsafe {
                if pollables {
                    subscribe_duration(1_000_000_000)
                } else {
                    get_stdout()
                }
            };
            held.push(handle);
        }
        Ok(serde_json::json!({ "held": held.len() }).to_string())
    }
}

skillhost_guest::export_skill!(HandleHoard);
