//! Paging over the incidents list of either API, and de-duplication of incidents across pages.
//!
//! Legacy: `$top` with `$skip`, or `@odata.nextLink` when the API gives one. Graph: `$top` ≤ 50
//! with `$expand=alerts` and `@odata.nextLink`. Both stop on a short page. With `$skip` paging,
//! an incident that changes during the run can be served twice (everything shifts when a new
//! one arrives); [`Dedup`] keeps each incident once, at its latest `lastUpdateTime`.
//!
//! The fetching, the retries of a damaged page and the paging are the same whichever way a page
//! is parsed: into one `Value` per incident ([`Pager::next_page_each`], the reference), into
//! detection rows ([`Pager::next_page_rows`]) or into canonical incident text
//! ([`Pager::next_page_listed`]), the last two through the window of the private `page` module.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;
use skillhost_guest::{HttpError, SkillError, UpstreamError};

use crate::errors::{api_error, fetch_error};
use crate::incident::{ListedParse, ParsedIncident};
use crate::incremental::Cursor;
use crate::page::{Buffers, PageItem};
use crate::params::{Api, ListRequest};
use crate::reference;
use crate::rows::{DetectionIncident, Rows, write_rows};

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

    /// The body as a [`std::io::BufRead`] when it keeps its bytes in a buffer of its own (the
    /// host's chunks), for a reader that copies them once into its own buffer rather than
    /// through [`std::io::Read::read`]'s; `None` to be read through `read`. Both may be used on
    /// one body, one read after another.
    fn buffered(&mut self) -> Option<&mut dyn std::io::BufRead> {
        None
    }
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
    /// The window the fast path reads bodies through, kept from page to page.
    window: Buffers,
}

/// How many times a page is fetched again when its answer was cut short, stalled, broke
/// mid-body, was not valid JSON, or held an object that is not an incident of the connection's
/// API: all signs of an answer damaged in transit, which a new fetch usually cures.
const PAGE_RETRIES: usize = 4;

/// What parsing one page's body gave.
pub(crate) enum PageParse {
    /// The page was read: how many incidents it held, and its `@odata.nextLink`.
    Page {
        count: usize,
        next_link: Option<String>,
    },
    /// A page object without a `value` list.
    NoValue,
    /// The callback failed; the page is not fetched again.
    Stopped(SkillError),
    /// An element of `value` is not an incident of the API (why).
    NotIncident(String),
    /// The body is not valid JSON (the parser's words).
    Invalid(String),
}

