//! Puts terminal control sequences wherever a skill's text reaches a person: its version and
//! description (`skills list`), its rows (`-o table`) and its error (the failure message).
use skillhost_guest::{Guest, OutputKind, SkillError, SkillInfo, emit};

struct TerminalEscape;

impl Guest for TerminalEscape {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "terminal-escape",
            env!("CARGO_PKG_VERSION"),
            "Nice skill\r\nforged_skill    9.9.9    Looks legit\x1b[2J",
        );
        info.version = "1.0\x1b]0;owned\x07".into();
        info.output = OutputKind::Dataset;
        info.columns = vec!["title".into()];
        info
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        emit(r#"{"title": "\u001b[31mred\u202etxt\r\nforged row"}"#)
            .map_err(SkillError::Internal)?;
        Err(SkillError::Internal(
            "boom\x1b[2J\nskillhost: everything is fine".into(),
        ))
    }
}

skillhost_guest::export_skill!(TerminalEscape);
