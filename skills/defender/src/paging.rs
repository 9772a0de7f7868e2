//! Paging over the incidents list of either API, and de-duplication of incidents across pages.
//!
//! Legacy: `$top` with `$skip`, or `@odata.nextLink` when the API gives one. Graph: `$top` ≤ 50
//! with `$expand=alerts` and `@odata.nextLink`. Both stop on a short page. With `$skip` paging,
//! an incident that changes during the run can be served twice (everything shifts when a new
//! one arrives); [`Dedup`] keeps each incident once, at its latest `lastUpdateTime`.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;
use skillhost_guest::{HttpError, SkillError, UpstreamError};

use crate::errors::{api_error, fetch_error};
use crate::params::{Api, ListRequest};

/// The one thing paging needs from the host: a GET on a service of the bound connection.
pub trait Fetch {
    /// Returns the status of `GET path_and_query` on `service`, and its body to read.
    fn get(
        &mut self,
        service: &str,
        path_and_query: &str,
    ) -> Result<(u16, Box<dyn Body>), HttpError>;
}

/// A response body being received.
pub trait Body: std::io::Read {
    /// The host error that cut the body short, if one did.
    fn take_error(&mut self) -> Option<HttpError>;
}

/// The most of an error answer's body that is read (for its message).
const ERROR_BODY_CAP: u64 = 64 * 1024;

/// Reads a whole body (up to `cap` bytes), reporting a host error as the skill error it means.
pub fn read_body(body: &mut dyn Body, cap: u64) -> Result<Vec<u8>, SkillError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let result = body.take(cap).read_to_end(&mut bytes);
    if let Some(error) = body.take_error() {
        return Err(fetch_error(error));
    }
    result.map_err(|e| SkillError::Internal(format!("reading the answer failed: {e}")))?;
    Ok(bytes)
}

/// A page of incidents, as the API returned them.
pub type Page = Vec<Value>;

/// Walks the pages of one list request.
pub struct Pager {
    api: Api,
    page_size: usize,
    filter: String,
    next: Option<String>,
    skip: usize,
    pages: usize,
}

/// How many times a page is fetched again when its answer was cut short, stalled, broke
/// mid-body, was not valid JSON, or held an object that is not an incident of the connection's
/// API: all signs of an answer damaged in transit, which a new fetch usually cures.
const PAGE_RETRIES: usize = 4;

impl Pager {
    /// Starts at the first page of `request`.
    pub fn new(request: &ListRequest) -> Self {
        let mut pager = Pager {
            api: request.api,
            page_size: request.page_size,
            filter: request.filter.clone(),
            next: None,
            skip: 0,
            pages: 0,
        };
        pager.next = Some(pager.path(0));
        pager
    }

    /// Pages fetched so far.
    pub fn pages(&self) -> usize {
        self.pages
    }

    fn path(&self, skip: usize) -> String {
        let filter = encode(&self.filter);
        let mut path = match self.api {
            Api::Defender => format!("/api/incidents?$filter={filter}&$top={}", self.page_size),
            Api::Graph => format!(
                "/v1.0/security/incidents?$filter={filter}&$expand=alerts&$top={}",
                self.page_size
            ),
        };
        if skip > 0 {
            path.push_str(&format!("&$skip={skip}"));
        }
        path
    }

    /// The next page, or `None` after the last one.
    pub fn next_page(&mut self, fetch: &mut dyn Fetch) -> Result<Option<Page>, SkillError> {
        let mut page = Vec::new();
        let fetched = self.next_page_each(fetch, &mut |incident| {
            page.push(incident);
            Ok(())
        })?;
        Ok(fetched.map(|_| page))
    }

