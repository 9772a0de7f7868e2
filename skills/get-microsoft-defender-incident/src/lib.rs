//! `get_microsoft_defender_incident`: one incident with all its alerts, devices and entities.
//! A missing incident is a not-found error, never an empty success.

use defender::paging::encode;
use defender::{Api, api_error, bound_api, fetch_error, parse_input};
use serde_json::{Value, json};
use skillhost_guest::{Guest, ParamKind, ParamSpec, SkillError, SkillInfo};

struct GetIncident;

impl Guest for GetIncident {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "get_microsoft_defender_incident",
            env!("CARGO_PKG_VERSION"),
            "Gets one Microsoft Defender XDR incident by id, with its alerts, devices and entities.",
        );
        info.name = "Get a Microsoft Defender incident".into();
        info.parameters = vec![ParamSpec::new(
            "incident_id",
            ParamKind::Text,
            true,
            "The incident's id (a positive integer on the Defender API).",
        )];
        info.services = vec!["defender".into(), "graph".into()];
        info.output_description = "{api, incident: {the incident object, alerts included}}".into();
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input = parse_input(&input)?;
        let id = input["incident_id"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_string();
        let api = bound_api();
        let path = match api {
            Api::Defender => {
                if id.is_empty()
                    || !id.bytes().all(|b| b.is_ascii_digit())
                    || id.bytes().all(|b| b == b'0')
                {
                    return Err(SkillError::InvalidInput(format!(
                        "incident_id must be a positive integer on the Defender API, not {id:?}"
                    )));
                }
                format!("/api/incidents/{id}")
            }
            Api::Graph => {
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err(SkillError::InvalidInput(format!(
                        "incident_id must be letters, digits and dashes, not {id:?}"
                    )));
                }
                format!("/v1.0/security/incidents/{}?$expand=alerts", encode(&id))
            }
        };
        // The whole answer through `http.send`: a body cut short or stalled is fetched again by
        // the host before any of it reaches the skill.
        let response = skillhost_guest::get(api.service(), &path).map_err(fetch_error)?;
        let (status, body) = (response.status, response.body);
        if status == 404 {
            return Err(SkillError::NotFound(format!(
                "incident {id} was not found (check the id and the connection's tenant)"
            )));
        }
        if status != 200 {
            return Err(api_error(api, status, &body));
        }
        let mut incident: Value = serde_json::from_slice(&body).map_err(|e| {
            SkillError::Upstream(skillhost_guest::UpstreamError {
                status,
                code: "MalformedResponse".into(),
                message: format!("the incident was not valid JSON ({e})"),
            })
        })?;
        if let Value::Object(map) = &mut incident {
            map.remove("@odata.context");
        }
        Ok(json!({ "api": api.service(), "incident": incident }).to_string())
    }
}

skillhost_guest::export_skill!(GetIncident);
