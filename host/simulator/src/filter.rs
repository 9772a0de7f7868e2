//! The `$filter` subset both incident APIs accept, parsed and applied to legacy-shaped incidents.

use jiff::Timestamp;
use serde_json::Value;

/// The `$filter` subset: clauses joined by ` and `: `<time field> ge|gt|le|lt <timestamp>`,
/// `status eq '<value>'`, `assignedTo eq '<value>'`.
#[derive(Default)]
pub(crate) struct Filter {
    clauses: Vec<(String, String, FilterValue)>,
}

enum FilterValue {
    Time(Timestamp),
    Text(String),
}

impl Filter {
    /// Parses `text`; Graph (`graph`) spells the time fields `createdDateTime` and
    /// `lastUpdateDateTime`. The error is the message to answer with.
    pub(crate) fn parse(text: &str, graph: bool) -> Result<Filter, String> {
        let (time_fields, text_fields): (&[&str], &[&str]) = if graph {
            (
                &["createdDateTime", "lastUpdateDateTime"],
                &["status", "assignedTo"],
            )
        } else {
            (
                &["createdTime", "lastUpdateTime"],
                &["status", "assignedTo"],
            )
        };
        let mut clauses = Vec::new();
        for clause in text.split(" and ") {
            let parts: Vec<&str> = clause.trim().splitn(3, ' ').collect();
            let [field, op, value] = parts.as_slice() else {
                return Err(format!("Invalid filter clause '{clause}'"));
            };
            let value = if time_fields.contains(field) && ["ge", "gt", "le", "lt"].contains(op) {
                FilterValue::Time(
                    value
                        .parse()
                        .map_err(|_| format!("'{value}' is not a valid DateTimeOffset"))?,
                )
            } else if text_fields.contains(field) && *op == "eq" {
                let inner = value
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .ok_or_else(|| format!("'{value}' is not a quoted string"))?;
                if inner.replace("''", "").contains('\'') {
                    return Err(format!("Invalid string literal {value}"));
                }
                FilterValue::Text(inner.replace("''", "'"))
            } else {
                return Err(format!(
                    "Invalid filter clause '{clause}': unsupported property or operator"
                ));
            };
            let field = match *field {
                "createdDateTime" => "createdTime",
                "lastUpdateDateTime" => "lastUpdateTime",
                f => f,
            };
            clauses.push((field.to_string(), op.to_string(), value));
        }
        Ok(Filter { clauses })
    }

    /// Whether `incident` (legacy shape) passes every clause.
    pub(crate) fn matches(&self, incident: &Value) -> bool {
        self.clauses.iter().all(|(field, op, value)| match value {
            FilterValue::Time(bound) => {
                let Some(t) = incident[field.as_str()]
                    .as_str()
                    .and_then(|t| t.parse::<Timestamp>().ok())
                else {
                    return false;
                };
                match op.as_str() {
                    "ge" => t >= *bound,
                    "gt" => t > *bound,
                    "le" => t <= *bound,
                    _ => t < *bound,
                }
            }
            FilterValue::Text(want) => {
                let have = incident[field.as_str()].as_str().unwrap_or("");
                have.eq_ignore_ascii_case(want)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_compare_times_and_quoted_strings() {
        let f = Filter::parse(
            "lastUpdateTime ge 2026-11-26T08:00:00Z and status eq 'Active'",
            false,
        )
        .unwrap();
        assert!(f.matches(
            &json!({"lastUpdateTime": "2026-11-26T09:00:00.1234567Z", "status": "Active"})
        ));
        assert!(!f.matches(&json!({"lastUpdateTime": "2026-11-26T07:59:59Z", "status": "Active"})));
        assert!(
            !f.matches(&json!({"lastUpdateTime": "2026-11-26T09:00:00Z", "status": "Resolved"}))
        );
        assert!(Filter::parse("severity eq 'High'", false).is_err());
        assert!(Filter::parse("status eq 'A' or 1 eq 1'", false).is_err());
    }
}
