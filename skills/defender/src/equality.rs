//! The fast path against the reference, byte for byte.
//!
//! Incidents and pages are generated as JSON *text* by a noisy writer (white space, `\u`
//! escapes and surrogate pairs, `\/`, numbers spelled as floats or exponents, repeated keys,
//! keys in any order), with values of every kind in every field (missing, null, numbers for
//! strings, strings for numbers, lists, objects, unicode, control characters, the Graph enum and
//! source spellings), and with damaged answers (cut short, broken, not UTF-8, not incidents).
//! The same text goes through the reference path ([`crate::reference`], what the skills ran
//! before) and the fast one; rows, summaries, requests and errors must be the same, in the same
//! order.

use serde_json::{Map, Value, json};
use skillhost_guest::{HttpError, SkillError};

use crate::paging::{Body, Fetch, Pager, detection_incident, list_all_on, listed_incident};
use crate::params::{Api, ListRequest};
use crate::reference;
use crate::workload::Rng;

const PIECES: &[&str] = &[
    "",
    "plain",
    "Ransomware activity",
    "quote\"d",
    "back\\slash",
    "C:\\Windows\\System32",
    "nul\u{0}",
    "ctl\u{1f}\u{1}\u{8}\u{c}",
    "del\u{7f}",
    "ls\u{2028}ps\u{2029}",
    "é",
    "Zoë Müller",
    "😀",
    "\u{10ffff}",
    "\u{feff}bom",
    "tab\tnl\ncr\r",
    "/slash/",
    "</script>",
    "inProgress",
    "unknown",
    "truePositive",
    "microsoftDefenderForEndpoint",
    "antivirus",
    "T1059.001",
    "2026-11-26T08:00:00.1234567Z",
    "2026-11-26T09:30:00Z",
    "not a time",
    "ǅungla",
    "ßtraße",
    "ﬀ",
    "i\u{307}",
];

const ENUMS: &[&str] = &[
    "active",
    "inProgress",
    "resolved",
    "redirected",
    "new",
    "unknown",
    "informational",
    "low",
    "medium",
    "high",
    "unknownFutureValue",
    "truePositive",
    "falsePositive",
    "notAvailable",
    "multiStagedAttack",
    "Active",
    "InProgress",
    "UnSpecified",
    "",
    "éclair",
    "x",
    "\"quoted\"",
];

const SOURCES: &[&str] = &[
    "microsoftDefenderForEndpoint",
    "microsoftDefenderForCloudApps",
    "microsoftDefenderForOffice365",
    "antivirus",
    "MicrosoftDefenderATP",
    "MCAS",
    "WindowsDefenderAv",
    "automatedInvestigation",
    "",
];

/// Generates values; `.1` is whether identities may be missing or wrong (incidents refused).
struct Gen(Rng, bool);

impl Gen {
    fn chance(&mut self, per_mille: u64) -> bool {
        self.0.below(1000) < per_mille
    }

    fn string(&mut self) -> String {
        let mut out = String::new();
        for _ in 0..self.0.below(4) {
            let piece: &&str = self.0.pick(PIECES);
            out.push_str(piece);
        }
        if self.chance(200) {
            // Any code point, control characters and astral planes included.
            let c = match self.0.below(4) {
                0 => self.0.below(0x20) as u32,
                1 => 0x20 + self.0.below(0x60) as u32,
                2 => 0x80 + self.0.below(0xD000) as u32,
                _ => 0x10000 + self.0.below(0x100000) as u32,
            };
            out.extend(char::from_u32(c));
        }
        out
    }

    fn number(&mut self) -> Value {
        match self.0.below(12) {
            0 => json!(0),
            1 => json!(-1),
            2 => json!(924565),
            3 => json!(u64::MAX),
            4 => json!(i64::MIN),
            5 => json!(1.5),
            6 => json!(-0.0),
            7 => json!(1e300),
            8 => json!(0.1),
            9 => json!(2.5e-8),
            10 => json!(self.0.below(1 << 53) as f64 / 7.0),
            _ => json!(self.0.next_u64() >> self.0.below(64)),
        }
    }

    fn scalar(&mut self) -> Value {
        match self.0.below(6) {
            0 => Value::Null,
            1 => json!(self.chance(500)),
            2 | 3 => self.number(),
            _ => json!(self.string()),
        }
    }

