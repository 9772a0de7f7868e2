//! The reference implementation over [`serde_json::Value`]: each page parsed into one tree per
//! incident, rows built as `Value` maps and serialized. It is the specification the fast path
//! ([`crate::rows`] and the private `page` and `incident` modules) is tested against byte for byte, the path the fast one
//! falls back to for the rare incident it declines (an object inside a copied value that repeats
//! a key), and the "before" of `examples/rows_bench.rs`.
//!
//! Everything here is the code the skills ran before the fast path, unchanged in behaviour.

use serde_json::{Map, Value, json};
use skillhost_guest::SkillError;

use crate::paging::{Body, Outcome, PageParse};
use crate::params::Api;
use crate::rows::{ALERT, Convert, Field, INCIDENT};

fn convert(value: Option<&Value>, api: Api, how: Convert) -> Value {
    let value = value.cloned().unwrap_or(Value::Null);
    match (how, api) {
        (Convert::List, _) if value.is_null() => json!([]),
        (Convert::Text, _) => match value {
            Value::Number(n) => Value::String(n.to_string()),
            other => other,
        },
        (Convert::Severity, Api::Graph) if value == "unknown" => json!("UnSpecified"),
        (Convert::Enum | Convert::Severity, Api::Graph) => match value.as_str() {
            Some(text) => json!(pascal_case(text)),
            None => value,
        },
        (Convert::Table(table), Api::Graph) => match value.as_str() {
            Some(text) => json!(
                table
                    .iter()
                    .find(|(g, _)| *g == text)
                    .map(|(_, l)| *l)
                    .unwrap_or(text)
            ),
            None => value,
        },
        _ => value,
    }
}

/// `inProgress` → `InProgress`.
pub fn pascal_case(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => format!("{}{}", first.to_ascii_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

fn fill(row: &mut Map<String, Value>, object: Option<&Value>, fields: &[Field], api: Api) {
    for field in fields {
        let name = match api {
            Api::Defender => field.legacy,
            Api::Graph => field.graph,
        };
        let value = match object {
            Some(object) => convert(object.get(name), api, field.convert),
            None => Value::Null,
        };
        row.insert(field.column.to_string(), value);
    }
}

/// The rows of one incident: one per alert, or one with null alert columns when it has none.
pub fn detection_rows(incident: &Value, api: Api) -> Vec<Map<String, Value>> {
    let alerts: &[Value] = incident
        .get("alerts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut incident_part = Map::new();
    fill(&mut incident_part, Some(incident), &INCIDENT, api);
    if alerts.is_empty() {
        let mut row = incident_part;
        fill(&mut row, None, &ALERT, api);
        return vec![row];
    }
    alerts
        .iter()
        .map(|alert| {
            let mut row = incident_part.clone();
            fill(&mut row, Some(alert), &ALERT, api);
            row
        })
        .collect()
}

/// The rows of one incident, each serialized.
pub fn serialized_rows(incident: &Value, api: Api) -> Vec<String> {
    detection_rows(incident, api)
        .into_iter()
        .map(|row| Value::Object(row).to_string())
        .collect()
}

/// Refuses what is not an incident of `api`: an object with its identity (`incidentId` on the
/// Defender API, `id` on Graph) and, if it has alerts, a list of alerts each with theirs
/// (`alertId`, `id`). A row without an incident id must never leave the skill.
pub fn check_shape(incident: &Value, api: Api) -> Result<(), String> {
    let (incident_key, alert_key) = match api {
        Api::Defender => ("incidentId", "alertId"),
        Api::Graph => ("id", "id"),
    };
    let has_id = |object: &Value, key: &str| match object.get(key) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(_)) => true,
        _ => false,
    };
    if !incident.is_object() || !has_id(incident, incident_key) {
        return Err(crate::incident::no_incident_id(api));
    }
    match incident.get("alerts") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(alerts)) => match alerts.iter().find(|a| !has_id(a, alert_key)) {
            None => Ok(()),
            Some(_) => Err(crate::incident::no_alert_id(api)),
        },
        Some(_) => Err(crate::incident::ALERTS_NOT_A_LIST.to_string()),
    }
}

