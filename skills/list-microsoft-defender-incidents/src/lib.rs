//! `list_microsoft_defender_incidents`: every incident in a rolling window, all pages, as the API
//! returns them (unknown fields kept), de-duplicated across pages.

use defender::paging::{list_all, list_result};
use defender::{HostFetch, ListRequest, bound_api, params::list_parameters, parse_input};
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
        info.services = vec!["defender".into(), "graph".into()];
        info.output_description =
            "{api, filter, pages, count, incidents: [incident objects as the API returns them]}"
                .into();
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input = parse_input(&input)?;
        let api = bound_api();
        let request = ListRequest::from_input(&input, api, jiff::Timestamp::now())?;
        // Incidents are held as their JSON text (re-written once, as a `Value` of each would be
        // serialized) and joined into the result, never as parsed trees.
        let (incidents, pages) = list_all(&request, &mut HostFetch)?;
        Ok(list_result(api, &request.filter, pages, &incidents))
    }
}

skillhost_guest::export_skill!(ListIncidents);