/// A page parse, and whether the body's own error (a host error met while reading) decides the
/// outcome: it does when the parse needed the bytes the error withheld.
pub(crate) struct Outcome {
    pub parse: PageParse,
    pub body_error_matters: bool,
}

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
            window: Buffers::default(),
        };
        pager.next = Some(pager.path(0));
        pager
    }

    /// Pages fetched so far.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Reads bodies through a window of `window` bytes, refilled under `low_water`, `read` bytes
    /// a read (tests make every incident cross a window's end).
    #[cfg(test)]
    pub(crate) fn window_sizes(&mut self, window: usize, low_water: usize, read: usize) {
        self.window.window = window;
        self.window.low_water = low_water;
        self.window.read = read;
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

    /// The next page, each incident as a `Value` (the reference path), or `None` after the last
    /// one.
    pub fn next_page(&mut self, fetch: &mut dyn Fetch) -> Result<Option<Page>, SkillError> {
        let mut page = Vec::new();
        let fetched = self.next_page_each(fetch, &mut |incident| {
            page.push(incident);
            Ok(())
        })?;
        Ok(fetched.map(|_| page))
    }

    /// Fetches the next page and hands its incidents to `on_incident` one at a time, each parsed
    /// into a `Value` as it arrives (the reference path, byte by byte from the body). Returns
    /// how many there were, or `None` after the last page.
    pub fn next_page_each(
        &mut self,
        fetch: &mut dyn Fetch,
        on_incident: &mut dyn FnMut(Value) -> Result<(), SkillError>,
    ) -> Result<Option<usize>, SkillError> {
        let api = self.api;
        self.next_page_with(fetch, &mut |body, _| {
            reference::read_page(body, api, on_incident)
        })
    }

    /// Fetches the next page and hands each incident's detection rows to `on_incident` as soon
    /// as the incident is parsed (the fast path). Returns how many incidents there were, or
    /// `None` after the last page.
    pub fn next_page_rows(
        &mut self,
        fetch: &mut dyn Fetch,
        on_incident: &mut dyn FnMut(DetectionIncident) -> Result<(), SkillError>,
    ) -> Result<Option<usize>, SkillError> {
        let mut item = DetectionItem(self.api);
        self.next_page_with(fetch, &mut |body, window| {
            crate::page::read_page(body, window, &mut item, on_incident)
        })
    }

    /// The next page, each incident as the text a `Value` of it serializes to (the fast path),
    /// or `None` after the last one. As with [`Pager::next_page`], the incidents a damaged answer
    /// gave before its damage are part of the page, ahead of those of the answer fetched again:
    /// de-duplication drops the repeats.
    pub fn next_page_listed(
        &mut self,
        fetch: &mut dyn Fetch,
    ) -> Result<Option<Vec<ListedIncident>>, SkillError> {
        let mut item = ListedItem(self.api);
        let mut page = Vec::new();
        let fetched = self.next_page_with(fetch, &mut |body, window| {
            crate::page::read_page(body, window, &mut item, &mut |incident| {
                page.push(incident);
                Ok(())
            })
        })?;
        Ok(fetched.map(|_| page))
    }

    /// Fetches the next page (again while its answer is damaged, up to [`PAGE_RETRIES`] times)
    /// and parses it with `parse`, given the body and the window.
    fn next_page_with(
        &mut self,
        fetch: &mut dyn Fetch,
        parse: &mut dyn FnMut(&mut dyn Body, &mut Buffers) -> Outcome,
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
            let outcome = parse(body.as_mut(), &mut self.window);
            let parse = match outcome.parse {
                PageParse::Stopped(error) => return Err(error),
                other => other,
            };
            let body_error = if outcome.body_error_matters {
                body.take_error()
            } else {
                None
            };
            // Incidents handed out before the damage are handed out again by the next fetch;
            // de-duplication drops the repeats. An object that is not an incident was refused
            // before it was handed out.
            let (code, why) = match (body_error, parse) {
                (Some(HttpError::Transport(why)), _) => ("IncompleteResponse", why),
                (Some(other), _) => return Err(fetch_error(other)),
                (None, PageParse::Page { count, next_link }) => break (count, next_link),
                (None, PageParse::NoValue) => (
                    "MalformedResponse",
                    "the incidents page has no `value` list".to_string(),
                ),
                (None, PageParse::NotIncident(why)) => ("MalformedResponse", why),
                (None, PageParse::Invalid(e)) => ("MalformedResponse", invalid(&e)),
                (None, PageParse::Stopped(error)) => return Err(error),
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

/// Why a page that is not JSON is refused.
fn invalid(error: &str) -> String {
    format!("the incidents page was not valid JSON ({error}); the answer was probably cut short")
}

/// Parses an incident the fast path declined into a `Value`. The text was just parsed, so this
/// does not fail; if it did, the page would be fetched again.
fn reparse(text: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(text).map_err(|e| invalid(&e.to_string()))
}

/// Incidents parsed for their detection rows.
struct DetectionItem(Api);

impl PageItem for DetectionItem {
    type Parsed<'de> = ParsedIncident<'de>;
    type Item = DetectionIncident;

    fn finish<'de>(
        &mut self,
        parsed: ParsedIncident<'de>,
        text: &'de [u8],
    ) -> Result<DetectionIncident, String> {
        let api = self.0;
        if parsed.duplicate {
            let incident = reparse(text)?;
            reference::check_shape(&incident, api)?;
            return Ok(DetectionIncident {
                id: reference::incident_id(&incident),
                version: reference::last_update(&incident),
                rows: Rows::from_strings(reference::serialized_rows(&incident, api)),
            });
        }
        parsed.check_shape(api)?;
        Ok(DetectionIncident {
            id: parsed.id(),
            version: parsed.last_update(),
            rows: write_rows(&parsed, api),
        })
    }
}

/// The detection rows of one incident given as JSON text (as it would stand in a page), on the
/// fast path; an error says why it is not an incident of `api` or not JSON.
pub fn detection_incident(text: &str, api: Api) -> Result<DetectionIncident, String> {
    let parsed: ParsedIncident = serde_json::from_str(text).map_err(|e| invalid(&e.to_string()))?;
    DetectionItem(api).finish(parsed, text.as_bytes())
}

/// An incident of the list skill, given as JSON text (as it would stand in a page), on the fast
/// path.
#[cfg(test)]
pub(crate) fn listed_incident(text: &[u8], api: Api) -> Result<ListedIncident, String> {
    let parsed: ListedParse = serde_json::from_slice(text).map_err(|e| invalid(&e.to_string()))?;
    ListedItem(api).finish(parsed, text)
}

/// An incident of the list skill: its text as a `Value` of it serializes to, and what
/// de-duplication needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedIncident {
    /// Its id as text ([`crate::reference::incident_id`]).
    pub id: Option<String>,
    /// Its last update ([`crate::reference::last_update`]).
    pub version: Option<jiff::Timestamp>,
    /// The incident, compact JSON.
    pub json: String,
}

/// Incidents re-written whole for the list skill.
struct ListedItem(Api);

impl PageItem for ListedItem {
    type Parsed<'de> = ListedParse<'de>;
    type Item = ListedIncident;

    fn finish<'de>(
        &mut self,
        parsed: ListedParse<'de>,
        text: &'de [u8],
    ) -> Result<ListedIncident, String> {
        let api = self.0;
        if parsed.duplicate {
            let incident = reparse(text)?;
            reference::check_shape(&incident, api)?;
            return Ok(ListedIncident {
                id: reference::incident_id(&incident),
                version: reference::last_update(&incident),
                json: incident.to_string(),
            });
        }
        parsed.check_shape(api)?;
        Ok(ListedIncident {
            id: parsed.id(),
            version: parsed.last_update(),
            json: parsed.text,
        })
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

/// What [`Dedup`] tells items apart by: the incident's id, and its version when each version is
/// kept.
type DedupKey = (String, Option<jiff::Timestamp>);

/// An item [`Dedup`] handed out, with the incident id and version it was accepted with.
pub struct Released<T> {
    /// The incident's id, if it had one.
    pub id: Option<String>,
    /// The incident's `lastUpdateTime`, if it had one.
    pub version: Option<jiff::Timestamp>,
    /// The item.
    pub item: T,
}

struct Pending<T> {
    id: Option<String>,
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
    pending: VecDeque<Pending<T>>,
    /// Pending keys ([`Dedup::key`]), each with the sequence number of its place (`first` is
    /// `pending[0]`'s).
    pending_index: HashMap<DedupKey, u64>,
    first: u64,
    released: HashSet<DedupKey>,
    released_order: VecDeque<DedupKey>,
    /// Incidents accepted (unique ids).
    pub accepted: usize,
    /// Whether each version of an incident is kept (an incremental run delivers every version
    /// it sees), rather than only the latest.
    by_version: bool,
}

impl<T> Default for Dedup<T> {
    fn default() -> Self {
        Dedup {
            pending: VecDeque::new(),
            pending_index: HashMap::new(),
            first: 0,
            released: HashSet::new(),
            released_order: VecDeque::new(),
            accepted: 0,
            by_version: false,
        }
    }
}

impl<T> Dedup<T> {
    /// Keeps each version (id + `lastUpdateTime`) once, rather than each incident at its latest
    /// version: an incident updated while an incremental run pages is delivered at both.
    pub fn by_version() -> Self {
        Dedup {
            by_version: true,
            ..Dedup::default()
        }
    }

    /// What identifies an item: its id, or with [`Dedup::by_version`] its id and version.
    fn key(by_version: bool, id: &str, version: Option<jiff::Timestamp>) -> DedupKey {
        (id.to_string(), version.filter(|_| by_version))
    }

    /// Takes the item of incident `id` at `version`. Returns false when it was a duplicate (an
    /// older or equal version is dropped; a newer one replaces the pending one).
    pub fn accept(
        &mut self,
        id: Option<String>,
        version: Option<jiff::Timestamp>,
        item: T,
    ) -> bool {
        let Some(id) = id else {
            self.pending.push_back(Pending {
                id: None,
                version,
                item,
            });
            self.accepted += 1;
            return true;
        };
        let key = Self::key(self.by_version, &id, version);
        if let Some(&place) = self.pending_index.get(&key) {
            let at = place
                .checked_sub(self.first)
                .and_then(|at| usize::try_from(at).ok());
            if let Some(current) = at.and_then(|at| self.pending.get_mut(at)) {
                let newer = match (version, current.version) {
                    (Some(a), Some(b)) => a > b,
                    (Some(_), None) => true,
                    _ => false,
                };
                if newer {
                    current.version = version;
                    current.item = item;
                }
            }
            return false;
        }
        if self.released.contains(&key) {
            return false;
        }
        self.pending_index
            .insert(key, self.first + self.pending.len() as u64);
        self.pending.push_back(Pending {
            id: Some(id),
            version,
            item,
        });
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
        self.release_keyed(count, remember)
            .into_iter()
            .map(|released| released.item)
            .collect()
    }

    /// [`Dedup::release`], each item with the incident id and version it was accepted with.
    pub fn release_keyed(&mut self, count: usize, remember: usize) -> Vec<Released<T>> {
        let count = count.min(self.pending.len());
        let mut out = Vec::with_capacity(count);
        for pending in self.pending.drain(..count) {
            if let Some(id) = &pending.id {
                let key = Self::key(self.by_version, id, pending.version);
                self.pending_index.remove(&key);
                self.released.insert(key.clone());
                self.released_order.push_back(key);
            }
            out.push(Released {
                id: pending.id,
                version: pending.version,
                item: pending.item,
            });
        }
        self.first += count as u64;
        while self.released_order.len() > remember {
            if let Some(old) = self.released_order.pop_front() {
                self.released.remove(&old);
            }
        }
        out
    }
}

/// Lists every incident of `request` into memory (the `list` skill), de-duplicated, each as the
/// text a `Value` of it serializes to; returns them and the pages fetched.
pub fn list_all(
    request: &ListRequest,
    fetch: &mut dyn Fetch,
) -> Result<(Vec<String>, usize), SkillError> {
    list_all_on(Pager::new(request), request, fetch, None)
}

/// [`list_all`] of an incremental run: only the versions `cursor` admits (those no completed
/// run delivered).
pub fn list_new(
    request: &ListRequest,
    fetch: &mut dyn Fetch,
    cursor: &mut Cursor,
) -> Result<(Vec<String>, usize), SkillError> {
    list_all_on(Pager::new(request), request, fetch, Some(cursor))
}

/// [`list_all`] with the pager given (tests give it a small window), through `cursor` if any.
pub(crate) fn list_all_on(
    mut pager: Pager,
    request: &ListRequest,
    fetch: &mut dyn Fetch,
    mut cursor: Option<&mut Cursor>,
) -> Result<(Vec<String>, usize), SkillError> {
    let mut dedup = match cursor {
        Some(_) => Dedup::by_version(),
        None => Dedup::default(),
    };
    while let Some(page) = pager.next_page_listed(fetch)? {
        for incident in page {
            if request.limit.is_some_and(|l| dedup.accepted >= l) {
                break;
            }
            dedup.accept(incident.id, incident.version, incident.json);
        }
        if request.limit.is_some_and(|l| dedup.accepted >= l) {
            break;
        }
    }
    let incidents = dedup
        .release_keyed(usize::MAX, 0)
        .into_iter()
        .filter(|r| match cursor.as_deref_mut() {
            Some(cursor) => cursor.admit(r.id.as_deref(), r.version),
            None => true,
        })
        .map(|r| r.item)
        .collect();
    Ok((incidents, pager.pages()))
}

/// The list skill's result: `{api, filter, pages, count, incidents}`, the incidents given as
/// their JSON text.
pub fn list_result(api: Api, filter: &str, pages: usize, incidents: &[String]) -> String {
    let size: usize = incidents.iter().map(|i| i.len() + 1).sum();
    let mut out = String::with_capacity(size + filter.len() + 96);
    out.push_str("{\"api\":");
    crate::json::write_str(&mut out, api.service());
    out.push_str(",\"filter\":");
    crate::json::write_str(&mut out, filter);
    out.push_str(&format!(
        ",\"pages\":{pages},\"count\":{},\"incidents\":[",
        incidents.len()
    ));
    for (i, incident) in incidents.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(incident);
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{incident_id, last_update};
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
    fn a_page_holding_a_non_incident_is_fetched_again_and_nothing_of_it_leaks() {
        let broken = json!({"value": [{"incidentId": 2}, {"title": "no id"}]}).to_string();
        let mut fetch = Pages(vec![(200, broken), (200, page(&[2, 1]))], vec![]);
        let (incidents, pages) = list_all(&request(Api::Defender, 3), &mut fetch).unwrap();
        let ids: Vec<_> = incidents
            .iter()
            .filter_map(|i| incident_id(&serde_json::from_str(i).unwrap()))
            .collect();
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
    fn by_version_every_version_is_kept_once_even_after_its_incident_was_released() {
        let mut dedup = Dedup::by_version();
        let v1 = json!({"incidentId": 7, "lastUpdateTime": "2026-11-26T09:00:00Z"});
        let v2 = json!({"incidentId": 7, "lastUpdateTime": "2026-11-26T10:00:00Z"});
        assert!(accept(&mut dedup, v1.clone()));
        assert!(accept(&mut dedup, v2.clone()));
        assert!(!accept(&mut dedup, v1.clone()), "the same version twice");
        assert_eq!(dedup.release(1, 10), vec![v1.clone()]);
        assert!(
            !accept(&mut dedup, v1),
            "a released version is still recognised"
        );
        let v3 = json!({"incidentId": 7, "lastUpdateTime": "2026-11-26T11:00:00Z"});
        assert!(accept(&mut dedup, v3.clone()), "a newer one is not dropped");
        assert_eq!(dedup.release(usize::MAX, 10), vec![v2, v3]);
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
