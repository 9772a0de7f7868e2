//! `list_microsoft_defender_incidents_for_detections`: the incidents of a window as one
//! normalized row per (incident, alert), streamed out through `emit` page by page, so memory
//! stays flat however many incidents there are. Returns a summary. The run itself is
//! [`defender::detections`].

use defender::incremental::{self, HostState};
use defender::{COLUMNS, HostFetch, bound_api, params::list_parameters, parse_input};
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
        info.parameters
            .extend(incremental::incremental_parameters());
        info.services = vec!["defender".into(), "graph".into()];
        info.output = OutputKind::Dataset;
        info.columns = COLUMNS.iter().map(|c| c.to_string()).collect();
        info.output_description =
            "rows: one per (incident, alert), an incident without alerts gives one row with null alert columns; summary: {api, filter, pages, incidents, rows}, and with `incremental` the cursor: {name, from, next, delivered, already_delivered}".into();
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input = parse_input(&input)?;
        let api = bound_api();
        let (request, cursor) =
            incremental::begin(&input, api, jiff::Timestamp::now(), &mut HostState)?;
        // Each row is written as JSON text straight from the incident parsed out of the page, and
        // emitted as soon as no later page can replace its incident.
        let mut emit = |row: &str| skillhost_guest::emit(row).map_err(SkillError::Denied);
        let Some(mut cursor) = cursor else {
            return defender::detections(&request, &mut HostFetch, &mut emit);
        };
        let summary = defender::detections_new(&request, &mut HostFetch, &mut emit, &mut cursor)?;
        // Staged: the host moves the cursor only once every row was delivered.
        cursor.stage(&mut HostState)?;
        Ok(incremental::with_cursor(summary, &cursor.summary()))
    }
}

skillhost_guest::export_skill!(Detections);
