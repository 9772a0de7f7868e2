//! Tries to hurt the host through `http.send`, one way per `mode`:
//!
//! - `many-headers`: 10,000 headers;
//! - `huge-header`: an `Accept` value of 1 MiB;
//! - `crlf`: CR/LF in a header value (request splitting);
//! - `method-override`: `X-HTTP-Method-Override: DELETE`;
//! - `long-path`: a path and query of 1 MiB;
//! - `flood`: `count` requests (default 1,000) with paths of `path_bytes` (default 1 MiB),
//!   going on after every denial;
//! - `token-endpoint`: a POST of client credentials to `target` (default
//!   `/common/oauth2/v2.0/token`) on the `defender` service;
//! - `past-cap`: `count` requests (default 10,050) the policy denies, going on after every
//!   denial, past the invocation's request cap;
//! - `repeat`: `count` plain `GET /api/incidents?$top=1` (default 2), stopping at the first error.
//!
//! A single-shot mode returns its denial as `SkillError::Denied`; the loops return what they
//! counted.
use skillhost_guest::{
    Guest, HttpError, Method, ParamKind, ParamSpec, Request, SkillError, SkillInfo, http,
};

struct HttpFlood;

const MIB: usize = 1024 * 1024;

fn request(path: String, headers: Vec<(String, String)>) -> Request {
    Request {
        service: "defender".to_string(),
        method: Method::Get,
        path_and_query: path,
        headers,
        body: None,
    }
}

fn header(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// Sends `request` once; a denial becomes the skill's error.
fn once(request: Request) -> Result<String, SkillError> {
    match http::send(&request) {
        Ok(r) => Ok(serde_json::json!({ "status": r.status }).to_string()),
        Err(HttpError::Denied(why)) => Err(SkillError::Denied(why)),
        Err(HttpError::Timeout) => Err(SkillError::Timeout("http.send".to_string())),
        Err(e) => Err(SkillError::Internal(format!("{e:?}"))),
    }
}

/// Sends `count` requests made by `make`, going on whatever happens; counts the outcomes.
fn flood(count: u64, make: impl Fn(u64) -> Request) -> String {
    let (mut denied, mut answered, mut other) = (0u64, 0u64, 0u64);
    for i in 0..count {
        match http::send(&make(i)) {
            Ok(_) => answered += 1,
            Err(HttpError::Denied(_)) => denied += 1,
            Err(_) => other += 1,
        }
    }
    serde_json::json!({ "denied": denied, "answered": answered, "other": other }).to_string()
}

impl Guest for HttpFlood {
    fn describe() -> SkillInfo {
        let mut info = SkillInfo::new("http-flood", env!("CARGO_PKG_VERSION"), "Abuses http.send.");
        info.services = vec!["defender".to_string()];
        info.parameters = vec![
            ParamSpec::new("mode", ParamKind::Text, true, "What to try.").allowed(&[
                "many-headers",
                "huge-header",
                "crlf",
                "method-override",
                "long-path",
                "flood",
                "token-endpoint",
                "past-cap",
                "repeat",
                "open-and-spin",
            ]),
            ParamSpec::new("target", ParamKind::Text, false, "Path for token-endpoint."),
            ParamSpec::new("count", ParamKind::Integer, false, "Requests of a loop.")
                .range(Some(0), Some(1_000_000)),
            ParamSpec::new(
                "path_bytes",
                ParamKind::Integer,
                false,
                "Path size of flood.",
            )
            .range(Some(16), Some(8 * MIB as i64)),
        ];
        info
    }

    fn invoke(input: String) -> Result<String, SkillError> {
        let input: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| SkillError::Internal(e.to_string()))?;
        let mode = input["mode"].as_str().unwrap_or_default();
        let count = |default: u64| input["count"].as_u64().unwrap_or(default);
        let accept = header("Accept", "application/json");
        let incidents = || "/api/incidents?$top=1".to_string();
        match mode {
            "many-headers" => once(request(
                incidents(),
                (0..10_000)
                    .map(|i| header(&format!("X-Flood-{i}"), "1"))
                    .collect(),
            )),
            "huge-header" => once(request(
                incidents(),
                vec![header("Accept", &"a".repeat(MIB))],
            )),
            "crlf" => once(request(
                incidents(),
                vec![header(
                    "Accept",
                    "application/json\r\nX-HTTP-Method-Override: DELETE",
                )],
            )),
            "method-override" => once(request(
                incidents(),
                vec![accept, header("X-HTTP-Method-Override", "DELETE")],
            )),
            "long-path" => once(request(
                format!("/api/incidents?$filter={}", "a".repeat(MIB)),
                Vec::new(),
            )),
            "flood" => {
                let bytes = input["path_bytes"].as_u64().unwrap_or(MIB as u64) as usize;
                let path = format!("/api/{}", "a".repeat(bytes.saturating_sub(5)));
                Ok(flood(count(1_000), |_| request(path.clone(), Vec::new())))
            }
            "token-endpoint" => {
                let target = input["target"]
                    .as_str()
                    .unwrap_or("/common/oauth2/v2.0/token");
                let mut post = request(
                    target.to_string(),
                    vec![header("Content-Type", "application/x-www-form-urlencoded")],
                );
                post.method = Method::Post;
                post.body = Some(
                    b"grant_type=client_credentials&client_id=guest&client_secret=guest\
                      &scope=https%3A%2F%2Fapi.security.microsoft.com%2F.default"
                        .to_vec(),
                );
                once(post)
            }
            "past-cap" => Ok(flood(count(10_050), |_| {
                request(
                    incidents(),
                    vec![header("X-HTTP-Method-Override", "DELETE")],
                )
            })),
            "repeat" => {
                let mut statuses = Vec::new();
                for _ in 0..count(2) {
                    match http::send(&request(incidents(), Vec::new())) {
                        Ok(r) => statuses.push(r.status),
                        Err(HttpError::Denied(why)) => return Err(SkillError::Denied(why)),
                        Err(HttpError::Timeout) => {
                            return Err(SkillError::Timeout(format!(
                                "call {} of {}",
                                statuses.len() + 1,
                                count(2)
                            )));
                        }
                        Err(e) => return Err(SkillError::Internal(format!("{e:?}"))),
                    }
                }
                Ok(serde_json::json!({ "statuses": statuses }).to_string())
            }
            "open-and-spin" => {
                // Bodies opened and never read, then computing without end: their calls must
                // be audited all the same when the host stops the skill.
                let mut open = Vec::new();
                for _ in 0..count(1) {
                    match skillhost_guest::get_streaming("defender", &incidents()) {
                        Ok(body) => open.push(body),
                        Err(e) => return Err(SkillError::Internal(format!("{e:?}"))),
                    }
                }
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(open.len() as u64));
                }
            }
            other => Err(SkillError::InvalidInput(format!("unknown mode {other:?}"))),
        }
    }
}

skillhost_guest::export_skill!(HttpFlood);
