//! The parameters of the list skills, validated, and the OData `$filter` they produce.
//!
//! Threat: parameter text ends up inside an OData expression. A value that could change the
//! expression's meaning (a quote, an operator smuggled into a string) is refused, never escaped
//! into it; timestamps are re-formatted from parsed values, never copied.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use skillhost_guest::{ParamKind, ParamSpec, SkillError};

/// Which incidents API the bound connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `GET /api/incidents` (Defender XDR).
    Defender,
    /// `GET /v1.0/security/incidents` (Microsoft Graph).
    Graph,
}

impl Api {
    /// The service name of `http.send` and the `api` of outputs.
    pub fn service(self) -> &'static str {
        match self {
            Api::Defender => "defender",
            Api::Graph => "graph",
        }
    }

    /// The application permission the API needs (the host's Microsoft provider module holds the
    /// same names; a test of the `skillhost` package keeps them equal).
    pub fn permission(self) -> &'static str {
        match self {
            Api::Defender => "Incident.Read.All",
            Api::Graph => "SecurityIncident.Read.All",
        }
    }

    /// Largest `$top` the API accepts.
    pub fn max_page_size(self) -> i64 {
        match self {
            Api::Defender => 100,
            Api::Graph => 50,
        }
    }

    /// The API's name for a time field given by its legacy name.
    fn field(self, legacy: &str) -> &str {
        match (self, legacy) {
            (Api::Graph, "createdTime") => "createdDateTime",
            (Api::Graph, "lastUpdateTime") => "lastUpdateDateTime",
            (_, other) => other,
        }
    }
}

/// Incident status values of the legacy API (the Graph spelling is their camelCase).
pub const STATUSES: &[&str] = &["Active", "InProgress", "Resolved", "Redirected"];

/// The parameters both list skills declare.
pub fn list_parameters() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("duration", ParamKind::Integer, false, "Length of the rolling window, in `duration_type` units, ending now (or at `end_time`).")
            .default_json("1")
            .range(Some(1), Some(1_000_000)),
        ParamSpec::new("duration_type", ParamKind::Text, false, "Unit of `duration`.")
            .default_json("\"days\"")
            .allowed(&["minutes", "hours", "days"]),
        ParamSpec::new("time_field", ParamKind::Text, false, "Which incident time the window filters on.")
            .default_json("\"lastUpdateTime\"")
            .allowed(&["lastUpdateTime", "createdTime"]),
        ParamSpec::new("start_time", ParamKind::Timestamp, false, "Start of the window (RFC 3339); overrides `duration`."),
        ParamSpec::new("end_time", ParamKind::Timestamp, false, "End of the window (RFC 3339); default: no end (now)."),
        ParamSpec::new("status", ParamKind::Text, false, "Only incidents with this status.").allowed(STATUSES),
        ParamSpec::new("assigned_to", ParamKind::Text, false, "Only incidents assigned to this user (user principal name)."),
        ParamSpec::new("limit", ParamKind::Integer, false, "Stop after this many incidents.").range(Some(1), None),
        ParamSpec::new("page_size", ParamKind::Integer, false, "Incidents per request: 1-100 on the Defender API, 1-50 on Graph (default: the maximum).")
            .range(Some(1), Some(100)),
    ]
}

/// A validated list request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRequest {
    /// The API.
    pub api: Api,
    /// The `$filter` expression, unencoded.
    pub filter: String,
    /// `$top`.
    pub page_size: usize,
    /// Stop after this many incidents.
    pub limit: Option<usize>,
}

fn invalid(message: String) -> SkillError {
    SkillError::InvalidInput(message)
}

impl ListRequest {
    /// Validates `input` (already type-checked by the host) for `api`, with `now` as the end of
    /// a rolling window.
    pub fn from_input(input: &Value, api: Api, now: Timestamp) -> Result<ListRequest, SkillError> {
        Self::from_input_starting(input, api, now, None)
    }

    /// [`ListRequest::from_input`], the window starting at `start` when given (an incremental
    /// run's cursor) instead of where the parameters put it.
    pub fn from_input_starting(
        input: &Value,
        api: Api,
        now: Timestamp,
        start: Option<Timestamp>,
    ) -> Result<ListRequest, SkillError> {
        let (window_start, end) = window(input, now)?;
        let start = start.unwrap_or(window_start);
        let time_field = input["time_field"].as_str().unwrap_or("lastUpdateTime");
        if !["lastUpdateTime", "createdTime"].contains(&time_field) {
            return Err(invalid(format!(
                "time_field must be lastUpdateTime or createdTime, not {time_field:?}"
            )));
        }
        let filter = filter(input, api, api.field(time_field), start, end)?;
        let max = api.max_page_size();
        let page_size = match input["page_size"].as_i64() {
            None => max,
            Some(n) if (1..=max).contains(&n) => n,
            Some(n) => {
                return Err(invalid(format!(
                    "page_size must be between 1 and {max} on the {} API, not {n}",
                    api.service()
                )));
            }
        };
        let limit = match input["limit"].as_i64() {
            None => None,
            Some(n) if n >= 1 => Some(n as usize),
            Some(n) => return Err(invalid(format!("limit must be at least 1, not {n}"))),
        };
        Ok(ListRequest {
            api,
            filter,
            page_size: page_size as usize,
            limit,
        })
    }
}