    /// Fetches the next page and hands its incidents to `on_incident` one at a time, as they
    /// are parsed, so that a page is never held whole. Returns how many there were, or `None`
    /// after the last page.
    pub fn next_page_each(
        &mut self,
        fetch: &mut dyn Fetch,
        on_incident: &mut dyn FnMut(Value) -> Result<(), SkillError>,
    ) -> Result<Option<usize>, SkillError> {
        let Some(path) = self.next.take() else {
            return Ok(None);
        };
        let mut attempt = 0;
        let page = loop {
            let (status, mut body) = fetch.get(self.api.service(), &path).map_err(fetch_error)?;
            if status != 200 {
                let text = read_body(body.as_mut(), ERROR_BODY_CAP)?;
                return Err(api_error(self.api, status, &text));
            }
            let mut visitor = PageVisitor {
                api: self.api,
                on_incident: &mut *on_incident,
                count: 0,
                saw_value: false,
                next_link: None,
                stopped: None,
                malformed: None,
            };
            let parsed = serde::de::DeserializeSeed::deserialize(
                &mut visitor,
                &mut serde_json::Deserializer::from_reader(&mut body),
            );
            if let Some(error) = visitor.stopped.take() {
                return Err(error);
            }
            // Incidents handed out before the damage are handed out again by the next fetch;
            // de-duplication drops the repeats. An object that is not an incident was refused
            // before it was handed out.
            let (code, why) = match (body.take_error(), parsed) {
                (Some(HttpError::Transport(why)), _) => ("IncompleteResponse", why),
                (Some(other), _) => return Err(fetch_error(other)),
                (None, Ok(())) if visitor.saw_value => break (visitor.count, visitor.next_link),
                (None, Ok(())) => (
                    "MalformedResponse",
                    "the incidents page has no `value` list".to_string(),
                ),
                (None, Err(e)) => match visitor.malformed.take() {
                    Some(why) => ("MalformedResponse", why),
                    None => (
                        "MalformedResponse",
                        format!(
                            "the incidents page was not valid JSON ({e}); the answer was probably cut short"
                        ),
                    ),
                },
            };
            if attempt < PAGE_RETRIES {
                attempt += 1;
                continue;
            }
            return Err(SkillError::Upstream(UpstreamError {
                status,
                code: code.into(),
                message: format!("{why}; the page was fetched {} times", attempt + 1),
            }));
        };
        let (count, next_link) = page;
        self.pages += 1;
        // Counted on every page, so that `$skip` paging can take over where a chain of
        // `@odata.nextLink`s stops.
        self.skip += count;
        self.next = if count < self.page_size {
            None
        } else if let Some(link) = next_link {
            Some(link)
        } else if self.api == Api::Defender {
            Some(self.path(self.skip))
        } else {
            None
        };
        Ok(Some(count))
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
        return Err(format!(
            "the incidents page holds an object without `{incident_key}`, which is not an incident of the {} API",
            api.service()
        ));
    }
    match incident.get("alerts") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(alerts)) => match alerts.iter().find(|a| !has_id(a, alert_key)) {
            None => Ok(()),
            Some(_) => Err(format!(
                "an incident of the page has an alert without `{alert_key}`, which is not an alert of the {} API",
                api.service()
            )),
        },
        Some(_) => Err("an incident of the page has `alerts` that is not a list".to_string()),
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

struct Pending<T> {
    version: Option<jiff::Timestamp>,
    item: T,
}

/// Keeps each incident once, at its latest version, while holding only a page or two of them.
///
/// Incidents (or whatever they were turned into, such as their rows) are accepted into a pending
/// list, where a later version of the same id replaces an earlier one; [`Dedup::release`] hands
/// out those that can no longer be superseded. A duplicate from `$skip` paging lands on an
/// adjacent page, so holding the previous page back until the next one has been accepted is
/// enough, and memory stays flat however many pages there are.
pub struct Dedup<T> {
    pending: Vec<Pending<T>>,
    pending_index: HashMap<String, usize>,
    released: HashSet<String>,
    released_order: VecDeque<String>,
    /// Incidents accepted (unique ids).
    pub accepted: usize,
}

impl<T> Default for Dedup<T> {
    fn default() -> Self {
        Dedup {
            pending: Vec::new(),
            pending_index: HashMap::new(),
            released: HashSet::new(),
            released_order: VecDeque::new(),
            accepted: 0,
        }
    }
}

impl<T> Dedup<T> {
    /// Takes the item of incident `id` at `version`. Returns false when it was a duplicate (an
    /// older or equal version is dropped; a newer one replaces the pending one).
    pub fn accept(
        &mut self,
        id: Option<String>,
        version: Option<jiff::Timestamp>,
        item: T,
    ) -> bool {
        let Some(id) = id else {
            self.pending.push(Pending { version, item });
            self.accepted += 1;
            return true;
        };
        if let Some(&i) = self.pending_index.get(&id) {
            let current = &mut self.pending[i];
            let newer = match (version, current.version) {
                (Some(a), Some(b)) => a > b,
                (Some(_), None) => true,
                _ => false,
            };
            if newer {
                *current = Pending { version, item };
            }
            return false;
        }
        if self.released.contains(&id) {
            return false;
        }
        self.pending_index.insert(id, self.pending.len());
        self.pending.push(Pending { version, item });
        self.accepted += 1;
        true
    }