    fn any(&mut self, depth: u32) -> Value {
        if depth == 0 || self.chance(550) {
            return self.scalar();
        }
        let n = self.0.below(4);
        if self.chance(500) {
            Value::Array((0..n).map(|_| self.any(depth - 1)).collect())
        } else {
            let mut map = Map::new();
            for _ in 0..n {
                let key = if self.chance(700) {
                    (*self.0.pick(&["a", "id", "alertId", "value", "k", "é", ""])).to_string()
                } else {
                    self.string()
                };
                map.insert(key, self.any(depth - 1));
            }
            Value::Object(map)
        }
    }

    /// A value for a field of kind `kind`: usually a plausible one, sometimes anything.
    fn field(&mut self, kind: &str) -> Option<Value> {
        match self.0.below(20) {
            0 => return None,
            1 => return Some(Value::Null),
            2 | 3 => return Some(self.any(3)),
            _ => {}
        }
        Some(match kind {
            "id" => match self.0.below(6) {
                0 => json!(self.0.below(10_000_000)),
                1 => json!(self.0.below(10_000_000).to_string()),
                2 => json!(format!(
                    "da{:018}_{}",
                    self.0.below(1 << 50),
                    self.0.below(1000)
                )),
                3 => json!(self.0.below(10_000_000) as f64),
                4 => json!(""),
                _ => json!(self.string()),
            },
            "enum" => json!(*self.0.pick(ENUMS)),
            "source" => json!(*self.0.pick(SOURCES)),
            "time" => json!(*self.0.pick(&[
                "2026-11-26T08:00:00.1234567Z",
                "2026-11-26T09:30:00Z",
                "2026-11-26T09:30:00+01:00",
                "yesterday",
                "",
            ])),
            "list" => match self.0.below(4) {
                0 => json!([]),
                1 => json!(["Demo", "T1059.001"]),
                2 => Value::Array((0..self.0.below(4)).map(|_| json!(self.string())).collect()),
                _ => self.any(2),
            },
            _ => json!(self.string()),
        })
    }

    /// An incident (mostly) of `api`, keys in any order, sometimes with the other API's names.
    fn incident(&mut self, api: Api, id: u64) -> Value {
        let mut members: Vec<(String, Value)> = Vec::new();
        let incident_fields: &[(&str, &str, &str)] = &[
            ("incidentName", "displayName", "text"),
            ("incidentUri", "incidentWebUrl", "text"),
            ("severity", "severity", "enum"),
            ("status", "status", "enum"),
            ("classification", "classification", "enum"),
            ("determination", "determination", "enum"),
            ("assignedTo", "assignedTo", "text"),
            ("createdTime", "createdDateTime", "time"),
            ("lastUpdateTime", "lastUpdateDateTime", "time"),
            ("redirectIncidentId", "redirectIncidentId", "id"),
            ("tags", "customTags", "list"),
        ];
        let (own_id, other_id) = match api {
            Api::Defender => ("incidentId", "id"),
            Api::Graph => ("id", "incidentId"),
        };
        // The identity: mostly there and of either type; sometimes missing or empty.
        let wrong = if self.1 { self.0.below(40) } else { 99 };
        match wrong {
            0 => {}
            1 => members.push((own_id.into(), json!(""))),
            2 => members.push((own_id.into(), Value::Null)),
            3 => members.push((own_id.into(), self.any(2))),
            _ if self.chance(500) => members.push((own_id.into(), json!(id))),
            _ => members.push((own_id.into(), json!(id.to_string()))),
        }
        if self.chance(100) {
            members.push((other_id.into(), self.field("id").unwrap_or(Value::Null)));
        }
        for (legacy, graph, kind) in incident_fields {
            let name = match (api, self.chance(50)) {
                (Api::Defender, false) | (Api::Graph, true) => legacy,
                _ => graph,
            };
            if let Some(value) = self.field(kind) {
                members.push(((*name).into(), value));
            }
        }
        for extra in [
            "comments",
            "description",
            "@odata.type",
            "tenantId",
            "systemTags",
        ] {
            if self.chance(300) {
                members.push((extra.into(), self.any(3)));
            }
        }
        match self.0.below(40) {
            0 => {}
            1 => members.push(("alerts".into(), Value::Null)),
            2 | 3 => members.push(("alerts".into(), json!([]))),
            4 if self.1 => members.push(("alerts".into(), self.any(2))),
            _ => {
                let alerts = (0..1 + self.0.below(5))
                    .map(|n| self.alert(api, n))
                    .collect();
                members.push(("alerts".into(), Value::Array(alerts)));
            }
        }
        shuffle(&mut self.0, &mut members);
        Value::Object(members.into_iter().collect())
    }

