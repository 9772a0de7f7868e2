//! One incident parsed from the page text into only what the skills read of it, borrowing
//! strings from the text.
//!
//! - [`ParsedIncident`] (detections): the values of the row columns and of de-duplication, for
//!   the incident and each of its alerts; everything else is validated and skipped.
//! - [`ListedParse`] (list): the whole incident re-written in the form a `Value` would serialize
//!   it to, with its identity, version and the identities of its alerts noted on the way.
//!
//! Both keep the last of a repeated key, as a `Value` does. A value copied into the output whose
//! objects repeat a key (where a `Value` keeps the last value at the first key's place) sets
//! `duplicate`, and the caller parses that incident into a `Value` instead.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::json::{Cell, INCIDENT_LEVEL, Skip, Transcode, enter};
use crate::params::Api;

/// Why an incident is refused: no identity.
pub(crate) fn no_incident_id(api: Api) -> String {
    let key = match api {
        Api::Defender => "incidentId",
        Api::Graph => "id",
    };
    format!(
        "the incidents page holds an object without `{key}`, which is not an incident of the {} API",
        api.service()
    )
}

/// Why an incident is refused: an alert without identity.
pub(crate) fn no_alert_id(api: Api) -> String {
    let key = match api {
        Api::Defender => "alertId",
        Api::Graph => "id",
    };
    format!(
        "an incident of the page has an alert without `{key}`, which is not an alert of the {} API",
        api.service()
    )
}

/// Why an incident is refused: `alerts` is not a list.
pub(crate) const ALERTS_NOT_A_LIST: &str =
    "an incident of the page has `alerts` that is not a list";

