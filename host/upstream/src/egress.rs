//! Where a skill's HTTP request may go, and what it may carry: pure policy, no I/O.
//!
//! Threat: a skill (or an upstream answer it relays, such as `@odata.nextLink`) tries to send the
//! tenant's bearer token somewhere else: another host, another port, another scheme, a path
//! outside the API root through `..` or its encodings, the connection's own token endpoint when
//! login and API share an origin (a simulator, a relay), or a header that overrides the host's
//! own authentication. Or it tries to hurt the host and the service with the request itself:
//! thousands of headers, megabyte values or paths, CR/LF to split the request, method overrides,
//! protocol upgrades and forwarding headers the service would trust. Every request is checked
//! here before a token is fetched: its shape against [`RequestLimits`], its headers against an
//! allow-list ([`ALLOWED_HEADERS`]; the host-owned ones of [`is_forbidden_header`] are dropped, as
//! they always were), then its URL against the bound connection's base URLs and login origin.
//! Anything else is denied, with a message naming the rule and its limit.

use reqwest::Url;
use skillhost_contract::types::HttpRequest;

/// Request headers a skill may set (compared case-insensitively). Everything the service needs
/// for content negotiation, paging preferences, conditional requests and request correlation;
/// nothing that changes the method, the framing, the route or the connection.
pub const ALLOWED_HEADERS: &[&str] = &[
    "accept",
    "accept-language",
    "client-request-id",
    "consistencylevel",
    "content-type",
    "if-match",
    "if-none-match",
    "prefer",
    "return-client-request-id",
];

/// The shape one request may have. Defaults: 32 headers, 16 KiB of headers, an 8 KiB path and
/// query, a 1 MiB body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Headers per request, dropped ones included (default 32).
    pub max_headers: usize,
    /// Bytes of all header names and values together, dropped ones included (default 16 KiB).
    pub max_header_bytes: usize,
    /// Bytes of the path and query (or absolute URL) as the skill gave it (default 8 KiB).
    pub max_path_bytes: usize,
    /// Bytes of the request body (default 1 MiB).
    pub max_body_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_headers: 32,
            max_header_bytes: 16 * 1024,
            max_path_bytes: 8 * 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// A request the policy allowed: where it goes and the headers it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The URL to call.
    pub url: Url,
    /// The skill's headers to send (allowed ones; host-owned ones dropped).
    pub headers: Vec<(String, String)>,
}

/// The services one connection grants, each with its base URL, the login origin no skill may
/// call, and the shape a request may have.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    services: Vec<(String, Url)>,
    login: Option<Url>,
    limits: RequestLimits,
}

/// Headers the host owns and drops from a skill's request (authentication and routing): the
/// host sets its own, so a skill's never reach the service.
pub fn is_forbidden_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "authorization" | "cookie" | "host") || name.starts_with("proxy-")
}

/// Whether a skill may set header `name` (case-insensitive; see [`ALLOWED_HEADERS`]).
pub fn is_allowed_header(name: &str) -> bool {
    ALLOWED_HEADERS
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// Longest stretch of guest text quoted in a message.
const SHOWN: usize = 256;

/// `text` for a message: at most [`SHOWN`] bytes (cut at a character boundary, marked).
fn shown(text: &str) -> String {
    if text.len() <= SHOWN {
        return text.to_string();
    }
    let mut end = SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &text[..end], text.len())
}

