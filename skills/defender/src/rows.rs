//! The normalized detection row: one per (incident, alert), the same columns and spellings
//! whichever API the incident came from.
//!
//! An incident without alerts (a redirected one, say) still gives one row, with every `alert_*`
//! column null: Spark SQL's `explode_outer`. Values are copied as the API returns them
//! (timestamps stay strings); Graph's camelCase enums get the legacy PascalCase spelling and its
//! source names the legacy ones, so rows from both APIs compare equal.

use serde_json::{Map, Value, json};

use crate::params::Api;

/// The row columns, in order.
pub const COLUMNS: &[&str] = &[
    "incident_id",
    "incident_name",
    "incident_url",
    "incident_severity",
    "incident_status",
    "incident_classification",
    "incident_determination",
    "incident_assigned_to",
    "incident_created_time",
    "incident_last_update_time",
    "incident_redirect_id",
    "incident_tags",
    "alert_id",
    "alert_title",
    "alert_category",
    "alert_severity",
    "alert_status",
    "alert_service_source",
    "alert_detection_source",
    "alert_creation_time",
    "alert_last_update_time",
    "alert_first_activity",
    "alert_last_activity",
    "alert_mitre_techniques",
];

/// Graph → legacy spellings of `serviceSource`.
pub const SERVICE_SOURCES: &[(&str, &str)] = &[
    ("microsoftDefenderForEndpoint", "MicrosoftDefenderATP"),
    ("microsoftDefenderForCloudApps", "MicrosoftCloudAppSecurity"),
    ("microsoftDefenderForOffice365", "OfficeATP"),
];

/// Graph → legacy spellings of `detectionSource`.
pub const DETECTION_SOURCES: &[(&str, &str)] = &[
    ("antivirus", "WindowsDefenderAv"),
    ("microsoftDefenderForEndpoint", "WindowsDefenderAtp"),
    ("microsoftDefenderForCloudApps", "MCAS"),
    ("microsoftDefenderForOffice365", "OfficeATP"),
];

/// Legacy and Graph field names of one incident or alert column.
struct Field {
    column: &'static str,
    legacy: &'static str,
    graph: &'static str,
    convert: Convert,
}

#[derive(Clone, Copy)]
enum Convert {
    /// Copied as is.
    Copy,
    /// Copied; a Graph camelCase enum becomes PascalCase.
    Enum,
    /// Like `Enum`, and Graph's `unknown` severity is the legacy `UnSpecified`.
    Severity,
    /// Numbers and strings as a string (ids differ in type between the APIs).
    Text,
    /// Through a Graph → legacy table.
    Table(&'static [(&'static str, &'static str)]),
    /// A list; null becomes an empty list.
    List,
}

const fn f(
    column: &'static str,
    legacy: &'static str,
    graph: &'static str,
    convert: Convert,
) -> Field {
    Field {
        column,
        legacy,
        graph,
        convert,
    }
}

const INCIDENT: &[Field] = &[
    f("incident_id", "incidentId", "id", Convert::Text),
    f(
        "incident_name",
        "incidentName",
        "displayName",
        Convert::Copy,
    ),
    f(
        "incident_url",
        "incidentUri",
        "incidentWebUrl",
        Convert::Copy,
    ),
    f(
        "incident_severity",
        "severity",
        "severity",
        Convert::Severity,
    ),
    f("incident_status", "status", "status", Convert::Enum),
    f(
        "incident_classification",
        "classification",
        "classification",
        Convert::Enum,
    ),
    f(
        "incident_determination",
        "determination",
        "determination",
        Convert::Enum,
    ),
    f(
        "incident_assigned_to",
        "assignedTo",
        "assignedTo",
        Convert::Copy,
    ),
    f(
        "incident_created_time",
        "createdTime",
        "createdDateTime",
        Convert::Copy,
    ),
    f(
        "incident_last_update_time",
        "lastUpdateTime",
        "lastUpdateDateTime",
        Convert::Copy,
    ),
    f(
        "incident_redirect_id",
        "redirectIncidentId",
        "redirectIncidentId",
        Convert::Text,
    ),
    f("incident_tags", "tags", "customTags", Convert::List),
];

const ALERT: &[Field] = &[
    f("alert_id", "alertId", "id", Convert::Text),
    f("alert_title", "title", "title", Convert::Copy),
    f("alert_category", "category", "category", Convert::Copy),
    f("alert_severity", "severity", "severity", Convert::Severity),
    f("alert_status", "status", "status", Convert::Enum),
    f(
        "alert_service_source",
        "serviceSource",
        "serviceSource",
        Convert::Table(SERVICE_SOURCES),
    ),
    f(
        "alert_detection_source",
        "detectionSource",
        "detectionSource",
        Convert::Table(DETECTION_SOURCES),
    ),
    f(
        "alert_creation_time",
        "creationTime",
        "createdDateTime",
        Convert::Copy,
    ),
    f(
        "alert_last_update_time",
        "lastUpdatedTime",
        "lastUpdateDateTime",
        Convert::Copy,
    ),
    f(
        "alert_first_activity",
        "firstActivity",
        "firstActivityDateTime",
        Convert::Copy,
    ),
    f(
        "alert_last_activity",
        "lastActivity",
        "lastActivityDateTime",
        Convert::Copy,
    ),
    f(
        "alert_mitre_techniques",
        "mitreTechniques",
        "mitreTechniques",
        Convert::List,
    ),
];

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
    fill(&mut incident_part, Some(incident), INCIDENT, api);
    if alerts.is_empty() {
        let mut row = incident_part;
        fill(&mut row, None, ALERT, api);
        return vec![row];
    }
    alerts
        .iter()
        .map(|alert| {
            let mut row = incident_part.clone();
            fill(&mut row, Some(alert), ALERT, api);
            row
        })
        .collect()
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
        assert_eq!(keys, COLUMNS);
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
        for column in COLUMNS.iter().filter(|c| c.starts_with("alert_")) {
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
}
