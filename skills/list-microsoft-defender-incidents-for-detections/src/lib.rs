//! `list_microsoft_defender_incidents_for_detections`: the incidents of a window as one
//! normalized row per (incident, alert), streamed out through `emit` page by page, so memory
//! stays flat however many incidents there are. Returns a summary.

use defender::paging::{Dedup, Pager, incident_id, last_update};
use defender::{
    COLUMNS, HostFetch, ListRequest, bound_api, detection_rows, params::list_parameters,
    parse_input,
};
use serde_json::{Value, json};
use skillhost_guest::{Guest, OutputKind, SkillError, SkillInfo};

struct Detections;

/// Emits the rows of released incidents (each row already serialized).
fn emit_rows(incidents: Vec<Vec<String>>, rows: &mut u64) -> Result<(), SkillError> {
    for row in incidents.into_iter().flatten() {
        skillhost_guest::emit(&row).map_err(SkillError::Denied)?;
        *rows += 1;
    }
    Ok(())
}

impl Guest for Detections {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "list_microsoft_defender_incidents_for_detections",
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
        let mut pager = Pager::new(&request);
        // Incidents are held as their serialized rows, a fraction of a parsed incident's size.
        let mut dedup: Dedup<Vec<String>> = Dedup::default();
        // A `$skip` duplicate arrives within a few incidents of the original (everything
        // shifted by the incidents that arrived meanwhile), so the latest `hold` incidents stay
        // replaceable and everything older leaves at once: memory is flat whatever the total.
        let hold = (request.page_size / 2).max(1);
        let remembered = request.page_size * 2;
        let mut rows = 0u64;
        let limit = request.limit.unwrap_or(usize::MAX);
        while dedup.accepted < limit {
            let mut on_incident = |incident: Value| {
                if dedup.accepted >= limit {
                    return Ok(());
                }
                let serialized = detection_rows(&incident, api)
                    .into_iter()
                    .map(|row| Value::Object(row).to_string())
                    .collect();
                dedup.accept(incident_id(&incident), last_update(&incident), serialized);
                let ready = dedup.pending().saturating_sub(hold);
                emit_rows(dedup.release(ready, remembered), &mut rows)
            };
            if pager
                .next_page_each(&mut HostFetch, &mut on_incident)?
                .is_none()
            {
                break;
            }
        }
        let incidents = dedup.accepted;
        emit_rows(dedup.release(usize::MAX, 0), &mut rows)?;
        Ok(json!({
            "api": api.service(),
            "filter": request.filter,
            "pages": pager.pages(),
            "incidents": incidents,
            "rows": rows,
        })
        .to_string())
    }
}

skillhost_guest::export_skill!(Detections);
