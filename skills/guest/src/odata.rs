//! Paging over an OData collection: `$top` and `$skip`, or `@odata.nextLink` when the service
//! gives one; the last page is the first one shorter than `$top` (or empty) with no next link.
//!
//! [`ODataPager::next_page`] fetches through the host; the paging itself
//! ([`ODataPager::next_request`], [`ODataPager::record`]) is pure, so it can be tested natively.

use serde_json::Value;

use crate::{SkillError, UpstreamError};

/// Walks the pages of one collection.
#[derive(Debug, Clone)]
pub struct ODataPager {
    service: String,
    path: String,
    top: usize,
    skip: usize,
    next_link: Option<String>,
    done: bool,
    pages: usize,
}

impl ODataPager {
    /// Pages of `path_and_query` on `service` (such as `/api/incidents?$filter=...`), `top` items
    /// a page (at least 1).
    pub fn new(service: &str, path_and_query: &str, top: usize) -> Self {
        ODataPager {
            service: service.to_string(),
            path: path_and_query.to_string(),
            top: top.max(1),
            skip: 0,
            next_link: None,
            done: false,
            pages: 0,
        }
    }

    /// Pages recorded so far.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// The path (or the service's absolute next link) of the next page; `None` after the last.
    pub fn next_request(&self) -> Option<String> {
        if self.done {
            return None;
        }
        if let Some(link) = &self.next_link {
            return Some(link.clone());
        }
        let separator = if self.path.contains('?') { '&' } else { '?' };
        let mut path = format!("{}{separator}$top={}", self.path, self.top);
        if self.skip > 0 {
            path.push_str(&format!("&$skip={}", self.skip));
        }
        Some(path)
    }

    /// Records the page the last [`next_request`](Self::next_request) fetched and returns its
    /// items (`value`).
    pub fn record(&mut self, page: Value) -> Result<Vec<Value>, SkillError> {
        let Value::Object(mut page) = page else {
            return Err(malformed(&self.service, "a page is not a JSON object"));
        };
        let items = match page.remove("value") {
            Some(Value::Array(items)) => items,
            _ => return Err(malformed(&self.service, "a page has no `value` list")),
        };
        self.pages += 1;
        match page.remove("@odata.nextLink") {
            Some(Value::String(link)) => {
                if self.next_link.as_deref() == Some(link.as_str()) {
                    return Err(malformed(
                        &self.service,
                        "`@odata.nextLink` names the page it came from",
                    ));
                }
                self.next_link = Some(link);
            }
            _ => {
                // A collection paged by next links ends with the first page that has none.
                let followed_link = self.next_link.take().is_some();
                self.skip += items.len();
                self.done = followed_link || items.len() < self.top;
            }
        }
        Ok(items)
    }

    /// Fetches the next page through the host and returns its items, or `None` after the last
    /// page. A non-2xx answer or a host error becomes the skill error it means.
    pub fn next_page(&mut self) -> Result<Option<Vec<Value>>, SkillError> {
        let Some(path) = self.next_request() else {
            return Ok(None);
        };
        let page = crate::get_json(&self.service, &path)?;
        self.record(page).map(Some)
    }
}

fn malformed(service: &str, why: &str) -> SkillError {
    SkillError::Upstream(UpstreamError {
        status: 200,
        code: "MalformedPage".into(),
        message: format!("{why} (service {service})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(n: usize) -> Value {
        Value::Array((0..n).map(|i| json!({ "id": i })).collect())
    }

    #[test]
    fn skip_pages_until_a_short_page() {
        let mut pager = ODataPager::new("defender", "/api/incidents?$filter=x", 2);
        assert_eq!(
            pager.next_request().unwrap(),
            "/api/incidents?$filter=x&$top=2"
        );
        assert_eq!(pager.record(json!({ "value": items(2) })).unwrap().len(), 2);
        assert_eq!(
            pager.next_request().unwrap(),
            "/api/incidents?$filter=x&$top=2&$skip=2"
        );
        assert_eq!(pager.record(json!({ "value": items(1) })).unwrap().len(), 1);
        assert_eq!(pager.next_request(), None);
        assert_eq!(pager.pages(), 2);
    }

    #[test]
    fn next_links_are_followed_and_a_loop_is_refused() {
        let mut pager = ODataPager::new("graph", "/v1.0/security/incidents", 50);
        assert_eq!(
            pager.next_request().unwrap(),
            "/v1.0/security/incidents?$top=50"
        );
        let link = "https://graph.example/v1.0/security/incidents?$skiptoken=a";
        pager
            .record(json!({ "value": items(1), "@odata.nextLink": link }))
            .unwrap();
        assert_eq!(pager.next_request().unwrap(), link);
        assert!(matches!(
            pager.record(json!({ "value": items(1), "@odata.nextLink": link })),
            Err(SkillError::Upstream(u)) if u.code == "MalformedPage"
        ));
    }

    #[test]
    fn an_empty_full_page_ends_the_walk() {
        let mut pager = ODataPager::new("defender", "/api/incidents", 0);
        pager.record(json!({ "value": [] })).unwrap();
        assert_eq!(pager.next_request(), None);
    }

    #[test]
    fn a_page_without_value_is_malformed() {
        let mut pager = ODataPager::new("defender", "/api/incidents", 10);
        assert!(matches!(
            pager.record(json!({ "items": [] })),
            Err(SkillError::Upstream(u)) if u.code == "MalformedPage"
        ));
    }
}
