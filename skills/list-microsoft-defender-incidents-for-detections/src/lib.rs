//! `list_microsoft_defender_incidents_for_detections`: the incidents of a window as one
//! normalized row per (incident, alert), streamed out through `emit` page by page, so memory
//! stays flat however many incidents there are. Returns a summary. The run itself is
//! [`defender::detections`].

use defender::{COLUMNS, HostFetch, ListRequest, bound_api, params::list_parameters, parse_input};
use skillhost_guest::{Guest, OutputKind, SkillError, SkillInfo};

struct Detections;

impl Guest for Detections {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "list_microsoft_defender_incidents_for_detections",
            env!("CARGO_PKG_VERSION"),
            "Lists Microsoft Defender XDR incidents in a time window as one normalized row per (incident, alert): the entry point of detection pipelines.",
        );
        info.name = "Microsoft Defender incidents for detections".into();
        info.parameters = list_parameters();
        info.services = vec!["defender".into(), "graph".into()];
        info.output = OutputKind::Dataset;
        info.columns = COLUMNS.iter().map(|c| c.to_string()).collect();
        info.output_description =
            "rows: one per (incident, alert), an incident without alerts gives one row with null alert columns; summary: {api, filter, pages, incidents, rows}".into();
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input = parse_input(&input)?;
        let api = bound_api();
        let request = ListRequest::from_input(&input, api, jiff::Timestamp::now())?;
        // Each row is written as JSON text straight from the incident parsed out of the page, and
        // emitted as soon as no later page can replace its incident.
        defender::detections(&request, &mut HostFetch, &mut |row| {
            skillhost_guest::emit(row).map_err(SkillError::Denied)
        })
    }
}

skillhost_guest::export_skill!(Detections);