/// An RFC 9110 token character (what a header name is made of).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl EgressPolicy {
    /// A policy granting `services` (name, base URL), refusing the OAuth endpoints of
    /// `login_base` (the connection's Entra ID endpoint), with the default [`RequestLimits`].
    /// Base URLs that do not parse are skipped; a login base that does not parse refuses an
    /// `oauth2` path segment on every origin.
    pub fn new(services: impl IntoIterator<Item = (String, String)>, login_base: &str) -> Self {
        let services = services
            .into_iter()
            .filter_map(|(name, base)| {
                let mut url = Url::parse(&base).ok()?;
                let trimmed = url.path().trim_end_matches('/').to_string();
                url.set_path(&trimmed);
                url.set_query(None);
                url.set_fragment(None);
                Some((name, url))
            })
            .collect();
        EgressPolicy {
            services,
            login: Url::parse(login_base).ok(),
            limits: RequestLimits::default(),
        }
    }

    /// The same policy with request shape `limits`.
    pub fn with_limits(mut self, limits: RequestLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The request shape this policy enforces.
    pub fn limits(&self) -> RequestLimits {
        self.limits
    }

    /// The names of the granted services.
    pub fn service_names(&self) -> Vec<&str> {
        self.services.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Decides `request` as a whole: its shape, its headers, its URL. `Ok` says where it goes and
    /// which of its headers to send; `Err` says which rule it breaks (and the limit).
    pub fn admit(&self, request: &HttpRequest) -> Result<Admitted, String> {
        self.check_shape(request)?;
        let headers = self.check_headers(&request.headers)?;
        let url = self.resolve(&request.service, &request.path_and_query)?;
        self.check_not_login(&request.service, &url)?;
        Ok(Admitted { url, headers })
    }

    /// The sizes: path and query, header count, header bytes, body.
    fn check_shape(&self, request: &HttpRequest) -> Result<(), String> {
        let limits = &self.limits;
        let path = request.path_and_query.len();
        if path > limits.max_path_bytes {
            return Err(format!(
                "the request's path and query is {path} bytes, over the limit of {} bytes",
                limits.max_path_bytes
            ));
        }
        let count = request.headers.len();
        if count > limits.max_headers {
            return Err(format!(
                "the request has {count} headers, over the limit of {} headers",
                limits.max_headers
            ));
        }
        let bytes: usize = request
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum();
        if bytes > limits.max_header_bytes {
            return Err(format!(
                "the request's headers are {bytes} bytes, over the limit of {} bytes",
                limits.max_header_bytes
            ));
        }
        let body = request.body.as_ref().map_or(0, Vec::len);
        if body > limits.max_body_bytes {
            return Err(format!(
                "the request body is {body} bytes, over the limit of {} bytes",
                limits.max_body_bytes
            ));
        }
        Ok(())
    }

    /// Each header well formed, then allowed (kept), host-owned (dropped) or denied.
    fn check_headers(&self, headers: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
        let mut kept = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(format!(
                    "header name {:?} is not a valid HTTP header name (letters, digits and \
                     !#$%&'*+-.^_`|~ only)",
                    shown(name)
                ));
            }
            if let Some(at) = value
                .bytes()
                .position(|b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
            {
                return Err(format!(
                    "the value of header `{}` has byte 0x{:02x} at offset {at}; a header value \
                     must be printable ASCII, spaces and tabs (no CR, LF, NUL or other control \
                     characters)",
                    shown(name),
                    value.as_bytes()[at]
                ));
            }
            if is_allowed_header(name) {
                kept.push((name.clone(), value.clone()));
            } else if !is_forbidden_header(name) {
                return Err(format!(
                    "header `{}` may not be set by a skill (allowed: {})",
                    shown(name),
                    ALLOWED_HEADERS.join(", ")
                ));
            }
        }
        Ok(kept)
    }

    /// A URL on the origin of the connection's login endpoint with an `oauth2` path segment (the
    /// token endpoint is `/<tenant_id>/oauth2/v2.0/token`) is the login service, not an API.
    fn check_not_login(&self, service: &str, url: &Url) -> Result<(), String> {
        let same_origin = self
            .login
            .as_ref()
            .is_none_or(|login| login.origin() == url.origin());
        let oauth = url.path().split('/').any(|segment| {
            let segment = percent_decode_lossy(segment);
            let name = segment.split(';').next().unwrap_or("");
            name.eq_ignore_ascii_case("oauth2")
        });
        if same_origin && oauth {
            return Err(format!(
                "{:?} on service `{}` resolves to the OAuth endpoints of the connection's login \
                 service ({}); a skill may not call the token endpoint",
                shown(url.path()),
                shown(service),
                url.origin().ascii_serialization()
            ));
        }
        Ok(())
    }

    /// Resolves `path_and_query` on `service` to the URL to call, or says why it is denied.
    pub fn resolve(&self, service: &str, path_and_query: &str) -> Result<Url, String> {
        let Some((_, base)) = self.services.iter().find(|(n, _)| n == service) else {
            return Err(format!(
                "service `{}` is not granted to this connection (granted: {})",
                shown(service),
                self.service_names().join(", ")
            ));
        };
        let quoted = format!("{:?}", shown(path_and_query));
        if path_and_query
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '#')
        {
            return Err(format!(
                "{quoted} contains whitespace, a control character, `\\` or `#`"
            ));
        }
        let relative = if path_and_query.starts_with("http://")
            || path_and_query.starts_with("https://")
        {
            let absolute = Url::parse(path_and_query)
                .map_err(|e| format!("{quoted} is not a valid URL ({e})"))?;
            if absolute.origin() != base.origin()
                || !absolute.username().is_empty()
                || absolute.password().is_some()
            {
                return Err(format!(
                    "{quoted} leaves the origin of service `{service}` ({})",
                    base.origin().ascii_serialization()
                ));
            }
            let raw = path_and_query
                .splitn(4, '/')
                .nth(3)
                .map(|rest| format!("/{rest}"))
                .unwrap_or_else(|| "/".to_string());
            raw.strip_prefix(base.path().trim_end_matches('/'))
                .map(str::to_string)
                .filter(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
                .ok_or_else(|| format!("{quoted} is outside the API root {}", base.path()))?
        } else if path_and_query.starts_with('/') && !path_and_query.starts_with("//") {
            path_and_query.to_string()
        } else {
            return Err(format!(
                "{quoted} must be a path starting with `/` (or a URL on the service's own origin)"
            ));
        };
        let path = relative.split('?').next().unwrap_or("");
        for segment in path.split('/') {
            let decoded = percent_decode_lossy(segment).to_ascii_lowercase();
            if decoded == "." || decoded == ".." || decoded.contains('/') || decoded.contains('\\')
            {
                return Err(format!(
                    "{quoted} has a path segment ({:?}) that could leave the API root",
                    shown(segment)
                ));
            }
        }
        let url = Url::parse(&format!(
            "{}{relative}",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|e| format!("{quoted} does not form a valid URL ({e})"))?;
        // Defence in depth: whatever the parser normalised, the result must still be inside.
        if url.origin() != base.origin() || !url.path().starts_with(base.path()) {
            return Err(format!("{quoted} resolves outside the API root"));
        }
        Ok(url)
    }
}

fn percent_decode_lossy(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skillhost_contract::types::Method;

    fn policy() -> EgressPolicy {
        EgressPolicy::new(
            [
                (
                    "defender".to_string(),
                    "https://api.security.microsoft.com".to_string(),
                ),
                (
                    "relay".to_string(),
                    "http://127.0.0.1:9000/tenant-a/".to_string(),
                ),
            ],
            "https://login.microsoftonline.com",
        )
    }

    /// Login and API on one origin, as with the simulator or a relay.
    fn shared_origin() -> EgressPolicy {
        EgressPolicy::new(
            [("defender".to_string(), "http://127.0.0.1:8400".to_string())],
            "http://127.0.0.1:8400",
        )
    }

    fn allowed(service: &str, path: &str) -> String {
        policy().resolve(service, path).unwrap().to_string()
    }

    fn denied(service: &str, path: &str) -> String {
        policy().resolve(service, path).unwrap_err()
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            service: "defender".to_string(),
            method: Method::Get,
            path_and_query: path.to_string(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: None,
        }
    }

    fn with_headers(headers: &[(&str, &str)]) -> HttpRequest {
        request("/api/incidents", headers)
    }

    fn admit_err(request: &HttpRequest) -> String {
        policy().admit(request).unwrap_err()
    }

    const ALLOW_LIST: &str = "accept, accept-language, client-request-id, consistencylevel, \
                              content-type, if-match, if-none-match, prefer, \
                              return-client-request-id";

    #[test]
    fn a_relative_path_with_query_resolves_on_the_base() {
        assert_eq!(
            allowed(
                "defender",
                "/api/incidents?$top=100&$filter=lastUpdateTime%20ge%202026-11-26T08:00:00Z"
            ),
            "https://api.security.microsoft.com/api/incidents?$top=100&$filter=lastUpdateTime%20ge%202026-11-26T08:00:00Z"
        );
        assert_eq!(
            allowed("relay", "/api/incidents"),
            "http://127.0.0.1:9000/tenant-a/api/incidents"
        );
    }

    #[test]
    fn a_same_origin_next_link_is_followed() {
        assert_eq!(
            allowed(
                "defender",
                "https://api.security.microsoft.com/api/incidents?$skip=100"
            ),
            "https://api.security.microsoft.com/api/incidents?$skip=100"
        );
        assert_eq!(
            allowed(
                "relay",
                "http://127.0.0.1:9000/tenant-a/api/incidents?$skip=10"
            ),
            "http://127.0.0.1:9000/tenant-a/api/incidents?$skip=10"
        );
    }

    #[test]
    fn another_origin_is_denied() {
        for url in [
            "https://evil.example/api/incidents",
            "http://api.security.microsoft.com/api/incidents",
            "https://api.security.microsoft.com:8443/api/incidents",
            "https://user@api.security.microsoft.com/api/incidents",
            "https://api.security.microsoft.com.evil.example/api",
        ] {
            assert!(
                denied("defender", url).contains("leaves the origin"),
                "{url}"
            );
        }
    }

    #[test]
    fn a_next_link_outside_the_base_path_is_denied() {
        assert!(
            denied("relay", "http://127.0.0.1:9000/tenant-b/api").contains("outside the API root")
        );
        assert!(
            denied("relay", "http://127.0.0.1:9000/tenant-a-evil/api")
                .contains("outside the API root")
        );
    }

    #[test]
    fn dot_segments_and_their_encodings_are_denied() {
        for path in [
            "/api/../../admin",
            "/api/%2e%2e/admin",
            "/api/%2E%2e/admin",
            "/api/.%2e/admin",
            "/api/./incidents",
            "/api%2f..%2fadmin",
            "/api/%5c..",
            "/..",
        ] {
            assert!(
                denied("relay", path).contains("could leave the API root"),
                "{path}"
            );
        }
    }

    #[test]
    fn scheme_relative_backslash_and_bare_paths_are_denied() {
        assert!(denied("defender", "//evil.example/x").contains("must be a path"));
        assert!(denied("defender", "api/incidents").contains("must be a path"));
        assert!(denied("defender", "/api\\..\\x").contains("`\\`"));
        assert!(denied("defender", "/api/incidents#frag").contains("`#`"));
        assert!(denied("defender", "/api/ incidents").contains("whitespace"));
    }

    #[test]
    fn an_ungranted_service_is_denied_naming_the_granted_ones() {
        assert_eq!(
            denied("graph", "/v1.0/security/incidents"),
            "service `graph` is not granted to this connection (granted: defender, relay)"
        );
    }

    #[test]
    fn authentication_and_routing_headers_are_forbidden() {
        for h in [
            "Authorization",
            "cookie",
            "HOST",
            "Proxy-Authorization",
            "proxy-connection",
        ] {
            assert!(is_forbidden_header(h), "{h}");
        }
        for h in ["Accept", "Prefer", "User-Agent"] {
            assert!(!is_forbidden_header(h), "{h}");
        }
    }

    #[test]
    fn every_allowed_header_passes_in_any_case_and_is_sent_as_given() {
        let mut headers = Vec::new();
        for name in ALLOWED_HEADERS {
            headers.push((name.to_string(), "v".to_string()));
            headers.push((name.to_ascii_uppercase(), "v".to_string()));
        }
        let request = HttpRequest {
            headers: headers.clone(),
            ..with_headers(&[])
        };
        let admitted = policy().admit(&request).unwrap();
        assert_eq!(admitted.headers, headers);
        assert_eq!(
            admitted.url.as_str(),
            "https://api.security.microsoft.com/api/incidents"
        );
    }

    #[test]
    fn typical_values_of_allowed_headers_pass() {
        let request = with_headers(&[
            ("Accept", "application/json;odata.metadata=minimal"),
            ("Accept-Language", "en-US,en;q=0.9"),
            (
                "Prefer",
                "odata.maxpagesize=100, include-unknown-enum-members",
            ),
            ("ConsistencyLevel", "eventual"),
            ("client-request-id", "7d0c1b2a-0000-4000-8000-000000000001"),
            (
                "If-None-Match",
                "W/\"datetime'2026-11-26T08%3A00%3A00Z'\"\t",
            ),
        ]);
        assert_eq!(policy().admit(&request).unwrap().headers.len(), 6);
    }

    #[test]
    fn host_owned_headers_are_dropped_and_the_request_goes_on() {
        let request = with_headers(&[
            ("Authorization", "Bearer guest-canary-token"),
            ("Cookie", "session=guest-canary-cookie"),
            ("Host", "evil.example"),
            ("Proxy-Authorization", "Basic guest-canary-proxy"),
            ("Accept", "application/json"),
        ]);
        assert_eq!(
            policy().admit(&request).unwrap().headers,
            vec![("Accept".to_string(), "application/json".to_string())]
        );
    }

    #[test]
    fn any_other_header_is_denied_naming_the_allow_list() {
        for name in [
            "X-HTTP-Method-Override",
            "x-http-method",
            "X-Method-Override",
            "Upgrade",
            "TE",
            "Trailer",
            "X-Forwarded-Host",
            "X-Forwarded-For",
            "Forwarded",
            "Transfer-Encoding",
            "Content-Length",
            "Connection",
            "Expect",
            "User-Agent",
            "Accept-Encoding",
        ] {
            assert_eq!(
                admit_err(&with_headers(&[("Accept", "*/*"), (name, "1")])),
                format!("header `{name}` may not be set by a skill (allowed: {ALLOW_LIST})"),
            );
        }
    }

    #[test]
    fn thirty_two_headers_pass_and_thirty_three_are_denied() {
        let headers = vec![("Accept", "*/*"); 32];
        assert!(policy().admit(&with_headers(&headers)).is_ok());
        let headers = vec![("Accept", "*/*"); 33];
        assert_eq!(
            admit_err(&with_headers(&headers)),
            "the request has 33 headers, over the limit of 32 headers"
        );
    }

    #[test]
    fn ten_thousand_headers_are_denied_by_count() {
        let headers = vec![("X-Flood", "1"); 10_000];
        assert_eq!(
            admit_err(&with_headers(&headers)),
            "the request has 10000 headers, over the limit of 32 headers"
        );
    }

    #[test]
    fn headers_of_16_kib_pass_and_one_byte_more_is_denied() {
        let value = "a".repeat(16 * 1024 - "Accept".len());
        assert!(policy().admit(&with_headers(&[("Accept", &value)])).is_ok());
        let value = format!("{value}a");
        assert_eq!(
            admit_err(&with_headers(&[("Accept", &value)])),
            "the request's headers are 16385 bytes, over the limit of 16384 bytes"
        );
    }

    #[test]
    fn a_one_megabyte_header_value_is_denied_by_size() {
        let value = "a".repeat(1024 * 1024);
        assert_eq!(
            admit_err(&with_headers(&[("Accept", &value)])),
            "the request's headers are 1048582 bytes, over the limit of 16384 bytes"
        );
    }

    #[test]
    fn cr_lf_nul_and_other_controls_in_a_value_are_denied() {
        let tail = "; a header value must be printable ASCII, spaces and tabs (no CR, LF, NUL or \
                    other control characters)";
        for (value, byte, at) in [
            ("application/json\r\nX-Injected: 1", "0d", 16),
            ("application/json\nX-Injected: 1", "0a", 16),
            ("a\0b", "00", 1),
            ("\x1b[31m", "1b", 0),
            ("a\x7f", "7f", 1),
            ("café", "c3", 3),
        ] {
            assert_eq!(
                admit_err(&with_headers(&[("Accept", value)])),
                format!("the value of header `Accept` has byte 0x{byte} at offset {at}{tail}"),
                "{value:?}"
            );
        }
        // Host-owned headers are checked too before they are dropped.
        assert!(
            admit_err(&with_headers(&[(
                "Authorization",
                "Bearer x\r\nHost: evil"
            )]))
            .starts_with("the value of header `Authorization` has byte 0x0d at offset 8")
        );
    }

    #[test]
    fn an_invalid_header_name_is_denied() {
        for name in ["", "X Bad", "Accept:", "X-A\r\nX-B", "Ünicode", "(x)"] {
            assert_eq!(
                admit_err(&with_headers(&[(name, "1")])),
                format!(
                    "header name {name:?} is not a valid HTTP header name (letters, digits and \
                     !#$%&'*+-.^_`|~ only)"
                ),
            );
        }
    }

    #[test]
    fn a_long_header_name_is_quoted_cut_in_the_message() {
        let name = "X".repeat(300);
        let message = admit_err(&with_headers(&[(&name, "1")]));
        assert_eq!(
            message,
            format!(
                "header `{}…(300 bytes)` may not be set by a skill (allowed: {ALLOW_LIST})",
                "X".repeat(256)
            )
        );
    }

    #[test]
    fn a_path_of_8_kib_passes_and_one_byte_more_is_denied() {
        let prefix = "/api/incidents?$filter=";
        let path = format!("{prefix}{}", "a".repeat(8 * 1024 - prefix.len()));
        assert!(policy().admit(&request(&path, &[])).is_ok());
        let path = format!("{path}a");
        assert_eq!(
            admit_err(&request(&path, &[])),
            "the request's path and query is 8193 bytes, over the limit of 8192 bytes"
        );
    }

    #[test]
    fn a_one_megabyte_path_is_denied_without_quoting_it() {
        let path = format!("/api/{}", "a".repeat(1024 * 1024));
        assert_eq!(
            admit_err(&request(&path, &[])),
            "the request's path and query is 1048581 bytes, over the limit of 8192 bytes"
        );
    }

    #[test]
    fn a_body_of_1_mib_passes_and_one_byte_more_is_denied() {
        let mut request = request("/api/incidents", &[("Content-Type", "application/json")]);
        request.method = Method::Post;
        request.body = Some(vec![b'x'; 1024 * 1024]);
        assert!(policy().admit(&request).is_ok());
        request.body = Some(vec![b'x'; 1024 * 1024 + 1]);
        assert_eq!(
            admit_err(&request),
            "the request body is 1048577 bytes, over the limit of 1048576 bytes"
        );
    }

    #[test]
    fn the_token_endpoint_on_a_shared_origin_is_denied() {
        let tenant = "00000000-0000-4000-8000-000000000001";
        let tail = "on service `defender` resolves to the OAuth endpoints of the connection's \
                    login service (http://127.0.0.1:8400); a skill may not call the token endpoint";
        for (path, shown_path) in [
            (
                format!("/{tenant}/oauth2/v2.0/token"),
                format!("/{tenant}/oauth2/v2.0/token"),
            ),
            (
                format!("http://127.0.0.1:8400/{tenant}/oauth2/v2.0/token"),
                format!("/{tenant}/oauth2/v2.0/token"),
            ),
            (
                "/common/oauth2/token".to_string(),
                "/common/oauth2/token".to_string(),
            ),
            (
                format!("/{tenant}/OAuth2/v2.0/token?x=1"),
                format!("/{tenant}/OAuth2/v2.0/token"),
            ),
            (
                format!("/{tenant}/%6Fauth2/v2.0/token"),
                format!("/{tenant}/%6Fauth2/v2.0/token"),
            ),
            (
                format!("/{tenant}/oauth2;x=1/v2.0/token"),
                format!("/{tenant}/oauth2;x=1/v2.0/token"),
            ),
        ] {
            let mut request = request(
                &path,
                &[("Content-Type", "application/x-www-form-urlencoded")],
            );
            request.method = Method::Post;
            request.body = Some(b"grant_type=client_credentials".to_vec());
            assert_eq!(
                shared_origin().admit(&request).unwrap_err(),
                format!("{shown_path:?} {tail}"),
                "{path}"
            );
        }
    }

    #[test]
    fn the_api_on_a_shared_origin_still_passes() {
        let admitted = shared_origin()
            .admit(&request("/api/incidents?$top=1", &[]))
            .unwrap();
        assert_eq!(
            admitted.url.as_str(),
            "http://127.0.0.1:8400/api/incidents?$top=1"
        );
        // `oauth2` inside a query value or a longer segment is not the login service.
        assert!(
            shared_origin()
                .admit(&request("/api/oauth2x?q=oauth2", &[]))
                .is_ok()
        );
    }

    #[test]
    fn an_oauth2_segment_on_another_origin_than_login_passes() {
        assert!(policy().admit(&request("/api/oauth2/things", &[])).is_ok());
    }

    #[test]
    fn an_unparsable_login_base_refuses_oauth2_everywhere() {
        let policy = EgressPolicy::new(
            [(
                "defender".to_string(),
                "https://api.security.microsoft.com".to_string(),
            )],
            "not a url",
        );
        assert!(
            policy
                .admit(&request("/t/oauth2/v2.0/token", &[]))
                .unwrap_err()
                .contains("a skill may not call the token endpoint")
        );
        assert!(policy.admit(&request("/api/incidents", &[])).is_ok());
    }

    #[test]
    fn limits_can_be_tightened() {
        let policy = policy().with_limits(RequestLimits {
            max_headers: 1,
            max_header_bytes: 10,
            max_path_bytes: 16,
            max_body_bytes: 0,
        });
        assert_eq!(
            policy
                .admit(&with_headers(&[("Accept", "*/*"), ("Prefer", "x")]))
                .unwrap_err(),
            "the request has 2 headers, over the limit of 1 headers"
        );
        assert_eq!(
            policy
                .admit(&with_headers(&[("Accept", "12345")]))
                .unwrap_err(),
            "the request's headers are 11 bytes, over the limit of 10 bytes"
        );
        assert_eq!(
            policy
                .admit(&request("/api/incidents?$top=1", &[]))
                .unwrap_err(),
            "the request's path and query is 21 bytes, over the limit of 16 bytes"
        );
        let mut post = request("/api/x", &[]);
        post.body = Some(vec![1]);
        assert_eq!(
            policy.admit(&post).unwrap_err(),
            "the request body is 1 bytes, over the limit of 0 bytes"
        );
        assert_eq!(RequestLimits::default().max_headers, 32);
    }

    #[test]
    fn the_shape_is_judged_before_the_service_and_the_url() {
        let mut request = request(&format!("/{}", "a".repeat(9000)), &[]);
        request.service = "graph".to_string();
        assert!(admit_err(&request).starts_with("the request's path and query is 9001 bytes"));
    }

    #[test]
    fn a_huge_service_name_is_quoted_cut() {
        let mut request = request("/api/incidents", &[]);
        request.service = "s".repeat(100_000);
        assert_eq!(
            admit_err(&request),
            format!(
                "service `{}…(100000 bytes)` is not granted to this connection (granted: defender, relay)",
                "s".repeat(256)
            )
        );
    }
}