    fn alert(&mut self, api: Api, n: u64) -> Value {
        if self.1 && self.chance(10) {
            return self.scalar();
        }
        let fields: &[(&str, &str, &str)] = &[
            ("title", "title", "text"),
            ("category", "category", "text"),
            ("severity", "severity", "enum"),
            ("status", "status", "enum"),
            ("serviceSource", "serviceSource", "source"),
            ("detectionSource", "detectionSource", "source"),
            ("creationTime", "createdDateTime", "time"),
            ("lastUpdatedTime", "lastUpdateDateTime", "time"),
            ("firstActivity", "firstActivityDateTime", "time"),
            ("lastActivity", "lastActivityDateTime", "time"),
            ("mitreTechniques", "mitreTechniques", "list"),
        ];
        let mut members: Vec<(String, Value)> = Vec::new();
        let own_id = match api {
            Api::Defender => "alertId",
            Api::Graph => "id",
        };
        match if self.1 { self.0.below(60) } else { 99 } {
            0 => {}
            1 => members.push((own_id.into(), json!(""))),
            _ => members.push((
                own_id.into(),
                self.field("id")
                    .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()) || v.is_number())
                    .unwrap_or(json!(format!("da{n}"))),
            )),
        }
        for (legacy, graph, kind) in fields {
            let name = match (api, self.chance(50)) {
                (Api::Defender, false) | (Api::Graph, true) => legacy,
                _ => graph,
            };
            if let Some(value) = self.field(kind) {
                members.push(((*name).into(), value));
            }
        }
        for extra in [
            "entities",
            "evidence",
            "devices",
            "incidentId",
            "description",
        ] {
            if self.chance(400) {
                members.push((extra.into(), self.any(4)));
            }
        }
        shuffle(&mut self.0, &mut members);
        Value::Object(members.into_iter().collect())
    }
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i as u64 + 1) as usize);
    }
}

/// How noisy the writer is, in chances per thousand.
#[derive(Clone, Copy)]
struct Noise {
    space: u64,
    escape: u64,
    number: u64,
    duplicate: u64,
}

const CLEAN: Noise = Noise {
    space: 0,
    escape: 0,
    number: 0,
    duplicate: 0,
};

/// Writes `value` as JSON text with `noise`: the same value to a `Value` parse, except where a
/// repeated key or a re-spelled number changes it (for both paths alike).
fn write(rng: &mut Rng, value: &Value, noise: Noise, out: &mut String) {
    let mut chance = |per_mille: u64| rng.below(1000) < per_mille;
    if chance(noise.space) {
        out.push_str(["", " ", "\n", "\t", "\r\n  "][rng.below(5) as usize]);
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let text = n.to_string();
            if rng.below(1000) >= noise.number {
                out.push_str(&text);
            } else if let Some(i) = n.as_i64().filter(|_| !text.contains('.')) {
                out.push_str(&match rng.below(4) {
                    0 => format!("{i}.0"),
                    1 => format!("{i}e0"),
                    2 if i != 0 => format!("{i}0E-1"),
                    _ => format!("{i}.000"),
                });
            } else if let Some(f) = n.as_f64() {
                out.push_str(&match rng.below(3) {
                    0 => format!("{f:e}"),
                    1 => format!("{f:?}"),
                    _ => format!("{f:E}"),
                });
            } else {
                out.push_str(&text);
            }
        }
        Value::String(s) => write_string(rng, s, noise, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(rng, item, noise, out);
            }
            if rng.below(1000) < noise.space {
                out.push(' ');
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            let mut first = true;
            for (key, item) in map {
                // A decoy of the same key, before (overridden) or after (overriding).
                let decoy = rng.below(1000) < noise.duplicate;
                let after = rng.below(2) == 0;
                let mut member = |rng: &mut Rng, value: &Value, out: &mut String| {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write_string(rng, key, noise, out);
                    out.push(':');
                    write(rng, value, noise, out);
                };
                let other = Gen(Rng::new(rng.next_u64()), true).any(2);
                if decoy && !after {
                    member(rng, &other, out);
                }
                member(rng, item, out);
                if decoy && after {
                    member(rng, &other, out);
                }
            }
            out.push('}');
        }
    }
}

