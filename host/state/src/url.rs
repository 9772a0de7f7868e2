//! Where the store lives, as the operator writes it: `sqlite:PATH` or `redis://HOST:PORT/DB`.
//!
//! Threat: a store URL is configuration, and configuration is printed in errors and logs. The
//! accepted forms carry no credentials (a URL with a user or password is refused), so printing a
//! [`StoreUrl`] can never leak a secret.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::StoreError;

/// A parsed store location. Its [`fmt::Display`] form parses back to the same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An SQLite database file, shared by the processes of one machine.
    Sqlite {
        /// The database file (created, with its folder, on first open).
        path: PathBuf,
    },
    /// A Redis or Valkey server, shared by several machines.
    Redis {
        /// Host name or IP address (an IPv6 address without brackets).
        host: String,
        /// TCP port (6379 when the URL gives none).
        port: u16,
        /// Logical database number (0 when the URL gives none).
        db: u32,
    },
}

/// What every parse error ends with: the forms that are accepted.
const FORMS: &str = "write `sqlite:PATH` (one machine, e.g. `sqlite:/var/lib/skillhost/state.db`) \
                     or `redis://HOST:PORT/DB` (several machines, e.g. `redis://10.0.0.7:6379/0`)";

impl StoreUrl {
    /// The default store: `sqlite:$XDG_STATE_HOME/skillhost/state.db`, or
    /// `sqlite:$HOME/.local/state/skillhost/state.db` when `XDG_STATE_HOME` is unset, empty or
    /// relative (as the XDG base directory specification asks).
    pub fn default_sqlite() -> Result<StoreUrl, StoreError> {
        Self::default_sqlite_from(
            std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )
    }

    /// [`StoreUrl::default_sqlite`] from given values of `XDG_STATE_HOME` and `HOME`.
    pub fn default_sqlite_from(
        xdg_state_home: Option<PathBuf>,
        home: Option<PathBuf>,
    ) -> Result<StoreUrl, StoreError> {
        let base = match (xdg_state_home, home) {
            (Some(xdg), _) if xdg.is_absolute() => xdg,
            (_, Some(home)) if home.is_absolute() => home.join(".local").join("state"),
            _ => {
                return Err(StoreError::Invalid(format!(
                    "no default place for the state store: neither XDG_STATE_HOME nor HOME is an \
                     absolute path; {FORMS}"
                )));
            }
        };
        Ok(StoreUrl::Sqlite {
            path: base.join("skillhost").join("state.db"),
        })
    }

    /// The SQLite file, when this is an SQLite store.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            StoreUrl::Sqlite { path } => Some(path),
            StoreUrl::Redis { .. } => None,
        }
    }
}

