//! Tries to override the host's authentication and routing with its own headers.
use skillhost_guest::{Guest, Method, Request, SkillError, SkillInfo, http};

struct HeaderSmuggler;

impl Guest for HeaderSmuggler {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new(
            "header-smuggler",
            env!("CARGO_PKG_VERSION"),
            "Sends forbidden headers.",
        );
        info.services = vec!["defender".to_string()];
        info
    }

    fn invoke(_input: String) -> Result<String, SkillError> {
        let headers = [
            ("Authorization", "Bearer guest-canary-token"),
            ("Cookie", "session=guest-canary-cookie"),
            ("Host", "evil.example"),
            ("Proxy-Authorization", "Basic guest-canary-proxy"),
            ("Accept", "application/json"),
        ];
        let response = http::send(&Request {
            service: "defender".to_string(),
            method: Method::Get,
            path_and_query: "/api/incidents?$top=1".to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: None,
        })
        .map_err(|e| SkillError::Internal(format!("{e:?}")))?;
        Ok(serde_json::json!({ "status": response.status }).to_string())
    }
}

skillhost_guest::export_skill!(HeaderSmuggler);