/// Keys looked up by a quick tag (length, first and last byte) before the string comparison.
pub(crate) struct Keys<const N: usize> {
    names: [&'static str; N],
    tags: [u32; N],
}

const fn tag(name: &[u8]) -> u32 {
    match name {
        [] => 0,
        [first, .., last] => ((name.len() as u32) << 16) | ((*first as u32) << 8) | *last as u32,
        [only] => (1 << 16) | ((*only as u32) << 8) | *only as u32,
    }
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl<const N: usize> Keys<N> {
    const fn new(names: [&'static str; N]) -> Self {
        let mut tags = [0; N];
        let mut i = 0;
        while i < N {
            tags[i] = tag(names[i].as_bytes());
            i += 1;
        }
        Keys { names, tags }
    }

    /// The slot of `name`; a name missing from the table stops the build.
    pub(crate) const fn slot(&self, name: &str) -> usize {
        let mut i = 0;
        while i < N {
            if same(self.names[i], name) {
                return i;
            }
            i += 1;
        }
        panic!("a field name is missing from its key table")
    }

    /// The slot of `key`, if it is one of the table's.
    pub(crate) fn find(&self, key: &str) -> Option<usize> {
        let wanted = tag(key.as_bytes());
        (0..N).find(|&i| self.tags[i] == wanted && self.names[i] == key)
    }
}

/// The incident keys the rows and de-duplication read, of both APIs.
pub(crate) const INCIDENT_KEYS: Keys<18> = Keys::new([
    "incidentId",
    "id",
    "incidentName",
    "displayName",
    "incidentUri",
    "incidentWebUrl",
    "severity",
    "status",
    "classification",
    "determination",
    "assignedTo",
    "createdTime",
    "createdDateTime",
    "lastUpdateTime",
    "lastUpdateDateTime",
    "redirectIncidentId",
    "tags",
    "customTags",
]);

/// The alert keys the rows and the identity check read, of both APIs.
pub(crate) const ALERT_KEYS: Keys<17> = Keys::new([
    "alertId",
    "id",
    "title",
    "category",
    "severity",
    "status",
    "serviceSource",
    "detectionSource",
    "creationTime",
    "createdDateTime",
    "lastUpdatedTime",
    "lastUpdateDateTime",
    "firstActivity",
    "firstActivityDateTime",
    "lastActivity",
    "lastActivityDateTime",
    "mitreTechniques",
]);

const INCIDENT_ID: usize = INCIDENT_KEYS.slot("incidentId");
const ID: usize = INCIDENT_KEYS.slot("id");
const LAST_UPDATE_TIME: usize = INCIDENT_KEYS.slot("lastUpdateTime");
const LAST_UPDATE_DATE_TIME: usize = INCIDENT_KEYS.slot("lastUpdateDateTime");
const ALERT_ID: usize = ALERT_KEYS.slot("alertId");
const ALERT_GRAPH_ID: usize = ALERT_KEYS.slot("id");

/// The identity as text: `incidentId` unless absent or null, else `id`; a string or a number.
fn id_text(incident_id: &Cell, id: &Cell) -> Option<String> {
    let cell = match incident_id {
        Cell::Absent | Cell::Null => id,
        other => other,
    };
    match cell {
        Cell::Str(s) => Some(s.to_string()),
        Cell::Num(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The version: `lastUpdateTime` if present (even null), else `lastUpdateDateTime`.
fn version(last_update_time: &Cell, last_update_date_time: &Cell) -> Option<jiff::Timestamp> {
    let cell = match last_update_time {
        Cell::Absent => last_update_date_time,
        other => other,
    };
    cell.as_str()?.parse().ok()
}

/// An incident's alerts, as far as the rows and the identity check need them.
#[derive(Debug)]
pub(crate) enum Alerts<'de> {
    /// No `alerts` key.
    Absent,
    /// `"alerts": null`.
    Null,
    /// Anything but a list or null.
    NotList,
    /// The alerts.
    List(Vec<ParsedAlert<'de>>),
}

/// One element of `alerts`.
#[derive(Debug)]
pub(crate) struct ParsedAlert<'de> {
    /// Whether it was an object (anything else is refused).
    pub object: bool,
    /// The values of [`ALERT_KEYS`], by slot.
    pub cells: [Cell<'de>; 17],
}

/// An incident as the detections skill needs it.
#[derive(Debug)]
pub(crate) struct ParsedIncident<'de> {
    /// Whether it was an object (anything else is refused).
    pub object: bool,
    /// The values of [`INCIDENT_KEYS`], by slot.
    pub cells: [Cell<'de>; 18],
    /// Its alerts.
    pub alerts: Alerts<'de>,
    /// The text of the lists and objects among the cells ([`Cell::Json`]).
    pub scratch: String,
    /// An object in a copied value repeats a key: parse the incident into a `Value` instead.
    pub duplicate: bool,
}

impl ParsedIncident<'_> {
    /// The same check, and the same words, as [`crate::reference::check_shape`].
    pub(crate) fn check_shape(&self, api: Api) -> Result<(), String> {
        let (incident_key, alert_key) = match api {
            Api::Defender => (INCIDENT_ID, ALERT_ID),
            Api::Graph => (ID, ALERT_GRAPH_ID),
        };
        if !self.object || !self.cells[incident_key].is_id() {
            return Err(no_incident_id(api));
        }
        match &self.alerts {
            Alerts::Absent | Alerts::Null => Ok(()),
            Alerts::List(alerts) => {
                if alerts
                    .iter()
                    .all(|a| a.object && a.cells[alert_key].is_id())
                {
                    Ok(())
                } else {
                    Err(no_alert_id(api))
                }
            }
            Alerts::NotList => Err(ALERTS_NOT_A_LIST.to_string()),
        }
    }

    /// As [`crate::reference::incident_id`].
    pub(crate) fn id(&self) -> Option<String> {
        id_text(&self.cells[INCIDENT_ID], &self.cells[ID])
    }

    /// As [`crate::reference::last_update`].
    pub(crate) fn last_update(&self) -> Option<jiff::Timestamp> {
        version(
            &self.cells[LAST_UPDATE_TIME],
            &self.cells[LAST_UPDATE_DATE_TIME],
        )
    }
}

/// Implements the visitor methods of every scalar as "not what was wanted": the value is
/// consumed and `$value` returned.
macro_rules! scalars {
    ($value:ty, $not:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            Ok($not)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            Ok($not)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$value, E> {
            Ok($not)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            Ok($not)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<$value, E> {
            Ok($not)
        }
    };
}

/// What a key of an incident or alert object is to the capture.
enum Slot {
    Cell(usize),
    Alerts,
    Other,
}

/// Finds a key's slot in `keys` without keeping the key.
struct SlotOf<'k, const N: usize> {
    keys: &'k Keys<N>,
    /// Whether `alerts` is a slot of its own (incidents).
    alerts: bool,
}

impl<'de, const N: usize> DeserializeSeed<'de> for SlotOf<'_, N> {
    type Value = Slot;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Slot, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for SlotOf<'_, N> {
    type Value = Slot;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Slot, E> {
        Ok(match self.keys.find(key) {
            Some(slot) => Slot::Cell(slot),
            None if self.alerts && key == "alerts" => Slot::Alerts,
            None => Slot::Other,
        })
    }
}

/// What the nested parts of one incident share while it is parsed.
struct Shared<'a, 'de> {
    scratch: &'a mut String,
    keys: &'a mut Vec<std::borrow::Cow<'de, str>>,
    duplicate: &'a mut bool,
}

impl<'de> Shared<'_, 'de> {
    fn reborrow(&mut self) -> Shared<'_, 'de> {
        Shared {
            scratch: self.scratch,
            keys: self.keys,
            duplicate: self.duplicate,
        }
    }

    /// A captured value at nesting `level`: scalars kept, lists and objects written.
    fn cell(&mut self, level: u32) -> Transcode<'_, 'de> {
        Transcode {
            out: self.scratch,
            level,
            scalars: false,
            keys: self.keys,
            duplicate: self.duplicate,
            role: crate::json::Role::Plain,
        }
    }
}

impl<'de> Deserialize<'de> for ParsedIncident<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IncidentVisitor)
    }
}