fn write_string(rng: &mut Rng, s: &str, noise: Noise, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let escape = rng.below(1000) < noise.escape;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' if !escape => out.push_str("\\b"),
            '\u{c}' if !escape => out.push_str("\\f"),
            '\n' if !escape => out.push_str("\\n"),
            '\r' if !escape => out.push_str("\\r"),
            '\t' if !escape => out.push_str("\\t"),
            '/' if escape => out.push_str("\\/"),
            c if (c as u32) < 0x20 || escape => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    if rng.below(2) == 0 {
                        out.push_str(&format!("\\u{unit:04x}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON error's words without where it happened (the two paths say where differently).
fn without_position(text: &str) -> String {
    match (text.find("not valid JSON ("), text.find("); the answer")) {
        (Some(a), Some(b)) if a < b => format!("{}…{}", &text[..a], &text[b..]),
        _ => text.to_string(),
    }
}

/// The reference's answer for one incident's text.
type Expected = Result<(Option<String>, Option<jiff::Timestamp>, Vec<String>), String>;

fn reference_rows(text: &str, api: Api) -> Expected {
    let incident: Value = serde_json::from_str(text).map_err(|_| "not JSON".to_string())?;
    reference::check_shape(&incident, api)?;
    Ok((
        reference::incident_id(&incident),
        reference::last_update(&incident),
        reference::serialized_rows(&incident, api),
    ))
}

fn fast_rows(text: &str, api: Api) -> Expected {
    match detection_incident(text, api) {
        Ok(incident) => Ok((
            incident.id,
            incident.version,
            incident.rows.iter().map(str::to_string).collect(),
        )),
        Err(e) if e.contains("not valid JSON") => Err("not JSON".to_string()),
        Err(e) => Err(e),
    }
}

#[test]
fn every_generated_incident_gives_the_reference_rows_byte_for_byte() {
    let mut generator = Gen(Rng::new(14), true);
    let (mut checked, mut rows, mut refused, mut declined) = (0, 0, 0, 0);
    for n in 0..12_000u64 {
        let api = if n % 2 == 0 {
            Api::Defender
        } else {
            Api::Graph
        };
        let incident = generator.incident(api, 900_000 + n);
        let noise = match n % 4 {
            0 => CLEAN,
            1 => Noise {
                space: 50,
                escape: 50,
                number: 300,
                duplicate: 0,
            },
            _ => Noise {
                space: 20,
                escape: 20,
                number: 100,
                duplicate: 30,
            },
        };
        let mut text = String::new();
        write(&mut generator.0, &incident, noise, &mut text);
        let expected = reference_rows(&text, api);
        assert_eq!(fast_rows(&text, api), expected, "{api:?} {text}");
        checked += 1;
        match &expected {
            Ok((_, _, r)) => rows += r.len(),
            Err(_) => refused += 1,
        }
        // The list skill's incident text.
        let listed = listed_incident(text.as_bytes(), api);
        match (&expected, listed) {
            (Ok((id, version, _)), Ok(listed)) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(listed.json, value.to_string(), "{text}");
                assert_eq!((&listed.id, &listed.version), (id, version));
            }
            (Err(why), Err(listed)) => assert_eq!(&without_position(&listed), why, "{text}"),
            (expected, listed) => panic!("{expected:?} but {listed:?}: {text}"),
        }
        if let Ok(parsed) = serde_json::from_str::<crate::incident::ParsedIncident>(&text) {
            declined += usize::from(parsed.duplicate);
        }
    }
    // The generator reaches every case it is meant to.
    assert!(rows > 18_000, "{rows}");
    assert!(refused > 300, "{refused}");
    assert!(declined > 30, "{declined}");
    assert_eq!(checked, 12_000);
}

#[test]
fn the_enum_and_source_spellings_of_graph_become_the_legacy_ones() {
    let incident = json!({
        "id": "7", "severity": "unknown", "status": "inProgress", "classification": "truePositive",
        "determination": "multiStagedAttack", "customTags": null,
        "alerts": [{"id": "a", "severity": "informational", "status": "new",
            "serviceSource": "microsoftDefenderForOffice365", "detectionSource": "antivirus",
            "mitreTechniques": null},
            {"id": 8, "severity": "unknown", "status": "", "serviceSource": "somethingNew",
            "detectionSource": 5}]
    })
    .to_string();
    let rows = fast_rows(&incident, Api::Graph).unwrap().2;
    assert_eq!(
        Ok(rows.clone()),
        reference_rows(&incident, Api::Graph).map(|r| r.2)
    );
    let first: Value = serde_json::from_str(&rows[0]).unwrap();
    assert_eq!(first["incident_severity"], "UnSpecified");
    assert_eq!(first["incident_status"], "InProgress");
    assert_eq!(first["incident_tags"], json!([]));
    assert_eq!(first["alert_service_source"], "OfficeATP");
    assert_eq!(first["alert_detection_source"], "WindowsDefenderAv");
    let second: Value = serde_json::from_str(&rows[1]).unwrap();
    assert_eq!(second["alert_id"], "8");
    assert_eq!(second["alert_severity"], "UnSpecified");
    assert_eq!(second["alert_detection_source"], 5);
}

#[test]
fn an_incident_without_alerts_gives_one_row_of_null_alert_columns_on_both_paths() {
    for alerts in ["", ",\"alerts\":null", ",\"alerts\":[]"] {
        let text = format!("{{\"incidentId\":12{alerts},\"tags\":null}}");
        let rows = fast_rows(&text, Api::Defender).unwrap().2;
        assert_eq!(
            Ok(rows.clone()),
            reference_rows(&text, Api::Defender).map(|r| r.2)
        );
        assert_eq!(rows.len(), 1);
        assert!(
            rows[0].ends_with(",\"alert_mitre_techniques\":null}"),
            "{}",
            rows[0]
        );
    }
}

/// One scripted answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    /// Largest piece a read hands out.
    piece: usize,
    /// Where the body stops early, and whether with a host error.
    cut: Option<(usize, bool)>,
    /// The host refuses the request itself.
    refused: bool,
}

#[derive(Clone)]
struct Script {
    answers: Vec<Answer>,
    next: usize,
    requests: Vec<String>,
    seed: u64,
}

struct Piecewise {
    body: Vec<u8>,
    at: usize,
    end: usize,
    piece: usize,
    error: Option<HttpError>,
    failed: bool,
    rng: Rng,
    /// Bytes the last `fill_buf` lent.
    lent: usize,
}

impl Piecewise {
    /// The error the body ends with, once, when it has one; `None` if it is not at its end.
    fn at_end(&mut self) -> Option<std::io::Result<()>> {
        if self.at < self.end {
            return None;
        }
        if self.error.is_some() && !self.failed {
            self.failed = true;
            return Some(Err(std::io::Error::other(
                "the response body could not be read",
            )));
        }
        Some(Ok(()))
    }

    /// The size of the next piece, at most `max`.
    fn next_piece(&mut self, max: usize) -> usize {
        (1 + self.rng.below(self.piece as u64) as usize)
            .min(max)
            .min(self.end - self.at)
    }
}

/// Pieces lent as the SDK's reader lends the host's chunks, of the same random sizes.
impl std::io::BufRead for Piecewise {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if let Some(end) = self.at_end() {
            return end.map(|()| &[][..]);
        }
        if self.lent == 0 {
            self.lent = self.next_piece(usize::MAX);
        }
        Ok(&self.body[self.at..self.at + self.lent])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.lent);
        self.at += n;
        self.lent -= n;
    }
}

