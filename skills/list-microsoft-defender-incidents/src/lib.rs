//! `list_microsoft_defender_incidents`: every incident in a rolling window, all pages, as the API
//! returns them (unknown fields kept), de-duplicated across pages.

use defender::incremental::{self, HostState};
use defender::paging::{list_all, list_new, list_result};
use defender::{HostFetch, bound_api, params::list_parameters, parse_input};
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct ListIncidents;

impl Guest for ListIncidents {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "list_microsoft_defender_incidents",
            env!("CARGO_PKG_VERSION"),
            "Lists Microsoft Defender XDR incidents created or updated in a time window, following every page.",
        );
        info.name = "List Microsoft Defender incidents".into();
        info.parameters = list_parameters();
        info.parameters
            .extend(incremental::incremental_parameters());
        info.services = vec!["defender".into(), "graph".into()];
        info.output_description =
            "{api, filter, pages, count, incidents: [incident objects as the API returns them]}, and with `incremental` the cursor: {name, from, next, delivered, already_delivered}".into();
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input = parse_input(&input)?;
        let api = bound_api();
        let (request, cursor) =
            incremental::begin(&input, api, jiff::Timestamp::now(), &mut HostState)?;
        // Incidents are held as their JSON text (re-written once, as a `Value` of each would be
        // serialized) and joined into the result, never as parsed trees.
        let Some(mut cursor) = cursor else {
            let (incidents, pages) = list_all(&request, &mut HostFetch)?;
            return Ok(list_result(api, &request.filter, pages, &incidents));
        };
        let (incidents, pages) = list_new(&request, &mut HostFetch, &mut cursor)?;
        let result = list_result(api, &request.filter, pages, &incidents);
        // Staged: the host moves the cursor only once the result was delivered.
        cursor.stage(&mut HostState)?;
        Ok(incremental::with_cursor(result, &cursor.summary()))
    }
}

skillhost_guest::export_skill!(ListIncidents);