    /// How many incidents are pending.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Hands out the first `count` pending items (all of them for `usize::MAX`), remembering up
    /// to `remember` released ids so that a late duplicate is still recognised.
    pub fn release(&mut self, count: usize, remember: usize) -> Vec<T> {
        let keep = self.pending.split_off(count.min(self.pending.len()));
        let out = std::mem::replace(&mut self.pending, keep);
        let mut released: Vec<(String, usize)> = Vec::new();
        let mut kept = HashMap::new();
        for (id, i) in self.pending_index.drain() {
            if i < out.len() {
                released.push((id, i));
            } else {
                kept.insert(id, i - out.len());
            }
        }
        self.pending_index = kept;
        released.sort_by_key(|(_, i)| *i);
        for (id, _) in released {
            self.released.insert(id.clone());
            self.released_order.push_back(id);
        }
        while self.released_order.len() > remember {
            if let Some(old) = self.released_order.pop_front() {
                self.released.remove(&old);
            }
        }
        out.into_iter().map(|p| p.item).collect()
    }
}

/// Lists every incident of `request` into memory (the `list` skill), de-duplicated.
pub fn list_all(
    request: &ListRequest,
    fetch: &mut dyn Fetch,
) -> Result<(Vec<Value>, usize), SkillError> {
    let mut pager = Pager::new(request);
    let mut dedup = Dedup::default();
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Pages(Vec<(u16, String)>, Vec<String>);

    struct Text(std::io::Cursor<Vec<u8>>);

    impl std::io::Read for Text {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(out)
        }
    }

    impl Body for Text {
        fn take_error(&mut self) -> Option<HttpError> {
            None
        }
    }

    impl Fetch for Pages {
        fn get(&mut self, _service: &str, path: &str) -> Result<(u16, Box<dyn Body>), HttpError> {
            self.1.push(path.to_string());
            let (status, body) = self.0.remove(0);
            Ok((
                status,
                Box::new(Text(std::io::Cursor::new(body.into_bytes()))),
            ))
        }
    }

    fn request(api: Api, page_size: usize) -> ListRequest {
        ListRequest {
            api,
            filter: "lastUpdateTime ge 2026-11-26T08:00:00Z".into(),
            page_size,
            limit: None,
        }
    }

    fn page(ids: &[u64]) -> String {
        json!({"value": ids.iter().map(|i| json!({"incidentId": i, "lastUpdateTime": "2026-11-26T09:00:00Z"})).collect::<Vec<_>>()}).to_string()
    }

    #[test]
    fn legacy_paging_skips_until_a_short_page() {
        let mut fetch = Pages(
            vec![
                (200, page(&[5, 4])),
                (200, page(&[3, 2])),
                (200, page(&[1])),
            ],
            vec![],
        );
        let (incidents, pages) = list_all(&request(Api::Defender, 2), &mut fetch).unwrap();
        assert_eq!(incidents.len(), 5);
        assert_eq!(pages, 3);
        assert_eq!(
            fetch.1,
            vec![
                "/api/incidents?$filter=lastUpdateTime%20ge%202026-11-26T08%3A00%3A00Z&$top=2",
                "/api/incidents?$filter=lastUpdateTime%20ge%202026-11-26T08%3A00%3A00Z&$top=2&$skip=2",
                "/api/incidents?$filter=lastUpdateTime%20ge%202026-11-26T08%3A00%3A00Z&$top=2&$skip=4",
            ]
        );
    }

    #[test]
    fn a_next_link_is_followed_as_given() {
        let first = json!({"value": [{"id": "2"}], "@odata.nextLink": "https://graph.microsoft.com/v1.0/security/incidents?$skiptoken=abc"}).to_string();
        let mut fetch = Pages(
            vec![(200, first), (200, json!({"value": []}).to_string())],
            vec![],
        );
        let (incidents, _) = list_all(&request(Api::Graph, 1), &mut fetch).unwrap();
        assert_eq!(incidents.len(), 1);
        assert_eq!(
            fetch.1[1],
            "https://graph.microsoft.com/v1.0/security/incidents?$skiptoken=abc"
        );
    }

    #[test]
    fn skip_paging_continues_after_the_last_next_link() {
        let first = json!({"value": [{"incidentId": 3}, {"incidentId": 2}], "@odata.nextLink": "https://api.security.microsoft.com/api/incidents?$top=2&$skip=2"}).to_string();
        let mut fetch = Pages(
            vec![(200, first), (200, page(&[1, 0])), (200, page(&[]))],
            vec![],
        );
        let (incidents, pages) = list_all(&request(Api::Defender, 2), &mut fetch).unwrap();
        assert_eq!((incidents.len(), pages), (4, 3));
        assert!(fetch.1[2].ends_with("&$top=2&$skip=4"), "{}", fetch.1[2]);
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

    #[test]
    fn a_page_holding_a_non_incident_is_fetched_again_and_nothing_of_it_leaks() {
        let broken = json!({"value": [{"incidentId": 2}, {"title": "no id"}]}).to_string();
        let mut fetch = Pages(vec![(200, broken), (200, page(&[2, 1]))], vec![]);
        let (incidents, pages) = list_all(&request(Api::Defender, 3), &mut fetch).unwrap();
        let ids: Vec<_> = incidents.iter().filter_map(incident_id).collect();
        assert_eq!((ids, pages), (vec!["2".to_string(), "1".to_string()], 1));
    }

    #[test]
    fn a_page_that_stays_broken_fails_naming_the_fault_and_the_fetches() {
        let broken = || (200, "{\"value\": [".to_string());
        let mut fetch = Pages(
            vec![broken(), broken(), broken(), broken(), broken()],
            vec![],
        );
        match list_all(&request(Api::Defender, 2), &mut fetch) {
            Err(SkillError::Upstream(u)) => {
                assert_eq!((u.status, u.code.as_str()), (200, "MalformedResponse"));
                assert!(
                    u.message.ends_with("; the page was fetched 5 times"),
                    "{}",
                    u.message
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// A body that delivers its first half, then fails as the host reports a connection lost.
    struct Cut(std::io::Cursor<Vec<u8>>, Option<HttpError>);

    impl std::io::Read for Cut {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(out)? {
                0 => Err(std::io::Error::other("cut")),
                n => Ok(n),
            }
        }
    }

    impl Body for Cut {
        fn take_error(&mut self) -> Option<HttpError> {
            self.1.take()
        }
    }

    /// Every fetch answers a cut-short body.
    struct AlwaysCut(usize);

    impl Fetch for AlwaysCut {
        fn get(&mut self, _: &str, _: &str) -> Result<(u16, Box<dyn Body>), HttpError> {
            self.0 += 1;
            let half = page(&[2, 1]).into_bytes()[..20].to_vec();
            let why = "the answer was cut short after 20 of 80 bytes (eof)".to_string();
            Ok((
                200,
                Box::new(Cut(
                    std::io::Cursor::new(half),
                    Some(HttpError::Transport(why)),
                )),
            ))
        }
    }

    #[test]
    fn a_body_that_stays_cut_short_fails_as_incomplete_not_unreachable() {
        let mut fetch = AlwaysCut(0);
        match list_all(&request(Api::Defender, 2), &mut fetch) {
            Err(SkillError::Upstream(u)) => {
                assert_eq!((u.status, u.code.as_str()), (200, "IncompleteResponse"));
                assert_eq!(
                    u.message,
                    "the answer was cut short after 20 of 80 bytes (eof); the page was fetched 5 times"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fetch.0, 5);
    }

    #[test]
    fn a_malformed_page_is_fetched_again() {
        let mut fetch = Pages(
            vec![(200, "{\"value\": [".into()), (200, page(&[1]))],
            vec![],
        );
        let (incidents, pages) = list_all(&request(Api::Defender, 2), &mut fetch).unwrap();
        assert_eq!((incidents.len(), pages), (1, 1));
    }

    fn accept(dedup: &mut Dedup<Value>, incident: Value) -> bool {
        dedup.accept(incident_id(&incident), last_update(&incident), incident)
    }

    #[test]
    fn a_duplicate_is_kept_once_at_its_latest_version() {
        let mut dedup = Dedup::default();
        assert!(accept(
            &mut dedup,
            json!({"incidentId": 7, "lastUpdateTime": "2026-11-26T09:00:00Z"})
        ));
        assert!(!accept(
            &mut dedup,
            json!({"incidentId": 7, "lastUpdateTime": "2026-11-26T10:00:00Z"})
        ));
        assert!(!accept(
            &mut dedup,
            json!({"incidentId": 7, "lastUpdateTime": "2026-11-26T08:00:00Z"})
        ));
        let out = dedup.release(usize::MAX, 10);
        assert_eq!(
            out,
            vec![json!({"incidentId": 7, "lastUpdateTime": "2026-11-26T10:00:00Z"})]
        );
        assert!(
            !accept(&mut dedup, json!({"incidentId": 7})),
            "released ids are still recognised"
        );
        assert_eq!(dedup.accepted, 1);
    }

    #[test]
    fn releasing_part_of_the_pending_items_keeps_the_rest_replaceable() {
        let mut dedup = Dedup::default();
        accept(&mut dedup, json!({"incidentId": 1}));
        accept(
            &mut dedup,
            json!({"incidentId": 2, "lastUpdateTime": "2026-11-26T09:00:00Z"}),
        );
        assert_eq!(dedup.release(1, 10), vec![json!({"incidentId": 1})]);
        assert!(!accept(
            &mut dedup,
            json!({"incidentId": 2, "lastUpdateTime": "2026-11-26T10:00:00Z"})
        ));
        assert_eq!(
            dedup.release(usize::MAX, 10),
            vec![json!({"incidentId": 2, "lastUpdateTime": "2026-11-26T10:00:00Z"})]
        );
    }
}
