//! The detections skill's run: every incident of a window, de-duplicated, as one normalized row
//! per (incident, alert), handed to `emit` page by page as incidents are parsed, so memory stays
//! flat however many incidents there are.

use serde_json::json;
use skillhost_guest::SkillError;

use crate::paging::{Dedup, Fetch, Pager};
use crate::params::ListRequest;
use crate::rows::Rows;

/// Runs `request`, handing each row (one JSON object) to `emit`; returns the summary
/// `{api, filter, pages, incidents, rows}` as JSON text.
pub fn detections(
    request: &ListRequest,
    fetch: &mut dyn Fetch,
    emit: &mut dyn FnMut(&str) -> Result<(), SkillError>,
) -> Result<String, SkillError> {
    detections_on(Pager::new(request), request, fetch, emit)
}

/// [`detections`] with the pager given (tests give it a small window).
pub(crate) fn detections_on(
    mut pager: Pager,
    request: &ListRequest,
    fetch: &mut dyn Fetch,
    emit: &mut dyn FnMut(&str) -> Result<(), SkillError>,
) -> Result<String, SkillError> {
    // Incidents are held as their serialized rows, a fraction of a parsed incident's size.
    let mut dedup: Dedup<Rows> = Dedup::default();
    // A `$skip` duplicate arrives within a few incidents of the original (everything shifted by
    // the incidents that arrived meanwhile), so the latest `hold` incidents stay replaceable and
    // everything older leaves at once: memory is flat whatever the total.
    let hold = (request.page_size / 2).max(1);
    let remembered = request.page_size * 2;
    let mut rows = 0u64;
    let limit = request.limit.unwrap_or(usize::MAX);
    let mut send = |released: Vec<Rows>, rows: &mut u64| -> Result<(), SkillError> {
        for row in released.iter().flat_map(Rows::iter) {
            emit(row)?;
            *rows += 1;
        }
        Ok(())
    };
    while dedup.accepted < limit {
        let mut on_incident = |incident: crate::rows::DetectionIncident| {
            if dedup.accepted >= limit {
                return Ok(());
            }
            dedup.accept(incident.id, incident.version, incident.rows);
            let ready = dedup.pending().saturating_sub(hold);
            send(dedup.release(ready, remembered), &mut rows)
        };
        if pager.next_page_rows(fetch, &mut on_incident)?.is_none() {
            break;
        }
    }
    let incidents = dedup.accepted;
    send(dedup.release(usize::MAX, 0), &mut rows)?;
    Ok(summary(request, pager.pages(), incidents, rows))
}

/// The summary of a run.
pub(crate) fn summary(request: &ListRequest, pages: usize, incidents: usize, rows: u64) -> String {
    json!({
        "api": request.api.service(),
        "filter": request.filter,
        "pages": pages,
        "incidents": incidents,
        "rows": rows,
    })
    .to_string()
}
