//! Whose state a key belongs to: a [`Scope`] is (tenant, connection, skill id).
//!
//! Threat: one skill reading or overwriting another's state (a cursor of another tenant, or of
//! another skill of the same tenant). The host builds the scope from the invocation it runs;
//! a skill only ever names keys inside it, and no key can escape it: in SQLite the three parts
//! are separate columns of every row, and in Redis they are escaped into the key names so that
//! no two scopes map onto the same key (see [`Scope::encoded`]).

use std::fmt;

use crate::error::StoreError;

/// The longest tenant, connection or skill id of a scope, in bytes.
pub const MAX_SCOPE_PART_BYTES: usize = 256;

/// The state of one skill for one connection of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    tenant: String,
    connection: String,
    skill: String,
}

impl Scope {
    /// The scope of `skill` run through `connection` of `tenant`. Each part must be 1 to
    /// [`MAX_SCOPE_PART_BYTES`] bytes without control characters.
    pub fn new(tenant: &str, connection: &str, skill: &str) -> Result<Scope, StoreError> {
        check_name("tenant", tenant, MAX_SCOPE_PART_BYTES)?;
        check_name("connection", connection, MAX_SCOPE_PART_BYTES)?;
        check_name("skill id", skill, MAX_SCOPE_PART_BYTES)?;
        Ok(Scope {
            tenant: tenant.to_string(),
            connection: connection.to_string(),
            skill: skill.to_string(),
        })
    }

    /// The tenant (the host's isolation key).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The connection's name.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// The skill's id.
    pub fn skill(&self) -> &str {
        &self.skill
    }

    /// One string naming the scope, for key names in Redis: each part with `%` and `:` escaped
    /// (`%25`, `%3A`), joined by `:`. Distinct scopes give distinct strings, and
    /// [`Scope::decode`] reads it back.
    pub(crate) fn encoded(&self) -> String {
        [&self.tenant, &self.connection, &self.skill]
            .map(|part| escape(part))
            .join(":")
    }

    /// The scope [`Scope::encoded`] made `text` from.
    pub(crate) fn decode(text: &str) -> Result<Scope, StoreError> {
        let parts: Vec<&str> = text.split(':').collect();
        let corrupt = || StoreError::Corrupt(format!("`{text}` does not name a scope"));
        let [tenant, connection, skill] = parts.as_slice() else {
            return Err(corrupt());
        };
        let (Some(tenant), Some(connection), Some(skill)) =
            (unescape(tenant), unescape(connection), unescape(skill))
        else {
            return Err(corrupt());
        };
        Scope::new(&tenant, &connection, &skill).map_err(|_| corrupt())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.tenant, self.connection, self.skill)
    }
}

/// Refuses an empty, oversized or control-character name, saying which and what is allowed.
pub(crate) fn check_name(what: &str, name: &str, max: usize) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::Invalid(format!("the {what} is empty")));
    }
    if name.len() > max {
        return Err(StoreError::Limit(format!(
            "the {what} is {} bytes; the limit is {max} bytes",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "the {what} contains a control character; use printable characters only"
        )));
    }
    Ok(())
}

fn escape(part: &str) -> String {
    part.replace('%', "%25").replace(':', "%3A")
}

fn unescape(part: &str) -> Option<String> {
    let mut out = String::with_capacity(part.len());
    let mut rest = part;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("%25") => out.push('%'),
            Some("%3A") => out.push(':'),
            _ => return None,
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_whose_parts_hold_separators_encode_apart() {
        let a = Scope::new("a:b", "c", "d").unwrap();
        let b = Scope::new("a", "b:c", "d").unwrap();
        assert_ne!(a.encoded(), b.encoded());
        assert_eq!(a.encoded(), "a%3Ab:c:d");
    }

    #[test]
    fn an_encoded_scope_decodes_to_itself() {
        for (t, c, s) in [("acme", "acme-defender", "list"), ("%3A", "::", "%%:")] {
            let scope = Scope::new(t, c, s).unwrap();
            assert_eq!(Scope::decode(&scope.encoded()).unwrap(), scope);
        }
    }

    #[test]
    fn text_that_no_scope_encodes_to_is_corrupt() {
        for text in ["a:b", "a:b:c:d", "a%2:b:c", "a%zz:b:c", "::"] {
            assert!(
                matches!(Scope::decode(text), Err(StoreError::Corrupt(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn empty_oversized_and_control_parts_are_refused() {
        assert_eq!(
            Scope::new("", "c", "s"),
            Err(StoreError::Invalid("the tenant is empty".into()))
        );
        assert_eq!(
            Scope::new("t", &"c".repeat(257), "s"),
            Err(StoreError::Limit(
                "the connection is 257 bytes; the limit is 256 bytes".into()
            ))
        );
        assert!(matches!(
            Scope::new("t", "c", "s\n"),
            Err(StoreError::Invalid(_))
        ));
    }
}
