//! A skill of contract `skillhost:skill@0.2.0`, bound to its WIT directly (no SDK): counts its
//! completed runs in state. Each run takes the lock `counter`, reads `count`, emits one row
//! `{"count": N}` with the next number, and stages `count = N`; parameters make it fail after
//! staging (`fail`), hold its lock a while (`hold_ms`), emit extra rows (`rows`), emit a row the
//! host refuses and carry on (`bad_row`), skip the lock (`unlocked`), or compute without end
//! once it holds the lock (`spin`).
wit_bindgen::generate!({ world: "skill", path: "../../../wit/skill@0.2.0" });

use exports::skillhost::skill::guest::Guest;
use skillhost::skill::types::{OutputKind, ParamKind, ParamSpec, SkillError, SkillInfo};
use skillhost::skill::{emit, state};

struct Counter;

fn param(name: &str, kind: ParamKind, description: &str) -> ParamSpec {
    ParamSpec {
        name: name.to_string(),
        description: description.to_string(),
        kind,
        required: false,
        default_value: None,
        allowed_values: Vec::new(),
        minimum: Some(0),
        maximum: Some(60_000),
    }
}

fn state_error(error: state::StateError) -> SkillError {
    match error {
        state::StateError::InUse(m) => SkillError::Conflict(m),
        state::StateError::Limit(m) | state::StateError::Invalid(m) => SkillError::Internal(m),
        state::StateError::Unavailable(m) => SkillError::Internal(format!("state: {m}")),
    }
}

/// The value of integer parameter `name` in the input text, 0 when absent.
fn number(input: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    input
        .find(&key)
        .map(|at| &input[at + key.len()..])
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

impl Guest for Counter {
    fn describe() -> SkillInfo {
        SkillInfo {
            id: "state_counter".to_string(),
            name: "State counter".to_string(),
            version: "0.2.0".to_string(),
            description: "Counts its completed runs in state.".to_string(),
            parameters: vec![
                param("fail", ParamKind::Boolean, "Fail after staging."),
                param("unlocked", ParamKind::Boolean, "Do not take the lock."),
                param("hold_ms", ParamKind::Integer, "Hold the lock this long."),
                param("rows", ParamKind::Integer, "Extra rows to emit."),
                param(
                    "spin",
                    ParamKind::Boolean,
                    "Compute without end once the lock is held.",
                ),
                param(
                    "bad_row",
                    ParamKind::Boolean,
                    "Emit a row that is not an object first.",
                ),
            ],
            services: Vec::new(),
            output: OutputKind::Dataset,
            columns: vec!["count".to_string()],
            output_description: "One row: the run's number.".to_string(),
        }
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        if !input.contains("\"unlocked\":true") {
            state::lock("counter").map_err(state_error)?;
        }
        if input.contains("\"spin\":true") {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        let read = state::get("count").map_err(state_error)?;
        let (count, version) = match read {
            Some(entry) => (
                String::from_utf8_lossy(&entry.value)
                    .parse::<u64>()
                    .unwrap_or(0),
                Some(entry.version),
            ),
            None => (0, None),
        };
        let next = count + 1;
        state::set("count", next.to_string().as_bytes(), version).map_err(state_error)?;
        let hold = number(&input, "hold_ms");
        if hold > 0 {
            let until = std::time::Instant::now() + std::time::Duration::from_millis(hold);
            while std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        if input.contains("\"bad_row\":true") {
            // Refused by the host (not an object); the skill carries on regardless.
            let _ = emit::emit("[1]");
        }
        emit::emit(&format!("{{\"count\":{next}}}")).map_err(SkillError::Internal)?;
        for extra in 0..number(&input, "rows") {
            emit::emit(&format!("{{\"count\":{next},\"extra\":{extra}}}"))
                .map_err(SkillError::Internal)?;
        }
        if input.contains("\"fail\":true") {
            return Err(SkillError::Internal(
                "failing after staging, as asked".to_string(),
            ));
        }
        Ok(format!("{{\"count\":{next}}}"))
    }
}

export!(Counter);