impl FromStr for StoreUrl {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |why: String| StoreError::Invalid(format!("state store `{text}`: {why}"));
        if let Some(rest) = text.strip_prefix("sqlite:") {
            // `sqlite:///abs/path` is the URL spelling of `sqlite:/abs/path`; a host part is not.
            let path = match rest.strip_prefix("//") {
                Some(abs) if abs.starts_with('/') => abs,
                Some(_) => {
                    return Err(invalid(format!(
                        "an SQLite store is a local file, not a host; {FORMS}"
                    )));
                }
                None => rest,
            };
            if path.is_empty() {
                return Err(invalid(format!("the file's path is missing; {FORMS}")));
            }
            return Ok(StoreUrl::Sqlite {
                path: PathBuf::from(path),
            });
        }
        if text.starts_with("rediss://") {
            return Err(invalid(
                "TLS to the store is not supported yet; reach Redis over a private network or \
                 through a TLS tunnel (stunnel, a service mesh) and write `redis://HOST:PORT/DB`"
                    .to_string(),
            ));
        }
        let Some(rest) = text.strip_prefix("redis://") else {
            return Err(invalid(format!("unknown kind of store; {FORMS}")));
        };
        if rest.contains('@') {
            // Not echoed: what precedes the `@` may be a password.
            return Err(StoreError::Invalid(
                "state store: a user or password in the store's URL is not supported (it would \
                 be a secret in the config and in messages); write `redis://HOST:PORT/DB` and put \
                 the password in a file named by SKILLHOST_STATE_PASSWORD_FILE"
                    .to_string(),
            ));
        }
        if rest.contains('?') || rest.contains('#') {
            return Err(invalid(format!(
                "options after `?` or `#` are not supported; {FORMS}"
            )));
        }
        let (authority, db) = match rest.split_once('/') {
            Some((authority, "")) => (authority, 0),
            Some((authority, db)) => match db.parse::<u32>() {
                Ok(db) => (authority, db),
                Err(_) => {
                    return Err(invalid(format!(
                        "the database `{db}` is not a number (Redis databases are numbered, \
                         0 by default); {FORMS}"
                    )));
                }
            },
            None => (rest, 0),
        };
        let (host, port) =
            split_host_port(authority).map_err(|why| invalid(format!("{why}; {FORMS}")))?;
        Ok(StoreUrl::Redis { host, port, db })
    }
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn split_host_port(authority: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err("an IPv6 address opened with `[` is not closed with `]`".to_string());
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected `{after}` after the IPv6 address")),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the host is missing".to_string());
    }
    if host.contains(':') && !authority.starts_with('[') {
        return Err("write an IPv6 address in brackets, as `[::1]:6379`".to_string());
    }
    let port = match port {
        None => 6379,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("the port `{port}` is not a number from 1 to 65535")),
        },
    };
    Ok((host.to_string(), port))
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite { path } => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Redis { host, port, db } if host.contains(':') => {
                write!(f, "redis://[{host}]:{port}/{db}")
            }
            StoreUrl::Redis { host, port, db } => write!(f, "redis://{host}:{port}/{db}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StoreUrl, StoreError> {
        text.parse()
    }

    fn message(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn sqlite_takes_the_rest_as_a_path() {
        assert_eq!(
            parse("sqlite:/var/lib/skillhost/state.db").unwrap(),
            StoreUrl::Sqlite {
                path: "/var/lib/skillhost/state.db".into()
            }
        );
        assert_eq!(
            parse("sqlite:state.db").unwrap(),
            StoreUrl::Sqlite {
                path: "state.db".into()
            }
        );
    }

    #[test]
    fn sqlite_url_spelling_with_three_slashes_is_an_absolute_path() {
        assert_eq!(
            parse("sqlite:///tmp/s.db").unwrap(),
            StoreUrl::Sqlite {
                path: "/tmp/s.db".into()
            }
        );
    }

    #[test]
    fn sqlite_with_a_host_or_without_a_path_is_refused_with_the_forms() {
        assert!(message("sqlite://host/x.db").contains("not a host"));
        assert!(message("sqlite:").contains("path is missing"));
        assert!(message("sqlite:").contains("write `sqlite:PATH`"));
    }

    #[test]
    fn redis_reads_host_port_and_database() {
        assert_eq!(
            parse("redis://10.0.0.7:6380/3").unwrap(),
            StoreUrl::Redis {
                host: "10.0.0.7".into(),
                port: 6380,
                db: 3
            }
        );
    }

    #[test]
    fn redis_port_and_database_default_to_6379_and_0() {
        let expected = StoreUrl::Redis {
            host: "cache.internal".into(),
            port: 6379,
            db: 0,
        };
        assert_eq!(parse("redis://cache.internal").unwrap(), expected);
        assert_eq!(parse("redis://cache.internal/").unwrap(), expected);
    }

    #[test]
    fn redis_ipv6_is_bracketed() {
        assert_eq!(
            parse("redis://[::1]:7000/1").unwrap(),
            StoreUrl::Redis {
                host: "::1".into(),
                port: 7000,
                db: 1
            }
        );
        assert!(message("redis://::1:7000/1").contains("in brackets"));
    }

    #[test]
    fn display_parses_back_to_the_same_url() {
        for text in ["sqlite:/a/b.db", "redis://h:1/2", "redis://[::1]:6379/0"] {
            let url = parse(text).unwrap();
            assert_eq!(url.to_string(), text);
            assert_eq!(parse(&url.to_string()).unwrap(), url);
        }
    }

    #[test]
    fn credentials_in_a_redis_url_are_refused_without_echoing_them() {
        let message = message("redis://:hunter2@h:6379/0");
        assert!(message.contains("user or password"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn bad_ports_databases_and_kinds_say_what_to_write() {
        assert!(message("redis://h:0/0").contains("port `0`"));
        assert!(message("redis://h:99999/0").contains("port `99999`"));
        assert!(message("redis://h:6379/x").contains("database `x` is not a number"));
        assert!(message("redis://h:6379/0?timeout=1").contains("options"));
        assert!(message("postgres://h/db").contains("unknown kind of store"));
        assert!(message("postgres://h/db").contains("redis://HOST:PORT/DB"));
        assert!(message("rediss://h:6379/0").contains("TLS"));
    }

    #[test]
    fn default_is_under_xdg_state_home_then_home() {
        assert_eq!(
            StoreUrl::default_sqlite_from(Some("/x".into()), Some("/home/u".into())).unwrap(),
            StoreUrl::Sqlite {
                path: "/x/skillhost/state.db".into()
            }
        );
        assert_eq!(
            StoreUrl::default_sqlite_from(None, Some("/home/u".into())).unwrap(),
            StoreUrl::Sqlite {
                path: "/home/u/.local/state/skillhost/state.db".into()
            }
        );
        // A relative XDG_STATE_HOME is ignored, as the specification asks.
        assert_eq!(
            StoreUrl::default_sqlite_from(Some("rel".into()), Some("/home/u".into())).unwrap(),
            StoreUrl::Sqlite {
                path: "/home/u/.local/state/skillhost/state.db".into()
            }
        );
        assert!(matches!(
            StoreUrl::default_sqlite_from(None, None),
            Err(StoreError::Invalid(_))
        ));
    }
}