/// An incident's id as text, whichever API it came from.
pub fn incident_id(incident: &Value) -> Option<String> {
    let legacy = incident.get("incidentId").filter(|v| !v.is_null());
    match legacy.or_else(|| incident.get("id"))? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An incident's `lastUpdateTime` (legacy) or `lastUpdateDateTime` (Graph).
pub fn last_update(incident: &Value) -> Option<jiff::Timestamp> {
    incident
        .get("lastUpdateTime")
        .or_else(|| incident.get("lastUpdateDateTime"))?
        .as_str()?
        .parse()
        .ok()
}

/// The detections skill's run as it was: pages parsed into `Value`s, rows built as `Value`
/// maps and serialized ([`crate::detections::detections`] is its fast equivalent).
pub fn detections(
    request: &crate::ListRequest,
    fetch: &mut dyn crate::Fetch,
    emit: &mut dyn FnMut(&str) -> Result<(), SkillError>,
) -> Result<String, SkillError> {
    let api = request.api;
    let mut pager = crate::Pager::new(request);
    let mut dedup: crate::paging::Dedup<Vec<String>> = crate::paging::Dedup::default();
    let hold = (request.page_size / 2).max(1);
    let remembered = request.page_size * 2;
    let mut rows = 0u64;
    let limit = request.limit.unwrap_or(usize::MAX);
    let mut send = |released: Vec<Vec<String>>, rows: &mut u64| -> Result<(), SkillError> {
        for row in released.into_iter().flatten() {
            emit(&row)?;
            *rows += 1;
        }
        Ok(())
    };
    while dedup.accepted < limit {
        let mut on_incident = |incident: Value| {
            if dedup.accepted >= limit {
                return Ok(());
            }
            let serialized = serialized_rows(&incident, api);
            dedup.accept(incident_id(&incident), last_update(&incident), serialized);
            let ready = dedup.pending().saturating_sub(hold);
            send(dedup.release(ready, remembered), &mut rows)
        };
        if pager.next_page_each(fetch, &mut on_incident)?.is_none() {
            break;
        }
    }
    let incidents = dedup.accepted;
    send(dedup.release(usize::MAX, 0), &mut rows)?;
    Ok(crate::detections::summary(request, pager.pages(), incidents, rows).to_string())
}

/// Lists every incident of `request` as `Value`s, de-duplicated (the list skill as it was;
/// [`crate::paging::list_all`] is its fast equivalent).
pub fn list_all(
    request: &crate::ListRequest,
    fetch: &mut dyn crate::Fetch,
) -> Result<(Vec<Value>, usize), SkillError> {
    let mut pager = crate::Pager::new(request);
    let mut dedup = crate::paging::Dedup::default();
    while let Some(page) = pager.next_page(fetch)? {
        for incident in page {
            if request.limit.is_some_and(|l| dedup.accepted >= l) {
                break;
            }
            dedup.accept(incident_id(&incident), last_update(&incident), incident);
        }
        if request.limit.is_some_and(|l| dedup.accepted >= l) {
            break;
        }
    }
    Ok((dedup.release(usize::MAX, 0), pager.pages()))
}

/// The list skill's result as it was built.
pub fn list_result(api: Api, filter: &str, pages: usize, incidents: Vec<Value>) -> String {
    json!({
        "api": api.service(),
        "filter": filter,
        "pages": pages,
        "count": incidents.len(),
        "incidents": incidents,
    })
    .to_string()
}

/// Parses a page from `body` byte by byte into one `Value` per incident, handing each out as
/// soon as it is parsed (the page parse of the skills before the fast path).
pub(crate) fn read_page(
    body: &mut dyn Body,
    api: Api,
    on_incident: &mut dyn FnMut(Value) -> Result<(), SkillError>,
) -> Outcome {
    let mut visitor = PageVisitor {
        api,
        on_incident,
        count: 0,
        saw_value: false,
        next_link: None,
        stopped: None,
        malformed: None,
    };
    let parsed = serde::de::DeserializeSeed::deserialize(
        &mut visitor,
        &mut serde_json::Deserializer::from_reader(&mut *body),
    );
    let parse = if let Some(error) = visitor.stopped.take() {
        PageParse::Stopped(error)
    } else {
        match parsed {
            Ok(()) if visitor.saw_value => PageParse::Page {
                count: visitor.count,
                next_link: visitor.next_link,
            },
            Ok(()) => PageParse::NoValue,
            Err(e) => match visitor.malformed.take() {
                Some(why) => PageParse::NotIncident(why),
                None => PageParse::Invalid(e.to_string()),
            },
        }
    };
    // Read byte by byte, this parse never reads past what it needs: whatever error the body
    // reports was met by the parse.
    Outcome {
        parse,
        body_error_matters: true,
    }
}

/// Walks a page object (`{"value": [...], "@odata.nextLink": ...}`), handing each incident out
/// as soon as it is parsed.
struct PageVisitor<'a> {
    api: Api,
    on_incident: &'a mut dyn FnMut(Value) -> Result<(), SkillError>,
    count: usize,
    saw_value: bool,
    next_link: Option<String>,
    /// The callback's error, which stopped the parse.
    stopped: Option<SkillError>,
    /// Why an element of `value` is not an incident of the API, which stopped the parse.
    malformed: Option<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for &mut PageVisitor<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for &mut PageVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an incidents page object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "value" => {
                    self.saw_value = true;
                    map.next_value_seed(Incidents(&mut *self))?;
                }
                "@odata.nextLink" => self.next_link = map.next_value::<Option<String>>()?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Incidents<'a, 'b>(&'a mut PageVisitor<'b>);

impl<'de> serde::de::DeserializeSeed<'de> for Incidents<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Incidents<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of incidents")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(incident) = seq.next_element::<Value>()? {
            if let Err(why) = check_shape(&incident, self.0.api) {
                self.0.malformed = Some(why);
                return Err(serde::de::Error::custom("not an incident"));
            }
            self.0.count += 1;
            if let Err(error) = (self.0.on_incident)(incident) {
                self.0.stopped = Some(error);
                return Err(serde::de::Error::custom("stopped by the caller"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy() -> Value {
        json!({
            "incidentId": 924565, "incidentUri": "https://security.microsoft.com/incidents/924565",
            "redirectIncidentId": null, "incidentName": "Ransomware activity",
            "createdTime": "2020-09-06T14:46:57.0733333Z", "lastUpdateTime": "2020-09-06T14:46:57.29Z",
            "assignedTo": null, "classification": "Unknown", "determination": "NotAvailable",
            "status": "Active", "severity": "Medium", "tags": [], "comments": [],
            "alerts": [{
                "alertId": "caD70CFEE2-1F54-32DB-9988-3A868A1EBFAC", "serviceSource": "MicrosoftCloudAppSecurity",
                "creationTime": "2020-09-06T14:46:55.7182276Z", "lastUpdatedTime": "2020-09-06T14:46:57.2433333Z",
                "firstActivity": "2020-09-04T05:22:59Z", "lastActivity": "2020-09-04T05:22:59Z",
                "title": "Ransomware activity", "category": "Impact", "status": "New", "severity": "Medium",
                "detectionSource": "MCAS", "mitreTechniques": ["T1486"], "futureField": 1
            }]
        })
    }

    fn graph() -> Value {
        json!({
            "id": "924565", "incidentWebUrl": "https://security.microsoft.com/incidents/924565",
            "redirectIncidentId": null, "displayName": "Ransomware activity",
            "createdDateTime": "2020-09-06T14:46:57.0733333Z", "lastUpdateDateTime": "2020-09-06T14:46:57.29Z",
            "assignedTo": null, "classification": "unknown", "determination": "notAvailable",
            "status": "active", "severity": "medium", "customTags": [],
            "alerts": [{
                "id": "caD70CFEE2-1F54-32DB-9988-3A868A1EBFAC", "serviceSource": "microsoftDefenderForCloudApps",
                "createdDateTime": "2020-09-06T14:46:55.7182276Z", "lastUpdateDateTime": "2020-09-06T14:46:57.2433333Z",
                "firstActivityDateTime": "2020-09-04T05:22:59Z", "lastActivityDateTime": "2020-09-04T05:22:59Z",
                "title": "Ransomware activity", "category": "Impact", "status": "new", "severity": "medium",
                "detectionSource": "microsoftDefenderForCloudApps", "mitreTechniques": ["T1486"]
            }]
        })
    }

    #[test]
    fn a_legacy_incident_gives_one_row_per_alert_in_column_order() {
        let rows = detection_rows(&legacy(), Api::Defender);
        assert_eq!(rows.len(), 1);
        let keys: Vec<&str> = rows[0].keys().map(String::as_str).collect();
        assert_eq!(keys, crate::COLUMNS);
        assert_eq!(rows[0]["incident_id"], "924565");
        assert_eq!(rows[0]["alert_service_source"], "MicrosoftCloudAppSecurity");
        assert_eq!(rows[0]["alert_mitre_techniques"], json!(["T1486"]));
    }

    #[test]
    fn graph_and_legacy_forms_of_one_incident_give_identical_rows() {
        assert_eq!(
            detection_rows(&graph(), Api::Graph),
            detection_rows(&legacy(), Api::Defender)
        );
    }

    #[test]
    fn an_incident_without_alerts_gives_one_row_with_null_alert_columns() {
        let mut redirected = legacy();
        redirected["status"] = json!("Redirected");
        redirected["redirectIncidentId"] = json!(924566);
        redirected["alerts"] = json!([]);
        let rows = detection_rows(&redirected, Api::Defender);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["incident_redirect_id"], "924566");
        for column in crate::COLUMNS.iter().filter(|c| c.starts_with("alert_")) {
            assert_eq!(rows[0][*column], Value::Null, "{column}");
        }
    }

    #[test]
    fn graph_unknown_severity_is_legacy_unspecified() {
        let mut incident = graph();
        incident["severity"] = json!("unknown");
        assert_eq!(
            detection_rows(&incident, Api::Graph)[0]["incident_severity"],
            "UnSpecified"
        );
    }

    #[test]
    fn objects_without_their_identity_or_of_the_other_api_are_not_incidents() {
        assert_eq!(
            check_shape(&json!({"incidentId": 7}), Api::Defender),
            Ok(())
        );
        assert_eq!(
            check_shape(&json!({"id": "7", "alerts": [{"id": "a"}]}), Api::Graph),
            Ok(())
        );
        assert!(check_shape(&json!({"incidentId": 7}), Api::Graph).is_err());
        assert!(check_shape(&json!({"id": "7"}), Api::Defender).is_err());
        assert!(check_shape(&json!({"incidentId": ""}), Api::Defender).is_err());
        assert!(
            check_shape(
                &json!({"incidentId": 7, "alerts": [{"title": "x"}]}),
                Api::Defender
            )
            .is_err()
        );
        assert!(check_shape(&json!({"incidentId": 7, "alerts": {}}), Api::Defender).is_err());
        assert!(check_shape(&json!("7"), Api::Defender).is_err());
    }
}