struct IncidentVisitor;

impl<'de> Visitor<'de> for IncidentVisitor {
    type Value = ParsedIncident<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an incident")
    }

    scalars!(ParsedIncident<'de>, ParsedIncident::not_object());

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(ParsedIncident::not_object())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip(INCIDENT_LEVEL).visit_seq(seq)?;
        Ok(ParsedIncident::not_object())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        enter(INCIDENT_LEVEL)?;
        let mut incident = ParsedIncident::not_object();
        incident.object = true;
        let mut keys = Vec::new();
        let mut shared = Shared {
            scratch: &mut incident.scratch,
            keys: &mut keys,
            duplicate: &mut incident.duplicate,
        };
        let level = INCIDENT_LEVEL + 1;
        let slots = SlotOf {
            keys: &INCIDENT_KEYS,
            alerts: true,
        };
        while let Some(slot) = map.next_key_seed(SlotOf { ..slots })? {
            match slot {
                Slot::Cell(i) => incident.cells[i] = map.next_value_seed(shared.cell(level))?,
                Slot::Alerts => {
                    incident.alerts = map.next_value_seed(AlertsSeed {
                        shared: shared.reborrow(),
                        level,
                    })?
                }
                Slot::Other => map.next_value_seed(Skip(level))?,
            }
        }
        Ok(incident)
    }
}

impl ParsedIncident<'_> {
    fn not_object() -> Self {
        ParsedIncident {
            object: false,
            cells: std::array::from_fn(|_| Cell::Absent),
            alerts: Alerts::Absent,
            scratch: String::new(),
            duplicate: false,
        }
    }
}

/// The value of `alerts`, at nesting `level`.
struct AlertsSeed<'a, 'de> {
    shared: Shared<'a, 'de>,
    level: u32,
}

impl<'de> DeserializeSeed<'de> for AlertsSeed<'_, 'de> {
    type Value = Alerts<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AlertsSeed<'_, 'de> {
    type Value = Alerts<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of alerts")
    }

    scalars!(Alerts<'de>, Alerts::NotList);

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Alerts::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Skip(self.level).visit_map(map)?;
        Ok(Alerts::NotList)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        enter(self.level)?;
        let mut alerts = Vec::with_capacity(8);
        while let Some(alert) = seq.next_element_seed(AlertSeed {
            shared: self.shared.reborrow(),
            level: self.level + 1,
        })? {
            alerts.push(alert);
        }
        Ok(Alerts::List(alerts))
    }
}

/// One element of `alerts`, at nesting `level`.
struct AlertSeed<'a, 'de> {
    shared: Shared<'a, 'de>,
    level: u32,
}

impl ParsedAlert<'_> {
    fn not_object() -> Self {
        ParsedAlert {
            object: false,
            cells: std::array::from_fn(|_| Cell::Absent),
        }
    }
}

impl<'de> DeserializeSeed<'de> for AlertSeed<'_, 'de> {
    type Value = ParsedAlert<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AlertSeed<'_, 'de> {
    type Value = ParsedAlert<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an alert")
    }

    scalars!(ParsedAlert<'de>, ParsedAlert::not_object());

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(ParsedAlert::not_object())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip(self.level).visit_seq(seq)?;
        Ok(ParsedAlert::not_object())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        enter(self.level)?;
        let mut alert = ParsedAlert::not_object();
        alert.object = true;
        let level = self.level + 1;
        while let Some(slot) = map.next_key_seed(SlotOf {
            keys: &ALERT_KEYS,
            alerts: false,
        })? {
            match slot {
                Slot::Cell(i) => alert.cells[i] = map.next_value_seed(self.shared.cell(level))?,
                Slot::Alerts | Slot::Other => map.next_value_seed(Skip(level))?,
            }
        }
        Ok(alert)
    }
}

