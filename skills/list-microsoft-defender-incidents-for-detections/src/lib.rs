//! `list_microsoft_defender_incidents_for_detections`: the incidents of a window as one
//! normalized row per (incident, alert), streamed out through `emit` page by page, so memory
//! stays flat however many incidents there are. Returns a summary.

use defender::paging::{Dedup, Pager};
use defender::{
    COLUMNS, HostFetch, ListRequest, bound_api, detection_rows, params::list_parameters,
    parse_input,
};
use serde_json::{Value, json};
use skillhost_guest::{Guest, OutputKind, SkillError, SkillInfo};

struct Detections;

/// Incident ids remembered after their rows left, to drop a duplicate on the next page.
const REMEMBERED_IDS: usize = 200;

fn emit_incidents(
    incidents: Vec<Value>,
    api: defender::Api,
    rows: &mut u64,
) -> Result<(), SkillError> {
    for incident in incidents {
        for row in detection_rows(&incident, api) {
            let text = Value::Object(row).to_string();
            skillhost_guest::emit(&text).map_err(SkillError::Denied)?;
            *rows += 1;
        }
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
        let mut dedup = Dedup::default();
        let mut rows = 0u64;
        let limit_reached = |d: &Dedup| request.limit.is_some_and(|l| d.accepted >= l);
        while let Some(page) = pager.next_page(&mut HostFetch)? {
            // The previous page is released only after this one was accepted, so that a newer
            // version of one of its incidents (a `$skip` duplicate) replaces the older first.
            let held = dedup.pending();
            for incident in page {
                if limit_reached(&dedup) {
                    break;
                }
                dedup.accept(incident);
            }
            emit_incidents(dedup.release(held, REMEMBERED_IDS), api, &mut rows)?;
            if limit_reached(&dedup) {
                break;
            }
        }
        let incidents = dedup.accepted;
        emit_incidents(dedup.release(usize::MAX, 0), api, &mut rows)?;
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
