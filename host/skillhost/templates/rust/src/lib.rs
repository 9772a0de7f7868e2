//! `{{id}}`: a skillhost skill (contract skillhost:skill@0.1.0).
//!
//! Reads the first page of incidents of the bound connection and returns how many there were
//! and their ids. Replace `describe` and `invoke` with what your skill does; the SDK
//! (`skillhost_guest`) has the helpers: paging, errors, input, logging.

use serde_json::json;
use skillhost_guest::{
    ApiFlavour, Guest, Input, ODataPager, ParamKind, ParamSpec, SkillError, SkillInfo, connection,
};

struct Skill;

impl Guest for Skill {
    fn describe() -> SkillInfo {
        // `describe!` reports this crate's version (Cargo.toml), not the SDK's.
        skillhost_guest::describe!("{{id}}")
            .description("Reads the first incidents of the bound connection.")
            .parameter(
                ParamSpec::new("top", ParamKind::Integer, false, "How many incidents to read.")
                    .default_json("10")
                    .range(Some(1), Some(100)),
            )
            .services(&["defender", "graph"])
            .output_description("`incidents`: how many were read; `ids`: their ids.")
            .build()
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input = Input::parse(&input)?;
        let top = usize::try_from(input.required_integer("top")?).unwrap_or(1);
        let info = connection::info();
        let (service, path, id_field) = match info.api {
            ApiFlavour::Defender => ("defender", "/api/incidents", "incidentId"),
            ApiFlavour::Graph => ("graph", "/v1.0/security/incidents", "id"),
        };
        let first_page = ODataPager::new(service, path, top)
            .next_page()?
            .unwrap_or_default();
        let ids: Vec<_> = first_page.iter().map(|i| i[id_field].clone()).collect();
        Ok(json!({ "connection": info.name, "incidents": ids.len(), "ids": ids }).to_string())
    }
}

skillhost_guest::export_skill!(Skill);