/// What the list skill notes of an incident's `alerts` while re-writing it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlertsShape {
    /// No `alerts` key.
    #[default]
    Absent,
    /// `"alerts": null`.
    Null,
    /// Anything but a list or null.
    NotList,
    /// A list; whether every element is an object with a legacy (`alertId`) and a Graph (`id`)
    /// identity.
    List {
        /// Every alert has `alertId`.
        legacy: bool,
        /// Every alert has `id`.
        graph: bool,
    },
}

/// What the list skill notes of one alert while re-writing it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct AlertIds {
    /// It is an object.
    pub object: bool,
    /// Its last `alertId` is an identity.
    pub legacy: bool,
    /// Its last `id` is an identity.
    pub graph: bool,
}

/// What the list skill notes of an incident while re-writing it.
#[derive(Debug, Default)]
pub(crate) struct ListedNotes<'de> {
    /// `incidentId`, `id`, `lastUpdateTime`, `lastUpdateDateTime`.
    pub ids: [Cell<'de>; 4],
    /// Its alerts.
    pub alerts: AlertsShape,
}

/// Which noted value a key of a listed incident is.
pub(crate) fn listed_note(key: &str) -> Option<usize> {
    match key {
        "incidentId" => Some(0),
        "id" => Some(1),
        "lastUpdateTime" => Some(2),
        "lastUpdateDateTime" => Some(3),
        _ => None,
    }
}

/// An incident as the list skill needs it: its canonical text and what the checks read.
#[derive(Debug)]
pub(crate) struct ListedParse<'de> {
    /// Whether it was an object.
    pub object: bool,
    /// The incident as a `Value` would serialize it (unless `duplicate`).
    pub text: String,
    /// What was noted on the way.
    pub notes: ListedNotes<'de>,
    /// An object repeats a key: parse the incident into a `Value` instead.
    pub duplicate: bool,
}

impl ListedParse<'_> {
    /// The same check, and the same words, as [`crate::reference::check_shape`].
    pub(crate) fn check_shape(&self, api: Api) -> Result<(), String> {
        let id = match api {
            Api::Defender => &self.notes.ids[0],
            Api::Graph => &self.notes.ids[1],
        };
        if !self.object || !id.is_id() {
            return Err(no_incident_id(api));
        }
        match self.notes.alerts {
            AlertsShape::Absent | AlertsShape::Null => Ok(()),
            AlertsShape::List { legacy, graph } => match (api, legacy, graph) {
                (Api::Defender, true, _) | (Api::Graph, _, true) => Ok(()),
                _ => Err(no_alert_id(api)),
            },
            AlertsShape::NotList => Err(ALERTS_NOT_A_LIST.to_string()),
        }
    }

    /// As [`crate::reference::incident_id`].
    pub(crate) fn id(&self) -> Option<String> {
        id_text(&self.notes.ids[0], &self.notes.ids[1])
    }

    /// As [`crate::reference::last_update`].
    pub(crate) fn last_update(&self) -> Option<jiff::Timestamp> {
        version(&self.notes.ids[2], &self.notes.ids[3])
    }
}

impl<'de> Deserialize<'de> for ListedParse<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut text = String::new();
        let mut notes = ListedNotes::default();
        let mut keys = Vec::new();
        let mut duplicate = false;
        let cell = Transcode {
            out: &mut text,
            level: INCIDENT_LEVEL,
            scalars: true,
            keys: &mut keys,
            duplicate: &mut duplicate,
            role: crate::json::Role::Incident(&mut notes),
        }
        .deserialize(deserializer)?;
        let object = matches!(cell, Cell::Json(_)) && text.starts_with('{');
        // Held until the result is joined: without the room its growth left (up to as much
        // again), a list of incidents takes its size in memory, not up to twice that.
        text.shrink_to_fit();
        Ok(ListedParse {
            object,
            text,
            notes,
            duplicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_found_in_its_slot_and_near_misses_are_not() {
        for (i, name) in INCIDENT_KEYS.names.iter().enumerate() {
            assert_eq!(INCIDENT_KEYS.find(name), Some(i));
        }
        for (i, name) in ALERT_KEYS.names.iter().enumerate() {
            assert_eq!(ALERT_KEYS.find(name), Some(i));
        }
        for miss in [
            "",
            "i",
            "d",
            "ID",
            "Id",
            "alerts",
            "incidentid",
            "tagz",
            "statuz",
            "severitY",
        ] {
            assert_eq!(INCIDENT_KEYS.find(miss), None, "{miss}");
            assert_eq!(ALERT_KEYS.find(miss), None, "{miss}");
        }
        assert_eq!(listed_note("id"), Some(ID));
        assert_eq!(listed_note("incidentId"), Some(INCIDENT_ID));
    }
}
