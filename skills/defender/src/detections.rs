//! The detections skill's run: every incident of a window, de-duplicated, as one normalized row
//! per (incident, alert), handed to `emit` page by page as incidents are parsed, so memory stays
//! flat however many incidents there are.

use serde_json::json;
use skillhost_guest::SkillError;

use crate::incremental::Cursor;
use crate::paging::{Dedup, Fetch, Pager, Released};
use crate::params::ListRequest;
use crate::rows::Rows;

/// Runs `request`, handing each row (one JSON object) to `emit`; returns the summary
/// `{api, filter, pages, incidents, rows}` as JSON text.
pub fn detections(
    request: &ListRequest,
    fetch: &mut dyn Fetch,
    emit: &mut dyn FnMut(&str) -> Result<(), SkillError>,
) -> Result<String, SkillError> {
    detections_on(Pager::new(request), request, fetch, emit, None)
}

/// [`detections`] of an incremental run: the rows of every version `cursor` admits (those no
/// completed run delivered), each version of an incident that changed during the run included.
pub fn detections_new(
    request: &ListRequest,
    fetch: &mut dyn Fetch,
    emit: &mut dyn FnMut(&str) -> Result<(), SkillError>,
    cursor: &mut Cursor,
) -> Result<String, SkillError> {
    detections_on(Pager::new(request), request, fetch, emit, Some(cursor))
}

/// [`detections`] with the pager given (tests give it a small window), through `cursor` if any.
pub(crate) fn detections_on(
    mut pager: Pager,
    request: &ListRequest,
    fetch: &mut dyn Fetch,
    emit: &mut dyn FnMut(&str) -> Result<(), SkillError>,
    mut cursor: Option<&mut Cursor>,
) -> Result<String, SkillError> {
    // Incidents are held as their serialized rows, a fraction of a parsed incident's size.
    let mut dedup: Dedup<Rows> = match cursor {
        Some(_) => Dedup::by_version(),
        None => Dedup::default(),
    };
    // A `$skip` duplicate arrives within a few incidents of the original (everything shifted by
    // the incidents that arrived meanwhile), so the latest `hold` incidents stay replaceable and
    // everything older leaves at once: memory is flat whatever the total.
    let hold = (request.page_size / 2).max(1);
    let remembered = request.page_size * 2;
    let mut rows = 0u64;
    let limit = request.limit.unwrap_or(usize::MAX);
    let mut send = |released: Vec<Released<Rows>>,
                    rows: &mut u64,
                    cursor: &mut Option<&mut Cursor>|
     -> Result<(), SkillError> {
        for incident in released {
            // An incremental run drops the versions a completed run delivered.
            if let Some(cursor) = cursor.as_deref_mut()
                && !cursor.admit(incident.id.as_deref(), incident.version)
            {
                continue;
            }
            for row in incident.item.iter() {
                emit(row)?;
                *rows += 1;
            }
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
            send(
                dedup.release_keyed(ready, remembered),
                &mut rows,
                &mut cursor,
            )
        };
        if pager.next_page_rows(fetch, &mut on_incident)?.is_none() {
            break;
        }
    }
    let incidents = dedup.accepted;
    send(dedup.release_keyed(usize::MAX, 0), &mut rows, &mut cursor)?;
    Ok(summary(request, pager.pages(), incidents, rows).to_string())
}

/// The summary of a run.
pub(crate) fn summary(
    request: &ListRequest,
    pages: usize,
    incidents: usize,
    rows: u64,
) -> serde_json::Value {
    json!({
        "api": request.api.service(),
        "filter": request.filter,
        "pages": pages,
        "incidents": incidents,
        "rows": rows,
    })
}
