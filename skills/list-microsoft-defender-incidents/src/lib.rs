//! `list_microsoft_defender_incidents`: every incident in a rolling window, all pages, as the API
//! returns them (unknown fields kept), de-duplicated across pages.

use defender::{
    HostFetch, ListRequest, bound_api, paging::list_all, params::list_parameters, parse_input,
};
use serde_json::json;
use skillhost_guest::{Guest, SkillError, SkillInfo};

struct ListIncidents;

impl Guest for ListIncidents {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "list_microsoft_defender_incidents",
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
        let (incidents, pages) = list_all(&request, &mut HostFetch)?;
        Ok(json!({
            "api": api.service(),
            "filter": request.filter,
            "pages": pages,
            "count": incidents.len(),
            "incidents": incidents,
        })
        .to_string())
    }
}

skillhost_guest::export_skill!(ListIncidents);
