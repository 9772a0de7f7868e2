//! Where a skill's HTTP request may go: pure policy, no I/O.
//!
//! Threat: a skill (or an upstream answer it relays, such as `@odata.nextLink`) tries to send the
//! tenant's bearer token somewhere else: another host, another port, another scheme, a path
//! outside the API root through `..` or its encodings, or a header that overrides the host's
//! own authentication. Every request is resolved here against the bound connection's base URLs
//! before a token is attached; anything that would leave the origin or the base path is denied.

use reqwest::Url;

/// The services one connection grants, each with its base URL.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    services: Vec<(String, Url)>,
}

/// Headers a guest may not set: the host owns authentication and routing.
pub fn is_forbidden_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "cookie" | "host" | "content-length" | "transfer-encoding" | "connection"
    ) || name.starts_with("proxy-")
}

impl EgressPolicy {
    /// A policy granting `services` (name, base URL). Base URLs that do not parse are skipped.
    pub fn new(services: impl IntoIterator<Item = (String, String)>) -> Self {
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
        EgressPolicy { services }
    }

    /// The names of the granted services.
    pub fn service_names(&self) -> Vec<&str> {
        self.services.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Resolves `path_and_query` on `service` to the URL to call, or says why it is denied.
    pub fn resolve(&self, service: &str, path_and_query: &str) -> Result<Url, String> {
        let Some((_, base)) = self.services.iter().find(|(n, _)| n == service) else {
            return Err(format!(
                "service `{service}` is not granted to this connection (granted: {})",
                self.service_names().join(", ")
            ));
        };
        if path_and_query
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '#')
        {
            return Err(format!(
                "{path_and_query:?} contains whitespace, a control character, `\\` or `#`"
            ));
        }
        let relative = if path_and_query.starts_with("http://")
            || path_and_query.starts_with("https://")
        {
            let absolute = Url::parse(path_and_query)
                .map_err(|e| format!("{path_and_query:?} is not a valid URL ({e})"))?;
            if absolute.origin() != base.origin()
                || !absolute.username().is_empty()
                || absolute.password().is_some()
            {
                return Err(format!(
                    "{path_and_query:?} leaves the origin of service `{service}` ({})",
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
                .ok_or_else(|| {
                    format!("{path_and_query:?} is outside the API root {}", base.path())
                })?
        } else if path_and_query.starts_with('/') && !path_and_query.starts_with("//") {
            path_and_query.to_string()
        } else {
            return Err(format!(
                "{path_and_query:?} must be a path starting with `/` (or a URL on the service's own origin)"
            ));
        };
        let path = relative.split('?').next().unwrap_or("");
        for segment in path.split('/') {
            let decoded = percent_decode_lossy(segment).to_ascii_lowercase();
            if decoded == "." || decoded == ".." || decoded.contains('/') || decoded.contains('\\')
            {
                return Err(format!(
                    "{path_and_query:?} has a path segment ({segment:?}) that could leave the API root"
                ));
            }
        }
        let url = Url::parse(&format!(
            "{}{relative}",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|e| format!("{path_and_query:?} does not form a valid URL ({e})"))?;
        // Defence in depth: whatever the parser normalised, the result must still be inside.
        if url.origin() != base.origin() || !url.path().starts_with(base.path()) {
            return Err(format!("{path_and_query:?} resolves outside the API root"));
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

    fn policy() -> EgressPolicy {
        EgressPolicy::new([
            (
                "defender".to_string(),
                "https://api.security.microsoft.com".to_string(),
            ),
            (
                "relay".to_string(),
                "http://127.0.0.1:9000/tenant-a/".to_string(),
            ),
        ])
    }

    fn allowed(service: &str, path: &str) -> String {
        policy().resolve(service, path).unwrap().to_string()
    }

    fn denied(service: &str, path: &str) -> String {
        policy().resolve(service, path).unwrap_err()
    }

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
}