impl std::io::Read for Piecewise {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if let Some(end) = self.at_end() {
            return end.map(|()| 0);
        }
        let n = self.next_piece(out.len());
        out[..n].copy_from_slice(&self.body[self.at..self.at + n]);
        self.at += n;
        self.lent = 0;
        Ok(n)
    }
}

impl Body for Piecewise {
    fn take_error(&mut self) -> Option<HttpError> {
        if self.failed { self.error.take() } else { None }
    }

    /// Lent or read, at random from one piece to the next, so that both paths of the page's
    /// window, and their meeting (a character cut by a lent piece, completed by a read), are
    /// exercised.
    fn buffered(&mut self) -> Option<&mut dyn std::io::BufRead> {
        if self.rng.below(2) == 0 {
            Some(self)
        } else {
            None
        }
    }
}

impl Fetch for Script {
    fn get(&mut self, _: &str, path: &str) -> Result<(u16, Box<dyn Body>), HttpError> {
        self.requests.push(path.to_string());
        let answer = self.answers.get(self.next).cloned().unwrap_or(Answer {
            status: 200,
            body: b"{\"value\":[]}".to_vec(),
            piece: 7,
            cut: None,
            refused: false,
        });
        self.next += 1;
        if answer.refused {
            return Err(HttpError::Timeout);
        }
        let end = answer.cut.map_or(answer.body.len(), |(at, _)| at);
        let error = match answer.cut {
            Some((at, true)) => Some(HttpError::Transport(format!(
                "the answer was cut short after {at} of {} bytes",
                answer.body.len()
            ))),
            _ => None,
        };
        self.seed += 1;
        Ok((
            answer.status,
            Box::new(Piecewise {
                body: answer.body,
                at: 0,
                end,
                piece: answer.piece,
                error,
                failed: false,
                rng: Rng::new(self.seed),
                lent: 0,
            }),
        ))
    }
}

