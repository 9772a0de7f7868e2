//! The normalized detection row: one per (incident, alert), the same columns and spellings
//! whichever API the incident came from.
//!
//! An incident without alerts (a redirected one, say) still gives one row, with every `alert_*`
//! column null: Spark SQL's `explode_outer`. Values are copied as the API returns them
//! (timestamps stay strings); Graph's camelCase enums get the legacy PascalCase spelling and its
//! source names the legacy ones, so rows from both APIs compare equal.
//!
//! Rows are written as JSON text straight from the parsed incident (the private `incident` module), each
//! exactly the text [`crate::reference::detection_rows`] gives once serialized: the incident's
//! columns are written once and copied in front of each alert's.

use crate::incident::{ALERT_KEYS, Alerts, INCIDENT_KEYS, Keys, ParsedIncident};
use crate::json::{Cell, escape_into, write_number, write_str};
use crate::params::Api;

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
pub(crate) struct Field {
    /// The column.
    pub column: &'static str,
    /// The column as a JSON key followed by its colon: `"incident_id":`.
    pub key: &'static str,
    /// The field's name on the Defender API.
    pub legacy: &'static str,
    /// The field's name on Graph.
    pub graph: &'static str,
    /// How its value becomes the column's.
    pub convert: Convert,
}

#[derive(Clone, Copy)]
pub(crate) enum Convert {
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

macro_rules! field {
    ($column:literal, $legacy:literal, $graph:literal, $convert:expr) => {
        Field {
            column: $column,
            key: concat!("\"", $column, "\":"),
            legacy: $legacy,
            graph: $graph,
            convert: $convert,
        }
    };
}

pub(crate) const INCIDENT: [Field; 12] = [
    field!("incident_id", "incidentId", "id", Convert::Text),
    field!(
        "incident_name",
        "incidentName",
        "displayName",
        Convert::Copy
    ),
    field!(
        "incident_url",
        "incidentUri",
        "incidentWebUrl",
        Convert::Copy
    ),
    field!(
        "incident_severity",
        "severity",
        "severity",
        Convert::Severity
    ),
    field!("incident_status", "status", "status", Convert::Enum),
    field!(
        "incident_classification",
        "classification",
        "classification",
        Convert::Enum
    ),
    field!(
        "incident_determination",
        "determination",
        "determination",
        Convert::Enum
    ),
    field!(
        "incident_assigned_to",
        "assignedTo",
        "assignedTo",
        Convert::Copy
    ),
    field!(
        "incident_created_time",
        "createdTime",
        "createdDateTime",
        Convert::Copy
    ),
    field!(
        "incident_last_update_time",
        "lastUpdateTime",
        "lastUpdateDateTime",
        Convert::Copy
    ),
    field!(
        "incident_redirect_id",
        "redirectIncidentId",
        "redirectIncidentId",
        Convert::Text
    ),
    field!("incident_tags", "tags", "customTags", Convert::List),
];

pub(crate) const ALERT: [Field; 12] = [
    field!("alert_id", "alertId", "id", Convert::Text),
    field!("alert_title", "title", "title", Convert::Copy),
    field!("alert_category", "category", "category", Convert::Copy),
    field!("alert_severity", "severity", "severity", Convert::Severity),
    field!("alert_status", "status", "status", Convert::Enum),
    field!(
        "alert_service_source",
        "serviceSource",
        "serviceSource",
        Convert::Table(SERVICE_SOURCES)
    ),
    field!(
        "alert_detection_source",
        "detectionSource",
        "detectionSource",
        Convert::Table(DETECTION_SOURCES)
    ),
    field!(
        "alert_creation_time",
        "creationTime",
        "createdDateTime",
        Convert::Copy
    ),
    field!(
        "alert_last_update_time",
        "lastUpdatedTime",
        "lastUpdateDateTime",
        Convert::Copy
    ),
    field!(
        "alert_first_activity",
        "firstActivity",
        "firstActivityDateTime",
        Convert::Copy
    ),
    field!(
        "alert_last_activity",
        "lastActivity",
        "lastActivityDateTime",
        Convert::Copy
    ),
    field!(
        "alert_mitre_techniques",
        "mitreTechniques",
        "mitreTechniques",
        Convert::List
    ),
];

const COLUMN_ARRAY: [&str; 24] = {
    let mut out = [""; 24];
    let mut i = 0;
    while i < 12 {
        out[i] = INCIDENT[i].column;
        out[12 + i] = ALERT[i].column;
        i += 1;
    }
    out
};

/// The row columns, in order.
pub const COLUMNS: &[&str] = &COLUMN_ARRAY;

/// For each field, the slot of its legacy and of its Graph name in `keys` (checked at build
/// time: a name missing from the key table does not compile).
const fn slots<const N: usize>(fields: &[Field; 12], keys: &Keys<N>) -> [[usize; 2]; 12] {
    let mut out = [[0; 2]; 12];
    let mut i = 0;
    while i < 12 {
        out[i] = [keys.slot(fields[i].legacy), keys.slot(fields[i].graph)];
        i += 1;
    }
    out
}

const INCIDENT_SLOTS: [[usize; 2]; 12] = slots(&INCIDENT, &INCIDENT_KEYS);
const ALERT_SLOTS: [[usize; 2]; 12] = slots(&ALERT, &ALERT_KEYS);

/// The serialized rows of one incident, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    text: String,
    ends: Vec<usize>,
}