/// Where the window of `input` starts, with `now` as the end of a rolling window.
pub fn window_start(input: &Value, now: Timestamp) -> Result<Timestamp, SkillError> {
    Ok(window(input, now)?.0)
}

/// `t` to the whole second, as the window's ends are: the filter is logged and compared by
/// people, and sub-second precision buys nothing against the API's own timestamps.
pub(crate) fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// The window's start and optional end: `start_time`/`end_time` when given, else `duration`
/// units of `duration_type` back from the end (or `now`, to the whole second).
fn window(input: &Value, now: Timestamp) -> Result<(Timestamp, Option<Timestamp>), SkillError> {
    let now = whole_seconds(now);
    let duration = input["duration"].as_i64().unwrap_or(1);
    if duration < 1 {
        return Err(invalid(format!(
            "duration must be at least 1, not {duration}"
        )));
    }
    let unit = input["duration_type"].as_str().unwrap_or("days");
    let seconds_per_unit: i64 = match unit {
        "minutes" => 60,
        "hours" => 3600,
        "days" => 86_400,
        other => {
            return Err(invalid(format!(
                "duration_type must be minutes, hours or days, not {other:?}"
            )));
        }
    };
    let end = parse_time(input, "end_time")?;
    let start = match parse_time(input, "start_time")? {
        Some(start) => start,
        None => {
            let span = duration
                .checked_mul(seconds_per_unit)
                .map(SignedDuration::from_secs)
                .ok_or_else(|| invalid(format!("duration {duration} {unit} is too large")))?;
            let until = end.unwrap_or(now);
            until
                .checked_sub(span)
                .ok()
                .filter(|start| *start >= Timestamp::UNIX_EPOCH)
                .ok_or_else(|| {
                    invalid(format!(
                        "duration {duration} {unit} reaches back before 1970; use a shorter window"
                    ))
                })?
        }
    };
    if let Some(end) = end
        && start > end
    {
        return Err(invalid(format!(
            "start_time {start} is after end_time {end}"
        )));
    }
    Ok((start, end))
}

fn parse_time(input: &Value, name: &str) -> Result<Option<Timestamp>, SkillError> {
    match input[name].as_str() {
        None => Ok(None),
        Some(text) => text.parse::<Timestamp>().map(Some).map_err(|_| {
            invalid(format!(
                "{name} must be an RFC 3339 timestamp such as 2026-11-26T08:00:00Z, not {text:?}"
            ))
        }),
    }
}

/// The `$filter` expression: the window on `field`, then the optional status and assignee.
fn filter(
    input: &Value,
    api: Api,
    field: &str,
    start: Timestamp,
    end: Option<Timestamp>,
) -> Result<String, SkillError> {
    let mut filter = format!("{field} ge {}", odata_time(start));
    if let Some(end) = end {
        filter.push_str(&format!(" and {field} le {}", odata_time(end)));
    }
    if let Some(status) = input["status"].as_str() {
        if !STATUSES.contains(&status) {
            return Err(invalid(format!(
                "status must be one of {}, not {status:?}",
                STATUSES.join(", ")
            )));
        }
        let value = match api {
            Api::Defender => status.to_string(),
            Api::Graph => camel_case(status),
        };
        filter.push_str(&format!(" and status eq {}", odata_string(&value)?));
    }
    if let Some(user) = input["assigned_to"].as_str() {
        if user.len() > 256 {
            return Err(invalid(format!(
                "assigned_to is {} bytes long; a user principal name has at most 256",
                user.len()
            )));
        }
        filter.push_str(&format!(" and assignedTo eq {}", odata_string(user)?));
    }
    Ok(filter)
}

/// A UTC timestamp as OData wants it: `2026-11-26T08:00:00Z` (fraction only when present).
pub fn odata_time(t: Timestamp) -> String {
    t.to_string()
}

/// An OData string literal. Quotes are doubled; characters that have no business in a user
/// name or status and could alter the expression (quotes, parentheses, control characters)
/// are refused instead.
pub fn odata_string(value: &str) -> Result<String, SkillError> {
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '@' | '.' | '_' | '-' | '+' | ' ');
    if value.is_empty() || !value.chars().all(allowed) {
        return Err(invalid(format!(
            "{value:?} cannot be used in a filter: only letters, digits, spaces and @ . _ - + are accepted"
        )));
    }
    Ok(format!("'{}'", value.replace('\'', "''")))
}