/// A page of `incidents` (JSON texts) of `api`, its members in any order.
fn page(
    rng: &mut Rng,
    api: Api,
    incidents: &[String],
    link: Option<&str>,
    noise: Noise,
) -> Vec<u8> {
    let mut members: Vec<Vec<u8>> = Vec::new();
    let mut list = String::from("[");
    for (i, incident) in incidents.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        if rng.below(1000) < noise.space {
            list.push_str("\n  ");
        }
        list.push_str(incident);
    }
    list.push(']');
    members.push(format!("\"value\":{list}").into_bytes());
    let context = match api {
        Api::Defender => "https://api.security.microsoft.com/api/$metadata#Incidents",
        Api::Graph => "https://graph.microsoft.com/v1.0/$metadata#security/incidents(alerts())",
    };
    members.push(format!("\"@odata.context\":\"{context}\"").into_bytes());
    if let Some(link) = link {
        members.push(format!("\"@odata.nextLink\":\"{link}\"").into_bytes());
    } else if rng.below(4) == 0 {
        members.push(b"\"@odata.nextLink\":null".to_vec());
    }
    if rng.below(4) == 0 {
        let mut junk = String::new();
        let value = Gen(Rng::new(rng.next_u64()), true).any(4);
        write(rng, &value, noise, &mut junk);
        members.push(format!("\"@odata.count\":{junk}").into_bytes());
    }
    if rng.below(8) == 0 {
        // Bytes that are not UTF-8 in a value nobody reads: accepted as before.
        members.push(b"\"junk\":\"\xff\xfe \xc3\"".to_vec());
    }
    shuffle(rng, &mut members);
    let mut out = b"{".to_vec();
    for (i, member) in members.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(if rng.below(1000) < noise.space {
                b" ,\n"
            } else {
                b","
            });
        }
        out.extend_from_slice(member);
    }
    out.push(b'}');
    out
}