impl Rows {
    /// The rows, each one JSON object.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let row = self.text.get(start..end).unwrap_or_default();
            start = end;
            row
        })
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Rows serialized elsewhere (the reference path).
    pub(crate) fn from_strings(rows: Vec<String>) -> Self {
        let mut out = Rows::default();
        for row in rows {
            out.text.push_str(&row);
            out.ends.push(out.text.len());
        }
        out
    }
}

/// One incident's rows, with what de-duplication needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionIncident {
    /// Its id as text ([`crate::reference::incident_id`]).
    pub id: Option<String>,
    /// Its last update ([`crate::reference::last_update`]).
    pub version: Option<jiff::Timestamp>,
    /// Its rows.
    pub rows: Rows,
}

/// Bytes an incident's part of a row usually takes (it is measured before the rest is sized).
const INCIDENT_PART: usize = 1024;

/// Bytes an alert's part of a row usually takes (a larger one grows the text once).
const ALERT_PART: usize = 640;

/// The most the rows' text is sized for ahead of writing them (beyond, it grows as written).
const RESERVE_MAX: usize = 1 << 20;

/// Writes the rows of a parsed incident whose shape was checked.
pub(crate) fn write_rows(incident: &ParsedIncident, api: Api) -> Rows {
    let which = match api {
        Api::Defender => 0,
        Api::Graph => 1,
    };
    let scratch = incident.scratch.as_str();
    let alerts = match &incident.alerts {
        Alerts::List(alerts) => alerts.as_slice(),
        _ => &[],
    };
    let rows = alerts.len().max(1);
    let mut text = String::with_capacity(INCIDENT_PART);
    let mut ends = Vec::with_capacity(rows);
    text.push('{');
    for (i, field) in INCIDENT.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(field.key);
        let cell = &incident.cells[INCIDENT_SLOTS[i][which]];
        write_value(&mut text, cell, api, field.convert, scratch);
    }
    let prefix = text.len();
    // Every row repeats the incident's part: the text is sized once from it, not doubled as
    // the rows are written (up to [`RESERVE_MAX`]: the count and sizes come from upstream).
    let want = prefix
        .saturating_add(ALERT_PART)
        .saturating_mul(rows)
        .min(RESERVE_MAX);
    text.reserve(want.saturating_sub(prefix));
    if alerts.is_empty() {
        for field in &ALERT {
            text.push(',');
            text.push_str(field.key);
            text.push_str("null");
        }
        text.push('}');
        ends.push(text.len());
    }
    for (n, alert) in alerts.iter().enumerate() {
        if n > 0 {
            text.extend_from_within(..prefix);
        }
        for (i, field) in ALERT.iter().enumerate() {
            text.push(',');
            text.push_str(field.key);
            let cell = &alert.cells[ALERT_SLOTS[i][which]];
            write_value(&mut text, cell, api, field.convert, scratch);
        }
        text.push('}');
        ends.push(text.len());
    }
    Rows { text, ends }
}

/// Writes one column's value: [`crate::reference`]'s `convert`, then serialization.
fn write_value(out: &mut String, cell: &Cell, api: Api, how: Convert, scratch: &str) {
    let graph = api == Api::Graph;
    match (how, cell) {
        (Convert::List, Cell::Absent | Cell::Null) => out.push_str("[]"),
        (Convert::Text, Cell::Num(n)) => {
            out.push('"');
            write_number(out, n);
            out.push('"');
        }
        (Convert::Severity, Cell::Str(s)) if graph && s == "unknown" => {
            out.push_str("\"UnSpecified\"")
        }
        (Convert::Enum | Convert::Severity, Cell::Str(s)) if graph => write_pascal_case(out, s),
        (Convert::Table(table), Cell::Str(s)) if graph => {
            let legacy = table
                .iter()
                .find(|(g, _)| *g == s.as_ref())
                .map_or(s.as_ref(), |(_, l)| *l);
            write_str(out, legacy)
        }
        _ => cell.write(out, scratch),
    }
}

/// Writes `inProgress` as `"InProgress"`: the first character in ASCII upper case.
fn write_pascal_case(out: &mut String, value: &str) {
    let mut chars = value.chars();
    out.push('"');
    if let Some(first) = chars.next() {
        let mut buffer = [0; 4];
        escape_into(out, first.to_ascii_uppercase().encode_utf8(&mut buffer));
        escape_into(out, chars.as_str());
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_the_incident_then_the_alert_fields() {
        assert_eq!(COLUMNS.len(), 24);
        assert_eq!(COLUMNS[0], "incident_id");
        assert_eq!(COLUMNS[12], "alert_id");
        assert_eq!(COLUMNS[23], "alert_mitre_techniques");
        for field in INCIDENT.iter().chain(&ALERT) {
            assert_eq!(field.key, format!("\"{}\":", field.column));
        }
    }

    #[test]
    fn pascal_case_is_the_reference_one() {
        for text in [
            "inProgress",
            "",
            "a",
            "é",
            "ünknown",
            "\"q",
            "\u{0}x",
            "Already",
        ] {
            let mut out = String::new();
            write_pascal_case(&mut out, text);
            let expected = serde_json::to_string(&crate::reference::pascal_case(text)).unwrap();
            assert_eq!(out, expected, "{text:?}");
        }
    }
}
