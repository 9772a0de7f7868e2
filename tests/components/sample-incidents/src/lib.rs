//! The Rust twin of the example Python skill `examples/python/sample_incidents`: the same
//! parameters, the same HTTP calls (OData pages through the SDK's `ODataPager`) and the same
//! result, so that tests can hold the two equal and benchmarks can compare the languages.
use std::collections::BTreeMap;

use serde_json::json;
use skillhost_guest::{
    ApiFlavour, Guest, Input, Level, ODataPager, ParamKind, ParamSpec, SkillError, SkillInfo,
    connection, log,
};

struct SampleIncidents;

impl Guest for SampleIncidents {
    fn describe() -> SkillInfo {
        skillhost_guest::describe!("sample_incidents_rs")
            .description(
                "Samples the incidents of the bound connection: counts by severity, and their ids.",
            )
            .parameter(
                ParamSpec::new(
                    "limit",
                    ParamKind::Integer,
                    false,
                    "The most incidents to read.",
                )
                .default_json("20")
                .range(Some(1), Some(10_000)),
            )
            .parameter(
                ParamSpec::new(
                    "page_size",
                    ParamKind::Integer,
                    false,
                    "Incidents asked for per page.",
                )
                .default_json("5")
                .range(Some(1), Some(100)),
            )
            .services(&["defender", "graph"])
            .output_description("`incidents`, `pages`, `by_severity` (counts) and `ids`.")
            .build()
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input = Input::parse(&input)?;
        let limit = usize::try_from(input.required_integer("limit")?).unwrap_or(1);
        let page_size = usize::try_from(input.required_integer("page_size")?).unwrap_or(1);
        let (service, path, id_field) = match connection::info().api {
            ApiFlavour::Defender => ("defender", "/api/incidents", "incidentId"),
            ApiFlavour::Graph => ("graph", "/v1.0/security/incidents", "id"),
        };
        let mut pager = ODataPager::new(service, path, page_size);
        let mut ids = Vec::new();
        let mut by_severity: BTreeMap<String, u64> = BTreeMap::new();
        while let Some(page) = pager.next_page()? {
            for incident in page.into_iter().take(limit - ids.len()) {
                ids.push(incident[id_field].clone());
                let severity = incident["severity"]
                    .as_str()
                    .map_or_else(|| "unknown".to_string(), str::to_lowercase);
                *by_severity.entry(severity).or_default() += 1;
            }
            if ids.len() >= limit {
                break;
            }
        }
        log(
            Level::Info,
            &format!("read {} incidents in {} pages", ids.len(), pager.pages()),
        );
        Ok(json!({
            "incidents": ids.len(),
            "pages": pager.pages(),
            "by_severity": by_severity,
            "ids": ids,
        })
        .to_string())
    }
}

skillhost_guest::export_skill!(SampleIncidents);