/// `InProgress` → `inProgress`.
pub fn camel_case(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => format!("{}{}", first.to_ascii_lowercase(), chars.as_str()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-27T08:00:00Z".parse().unwrap()
    }

    fn filter(input: Value, api: Api) -> String {
        ListRequest::from_input(&input, api, now()).unwrap().filter
    }

    fn error(input: Value, api: Api) -> String {
        match ListRequest::from_input(&input, api, now()).unwrap_err() {
            SkillError::InvalidInput(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_default_window_is_one_day_of_last_update_time() {
        assert_eq!(
            filter(json!({}), Api::Defender),
            "lastUpdateTime ge 2026-11-26T08:00:00Z"
        );
        assert_eq!(
            filter(json!({}), Api::Graph),
            "lastUpdateDateTime ge 2026-11-26T08:00:00Z"
        );
    }

    #[test]
    fn duration_units_and_time_fields_shape_the_filter() {
        assert_eq!(
            filter(
                json!({"duration": 90, "duration_type": "minutes", "time_field": "createdTime"}),
                Api::Defender
            ),
            "createdTime ge 2026-11-27T06:30:00Z"
        );
        assert_eq!(
            filter(
                json!({"duration": 6, "duration_type": "hours", "time_field": "createdTime"}),
                Api::Graph
            ),
            "createdDateTime ge 2026-11-27T02:00:00Z"
        );
    }

    #[test]
    fn explicit_times_are_normalized_to_utc_and_bound_both_ends() {
        assert_eq!(
            filter(
                json!({"start_time": "2026-11-26T10:00:00+02:00", "end_time": "2026-11-26T12:30:00Z", "status": "InProgress", "assigned_to": "kai.c@contoso.com"}),
                Api::Graph
            ),
            "lastUpdateDateTime ge 2026-11-26T08:00:00Z and lastUpdateDateTime le 2026-11-26T12:30:00Z and status eq 'inProgress' and assignedTo eq 'kai.c@contoso.com'"
        );
        assert_eq!(
            filter(
                json!({"duration": 2, "duration_type": "hours", "end_time": "2026-11-26T12:00:00Z"}),
                Api::Defender
            ),
            "lastUpdateTime ge 2026-11-26T10:00:00Z and lastUpdateTime le 2026-11-26T12:00:00Z"
        );
    }

    #[test]
    fn bad_windows_are_invalid_input() {
        assert_eq!(
            error(json!({"duration": 0}), Api::Defender),
            "duration must be at least 1, not 0"
        );
        assert_eq!(
            error(json!({"duration_type": "weeks"}), Api::Defender),
            "duration_type must be minutes, hours or days, not \"weeks\""
        );
        assert!(
            error(
                json!({"duration": 9_000_000_000_000_000i64, "duration_type": "days"}),
                Api::Defender
            )
            .contains("too large")
        );
        assert!(
            error(
                json!({"duration": 1_000_000, "duration_type": "days"}),
                Api::Defender
            )
            .contains("reaches back before 1970")
        );
        assert_eq!(
            error(
                json!({"start_time": "2026-11-27T00:00:00Z", "end_time": "2026-11-26T00:00:00Z"}),
                Api::Defender
            ),
            "start_time 2026-11-27T00:00:00Z is after end_time 2026-11-26T00:00:00Z"
        );
        assert!(
            error(json!({"start_time": "yesterday"}), Api::Defender)
                .starts_with("start_time must be an RFC 3339 timestamp")
        );
    }

    #[test]
    fn strings_that_could_change_the_filter_are_refused() {
        for evil in ["x' or 1 eq 1 or 'a", "a'b", "x) or (true", "a\nb", ""] {
            assert!(
                error(json!({"assigned_to": evil}), Api::Defender)
                    .contains("cannot be used in a filter"),
                "{evil:?}"
            );
        }
        assert_eq!(
            error(json!({"status": "Open"}), Api::Defender),
            "status must be one of Active, InProgress, Resolved, Redirected, not \"Open\""
        );
    }

    #[test]
    fn page_size_is_bounded_per_api() {
        assert_eq!(
            ListRequest::from_input(&json!({}), Api::Defender, now())
                .unwrap()
                .page_size,
            100
        );
        assert_eq!(
            ListRequest::from_input(&json!({}), Api::Graph, now())
                .unwrap()
                .page_size,
            50
        );
        assert_eq!(
            error(json!({"page_size": 80}), Api::Graph),
            "page_size must be between 1 and 50 on the graph API, not 80"
        );
    }
}