/// Damages a page the way an answer damaged in transit (or a wrong service) would be.
fn damage(rng: &mut Rng, answer: &mut Answer) {
    let len = answer.body.len();
    let at = rng.below(len as u64) as usize;
    match rng.below(9) {
        0 => answer.cut = Some((at, true)),
        1 => answer.cut = Some((at, false)),
        2 => answer.body[at] = b'#',
        3 => answer.body.insert(at, 0xff),
        4 => {
            // An object that is not an incident, first in the list.
            if let Some(p) = find(&answer.body, b"\"value\":[") {
                let insert = if answer.body.get(p + 9) == Some(&b']') {
                    &b"{\"title\":\"no id\"}"[..]
                } else {
                    &b"{\"title\":\"no id\"},"[..]
                };
                answer.body.splice(p + 9..p + 9, insert.iter().copied());
            }
        }
        5 => answer.body.truncate(at),
        6 => {
            answer.status = 503;
            answer.body =
                b"{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"try later\"}}".to_vec();
        }
        7 => answer.refused = true,
        _ => answer.body = format!("{}{}", "[".repeat(130), "]".repeat(130)).into_bytes(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A run of a skill on a script: rows (or incidents), the result, the requests.
type Observed = (Vec<String>, Result<String, String>, Vec<String>);

/// Asserts two runs are the same, naming the first difference.
fn assert_same(got: &Observed, expected: &Observed, context: &str) {
    if let Some(i) =
        (0..got.0.len().max(expected.0.len())).find(|&i| got.0.get(i) != expected.0.get(i))
    {
        panic!(
            "{context}: row {i} of {} (expected {})\n got: {:?}\n expected: {:?}",
            got.0.len(),
            expected.0.len(),
            got.0.get(i),
            expected.0.get(i)
        );
    }
    assert_eq!(got.1, expected.1, "{context}: result");
    assert_eq!(got.2, expected.2, "{context}: requests");
}

fn normalized(result: Result<String, SkillError>) -> Result<String, String> {
    result.map_err(|e| without_position(&format!("{e:?}")))
}

fn run_detections(
    script: &Script,
    request: &ListRequest,
    fast: bool,
    window: [usize; 3],
    stop_after: Option<usize>,
) -> Observed {
    let mut fetch = script.clone();
    let mut rows = Vec::new();
    let mut emit = |row: &str| {
        if stop_after.is_some_and(|n| rows.len() >= n) {
            return Err(SkillError::Denied("the output cap was reached".into()));
        }
        rows.push(row.to_string());
        Ok(())
    };
    let result = if fast {
        let mut pager = Pager::new(request);
        pager.window_sizes(window[0], window[1], window[2]);
        crate::detections::detections_on(pager, request, &mut fetch, &mut emit, None)
    } else {
        reference::detections(request, &mut fetch, &mut emit)
    };
    (rows, normalized(result), fetch.requests)
}

fn run_list(script: &Script, request: &ListRequest, fast: bool, window: [usize; 3]) -> Observed {
    let mut fetch = script.clone();
    let result = if fast {
        let mut pager = Pager::new(request);
        pager.window_sizes(window[0], window[1], window[2]);
        list_all_on(pager, request, &mut fetch, None).map(|(incidents, pages)| {
            crate::paging::list_result(request.api, &request.filter, pages, &incidents)
        })
    } else {
        reference::list_all(request, &mut fetch).map(|(incidents, pages)| {
            reference::list_result(request.api, &request.filter, pages, incidents)
        })
    };
    (Vec::new(), normalized(result), fetch.requests)
}

/// A scripted run: pages of generated incidents, some answers damaged (then answered again,
/// or not), incidents repeated across pages with newer or older versions (`$skip` shifts).
fn scenario(seed: u64) -> (Script, ListRequest, Option<usize>) {
    let mut generator = Gen(Rng::new(seed), seed.is_multiple_of(5));
    let api = if seed.is_multiple_of(2) {
        Api::Defender
    } else {
        Api::Graph
    };
    let page_size = 1 + generator.0.below(6) as usize;
    let pages = 1 + generator.0.below(6) as usize;
    let noise = match seed % 3 {
        0 => CLEAN,
        1 => Noise {
            space: 30,
            escape: 30,
            number: 100,
            duplicate: 0,
        },
        _ => Noise {
            space: 10,
            escape: 10,
            number: 50,
            duplicate: 10,
        },
    };
    let mut answers = Vec::new();
    let mut previous: Vec<String> = Vec::new();
    let mut id = 5_000 + seed * 100;
    for p in 0..pages {
        let last = p + 1 == pages;
        let count = if last {
            generator.0.below(page_size as u64 + 1) as usize
        } else {
            page_size
        };
        let mut incidents: Vec<String> = Vec::new();
        for _ in 0..count {
            // A `$skip` shift serves an incident of the last page again, or a new version of it.
            if !previous.is_empty() && generator.chance(150) {
                incidents.push(previous[generator.0.below(previous.len() as u64) as usize].clone());
                continue;
            }
            let mut incident = generator.incident(api, id);
            // Sometimes the next incident has the same id: a repeat at another version.
            if !generator.chance(200) {
                id += 1;
            }
            if let (Some(object), true) = (incident.as_object_mut(), generator.chance(300)) {
                let key = match api {
                    Api::Defender => "lastUpdateTime",
                    Api::Graph => "lastUpdateDateTime",
                };
                let minute = generator.0.below(60);
                object.insert(key.into(), json!(format!("2026-11-26T09:{minute:02}:00Z")));
            }
            let mut text = String::new();
            write(&mut generator.0, &incident, noise, &mut text);
            incidents.push(text);
        }
        let link = match api {
            Api::Graph if !last => Some(format!(
                "https://graph.microsoft.com/v1.0/security/incidents?$skiptoken={p}"
            )),
            _ => None,
        };
        let body = page(&mut generator.0, api, &incidents, link.as_deref(), noise);
        let good = Answer {
            status: 200,
            body,
            piece: 1 + generator.0.below(300) as usize,
            cut: None,
            refused: false,
        };
        // Damaged answers before the good one; five in a row exhaust the retries.
        let damaged = match generator.0.below(10) {
            0..=6 => 0,
            7 | 8 => 1 + generator.0.below(2),
            _ => 5,
        };
        for _ in 0..damaged {
            let mut bad = good.clone();
            damage(&mut generator.0, &mut bad);
            answers.push(bad);
        }
        answers.push(good);
        previous = incidents;
    }
    let request = ListRequest {
        api,
        filter: "lastUpdateTime ge 2026-11-26T08:00:00Z and status eq 'Active'".into(),
        page_size,
        limit: generator
            .chance(200)
            .then(|| 1 + generator.0.below(8) as usize),
    };
    let stop_after = generator
        .chance(100)
        .then(|| generator.0.below(10) as usize);
    let script = Script {
        answers,
        next: 0,
        requests: Vec::new(),
        seed,
    };
    (script, request, stop_after)
}

#[test]
fn scripted_runs_give_the_reference_rows_requests_and_errors() {
    let (mut rows, mut failures, mut incidents_listed) = (0, 0, 0);
    for seed in 0..700u64 {
        let (script, request, stop_after) = scenario(seed);
        let expected = run_detections(&script, &request, false, [0; 3], stop_after);
        // The real window, and small ones that every incident crosses.
        for window in [
            [crate::page::WINDOW, crate::page::LOW_WATER, 16 * 1024],
            [64, 16, 7],
            [1, 1, 1],
            [300, 0, 50],
        ] {
            let got = run_detections(&script, &request, true, window, stop_after);
            assert_same(&got, &expected, &format!("seed {seed}, window {window:?}"));
        }
        let expected_list = run_list(&script, &request, false, [0; 3]);
        for window in [
            [crate::page::WINDOW, crate::page::LOW_WATER, 16 * 1024],
            [64, 16, 7],
        ] {
            let got = run_list(&script, &request, true, window);
            assert_same(
                &got,
                &expected_list,
                &format!("list, seed {seed}, window {window:?}"),
            );
        }
        rows += expected.0.len();
        failures += usize::from(expected.1.is_err());
        if let Ok(text) = &expected_list.1 {
            incidents_listed += serde_json::from_str::<Value>(text).unwrap()["count"]
                .as_u64()
                .unwrap_or(0);
        }
    }
    eprintln!("{rows} rows, {failures} failed runs, {incidents_listed} incidents listed");
    assert!(rows > 5_000, "{rows}");
    assert!((30..400).contains(&failures), "{failures}");
    assert!(incidents_listed > 1_500, "{incidents_listed}");
}

#[test]
fn an_incident_larger_than_the_window_is_parsed_whole() {
    let mut generator = Gen(Rng::new(3), false);
    let mut incident = generator.incident(Api::Defender, 1);
    incident["incidentId"] = json!(1);
    incident["alerts"] =
        json!([{"alertId": "a", "title": "x".repeat(300_000), "entities": ["é".repeat(100_000)]}]);
    let mut text = String::new();
    write(&mut generator.0, &incident, CLEAN, &mut text);
    let script = Script {
        answers: vec![Answer {
            status: 200,
            body: page(
                &mut generator.0,
                Api::Defender,
                &[text.clone(), text],
                None,
                CLEAN,
            ),
            piece: 16 * 1024,
            cut: None,
            refused: false,
        }],
        next: 0,
        requests: Vec::new(),
        seed: 1,
    };
    let request = ListRequest {
        api: Api::Defender,
        filter: "x".into(),
        page_size: 10,
        limit: None,
    };
    let expected = run_detections(&script, &request, false, [0; 3], None);
    assert_eq!(expected.0.len(), 1);
    for window in [
        [crate::page::WINDOW, crate::page::LOW_WATER, 16 * 1024],
        [1000, 10, 100],
    ] {
        assert_eq!(
            run_detections(&script, &request, true, window, None),
            expected
        );
    }
}
