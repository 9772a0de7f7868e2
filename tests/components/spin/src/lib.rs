//! Computes without calling the host: for ever, the deadline must stop it; or, with `ms`, for
//! that long and then (`then`) returns or emits a row and returns.
use skillhost_guest::{Guest, Input, ParamKind, ParamSpec, SkillError, SkillInfo};

struct Spin;

impl Guest for Spin {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new("spin", env!("CARGO_PKG_VERSION"), "Loops forever.");
        info.parameters = vec![
            ParamSpec::new(
                "ms",
                ParamKind::Integer,
                false,
                "Compute this long, then stop.",
            )
            .range(Some(0), Some(60_000)),
            ParamSpec::new(
                "then",
                ParamKind::Text,
                false,
                "After `ms`: return or emit.",
            )
            .allowed(&["return", "emit"]),
        ];
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input = Input::parse(&input)?;
        let mut n: u64 = 0;
        let Some(ms) = input.integer("ms")? else {
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        };
        let until = std::time::Instant::now()
            + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        while std::time::Instant::now() < until {
            for _ in 0..10_000 {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        if input.text("then")? == Some("emit") {
            skillhost_guest::emit("{\"n\":1}").map_err(SkillError::Denied)?;
        }
        Ok("{\"n\":1}".to_string())
    }
}

skillhost_guest::export_skill!(Spin);
