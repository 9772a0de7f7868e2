//! Named connections from the config file: which tenant, which app, where its secret lives.
//!
//! Threat: a client secret must never be written where it leaks (the config file, a command line,
//! a log). The file may only say where the secret is (`{ env = "VAR" }` or `{ file = "PATH" }`);
//! an inline secret is refused. The secret is read when a token is needed and held in a type whose
//! `Debug` prints nothing. The API keys of `skillhost serve`'s callers (`[callers.NAME]`) follow
//! the same rule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use skillhost_contract::error::Failure;

use crate::providers::microsoft::{Api, Cloud, TokenRequestContext};

/// The parsed config file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Connections by name.
    pub connections: BTreeMap<String, Connection>,
    /// The callers `skillhost serve` accepts, by name.
    pub callers: BTreeMap<String, Caller>,
    /// The durable store's URL (`state = "sqlite:PATH"` or `"redis://HOST:PORT/DB"`), if set.
    pub state: Option<String>,
    /// Where the file was read from.
    pub path: Option<PathBuf>,
}

/// What a tenant's name may not start with: `serve`'s metrics count invocations that bound no
/// connection under `caller:NAME`.
pub const CALLER_PREFIX: &str = "caller:";

/// One connection: a tenant's app registration and how to reach its APIs.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The connection's name.
    pub name: String,
    /// The isolation key: invocations of one tenant never share state with another's.
    pub tenant: String,
    /// The Entra directory (tenant) id.
    pub tenant_id: String,
    /// The application (client) id.
    pub client_id: String,
    /// Where the client secret is read from.
    pub client_secret: SecretSource,
    /// The Microsoft cloud.
    pub cloud: Cloud,
    /// Which incidents API.
    pub api: Api,
    /// A forward proxy all of this connection's traffic goes through.
    pub remote_agent: Option<String>,
    /// Base URL overrides (simulator, private relays).
    pub endpoints: Endpoints,
    /// Client-side pacing of API calls.
    pub pacing: Pacing,
    /// Retries of throttled and failed calls.
    pub retry: Retry,
    /// The largest response body accepted, in bytes (default 32 MiB).
    pub max_response_bytes: u64,
}

/// A client of `skillhost serve`: its API key and the tenants whose connections it may bind.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's name (audit records and metrics name it; its key never appears).
    pub name: String,
    /// Where its API key is read from.
    pub key: SecretSource,
    /// The tenants whose connections it may bind.
    pub tenants: Vec<String>,
}

/// Retries of throttled (429) and failed (5xx, transport) calls, all within the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Retries after the first attempt.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First backoff in milliseconds; doubles each retry, with jitter; capped at 30 s.
    #[serde(default = "default_backoff_ms")]
    pub base_backoff_ms: u64,
    /// How long an answer's body may go without a byte before it counts as stalled (a
    /// transient fault, like a body cut short), in milliseconds.
    #[serde(default = "default_read_idle_timeout_ms")]
    pub read_idle_timeout_ms: u64,
}

fn default_read_idle_timeout_ms() -> u64 {
    30_000
}

fn default_max_retries() -> u32 {
    4
}
fn default_backoff_ms() -> u64 {
    500
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_retries: default_max_retries(),
            base_backoff_ms: default_backoff_ms(),
            read_idle_timeout_ms: default_read_idle_timeout_ms(),
        }
    }
}

/// Where a secret is read from. Never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the host process.
    Env(String),
    /// A file (trailing newline ignored).
    File(PathBuf),
}

/// A secret value. Its `Debug` and `Display` print a placeholder.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends it (the token request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl SecretSource {
    /// Where the secret is read from, in words.
    pub fn place(&self) -> String {
        match self {
            SecretSource::Env(var) => format!("the environment variable {var}"),
            SecretSource::File(path) => format!("the file {}", path.display()),
        }
    }

    /// Reads connection `connection`'s client secret; the error says where it looked, never
    /// what it found.
    pub fn read(&self, connection: &str) -> Result<Secret, Failure> {
        self.read_as(&format!("connection `{connection}`"), "client secret")
    }

    /// Reads a secret of `owner` (such as "caller `soc`") that is its `what` (such as "API
    /// key"); the error names both and where it looked, never what it found.
    pub fn read_as(&self, owner: &str, what: &str) -> Result<Secret, Failure> {
        match self {
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
                _ => Err(Failure::skill(format!(
                    "{owner}: the {what}'s environment variable {var} is not set or empty"
                ))
                .with_hint(format!("export {var}=<{what}> before running skillhost"))),
            },
            SecretSource::File(path) => match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
                Ok(_) => Err(Failure::skill(format!(
                    "{owner}: the {what} file {} is empty",
                    path.display()
                ))),
                Err(e) => Err(Failure::skill(format!(
                    "{owner}: cannot read the {what} file {}: {e}",
                    path.display()
                ))),
            },
        }
    }
}

/// Base URL overrides; each defaults to the cloud's published host over https.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// Entra ID token endpoint base (`https://login.microsoftonline.com`).
    pub login: Option<String>,
    /// Defender XDR API base.
    pub defender: Option<String>,
    /// Microsoft Graph base.
    pub graph: Option<String>,
}

/// Client-side call pacing per (tenant, app), defaulting to the published incidents-list limits.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pacing {
    /// Calls allowed per minute.
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
    /// Calls allowed per hour.
    #[serde(default = "default_per_hour")]
    pub per_hour: u32,
    /// Divides the pacing windows (a minute becomes 60 s / scale): for simulators that compress
    /// time. 1 for real services.
    #[serde(default = "default_scale")]
    pub time_scale: f64,
}

fn default_per_minute() -> u32 {
    50
}
fn default_per_hour() -> u32 {
    1500
}
fn default_scale() -> f64 {
    1.0
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            per_minute: default_per_minute(),
            per_hour: default_per_hour(),
            time_scale: default_scale(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    connections: BTreeMap<String, RawConnection>,
    #[serde(default)]
    callers: BTreeMap<String, RawCaller>,
    state: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaller {
    key: RawSecret,
    #[serde(default)]
    tenants: Vec<String>,
}

impl RawCaller {
    /// Validates one `[callers.NAME]` table.
    fn into_caller(self, name: String) -> Result<Caller, String> {
        let key = self
            .key
            .into_source("key")
            .map_err(|m| format!("caller `{name}`, key `key`: {m}"))?;
        if let Some(empty) = self.tenants.iter().find(|t| t.trim().is_empty()) {
            return Err(format!(
                "caller `{name}`, key `tenants`: a tenant must not be empty (found {empty:?})"
            ));
        }
        Ok(Caller {
            name,
            key,
            tenants: self.tenants,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    tenant: String,
    tenant_id: String,
    client_id: String,
    client_secret: RawSecret,
    #[serde(default)]
    cloud: Cloud,
    #[serde(default)]
    api: Api,
    remote_agent: Option<String>,
    #[serde(default)]
    endpoints: Endpoints,
    #[serde(default)]
    pacing: Pacing,
    #[serde(default)]
    retry: Retry,
    #[serde(default = "default_max_response_bytes")]
    max_response_bytes: u64,
}

fn default_max_response_bytes() -> u64 {
    DEFAULT_MAX_RESPONSE_BYTES
}

/// The default cap on a response body: 32 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 << 20;

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSecret {
    // Recognised only to refuse it with a reason; the value is never used.
    #[allow(dead_code)]
    Inline(String),
    Source(RawSecretSource),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecretSource {
    env: Option<String>,
    file: Option<PathBuf>,
}

impl RawConnection {
    /// Validates one `[connections.NAME]` table.
    fn into_connection(self, name: String) -> Result<Connection, String> {
        let at = |key: &str| format!("connection `{name}`, key `{key}`");
        let client_secret = self
            .client_secret
            .into_source("client_secret")
            .map_err(|m| format!("{}: {m}", at("client_secret")))?;
        for (key, value) in [
            ("tenant", &self.tenant),
            ("tenant_id", &self.tenant_id),
            ("client_id", &self.client_id),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{}: must not be empty", at(key)));
            }
        }
        // The durable store scopes state by tenant and connection: a name it cannot take is
        // refused here, not when a run binds the connection.
        skillhost_state::Scope::new(&self.tenant, &name, "skill")
            .map_err(|e| format!("connection `{name}`: {e}"))?;
        if self.tenant.starts_with(CALLER_PREFIX) {
            // `serve` counts invocations without a connection under `caller:NAME`.
            return Err(format!(
                "{}: must not start with `{CALLER_PREFIX}` (reserved for callers in metrics)",
                at("tenant")
            ));
        }
        for (key, url) in [
            ("remote_agent", &self.remote_agent),
            ("endpoints.login", &self.endpoints.login),
            ("endpoints.defender", &self.endpoints.defender),
            ("endpoints.graph", &self.endpoints.graph),
        ] {
            if let Some(url) = url {
                check_base_url(url).map_err(|m| format!("{}: {m}", at(key)))?;
            }
        }
        let pacing = self.pacing;
        if self.retry.read_idle_timeout_ms == 0 {
            return Err(format!(
                "{}: read_idle_timeout_ms must be positive",
                at("retry")
            ));
        }
        if pacing.per_minute == 0
            || pacing.per_hour == 0
            || pacing.time_scale.is_nan()
            || pacing.time_scale <= 0.0
        {
            return Err(format!(
                "{}: per_minute, per_hour and time_scale must be positive",
                at("pacing")
            ));
        }
        // Outside this range a window (60 s / time_scale) is not a duration the clock can hold.
        if !(0.001..=1_000_000.0).contains(&pacing.time_scale) {
            return Err(format!(
                "{}: time_scale must be between 0.001 and 1000000",
                at("pacing")
            ));
        }
        Ok(Connection {
            name,
            tenant: self.tenant,
            tenant_id: self.tenant_id,
            client_id: self.client_id,
            client_secret,
            cloud: self.cloud,
            api: self.api,
            remote_agent: self.remote_agent,
            endpoints: self.endpoints,
            pacing,
            retry: self.retry,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

impl RawSecret {
    /// Where the secret is read from; an inline secret is refused with the reason.
    fn into_source(self, key: &str) -> Result<SecretSource, String> {
        match self {
            RawSecret::Inline(_) => Err(format!(
                "a secret may not be written in the config file, where it would be read by \
                 anyone who can read the file and end up in backups; write {key} = {{ env = \
                 \"VAR\" }} or {{ file = \"/run/secrets/name\" }}"
            )),
            RawSecret::Source(RawSecretSource {
                env: Some(var),
                file: None,
            }) => Ok(SecretSource::Env(var)),
            RawSecret::Source(RawSecretSource {
                env: None,
                file: Some(path),
            }) => Ok(SecretSource::File(path)),
            RawSecret::Source(_) => {
                Err("give exactly one of env = \"VAR\" or file = \"PATH\"".to_string())
            }
        }
    }
}

impl Config {
    /// Finds the config file: `--config`, then `SKILLHOST_CONFIG`, then `./skillhost.toml`.
    /// No file at the default place is an empty config; a named file that is missing is an error.
    pub fn locate_and_load(explicit: Option<&Path>) -> Result<Config, Failure> {
        if let Some(path) = explicit {
            return Config::load(path);
        }
        if let Some(path) = std::env::var_os("SKILLHOST_CONFIG") {
            return Config::load(Path::new(&path));
        }
        let default = Path::new("skillhost.toml");
        if default.exists() {
            return Config::load(default);
        }
        Ok(Config::default())
    }

    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, Failure> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::usage(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let mut config = Config::parse(&text)
            .map_err(|m| Failure::usage(format!("config file {}: {m}", path.display())))?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses config text. Errors name the connection and the key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut connections = BTreeMap::new();
        for (name, raw) in raw.connections {
            let connection = raw.into_connection(name.clone())?;
            connections.insert(name, connection);
        }
        let mut callers = BTreeMap::new();
        for (name, raw) in raw.callers {
            let caller = raw.into_caller(name.clone())?;
            callers.insert(name, caller);
        }
        Ok(Config {
            connections,
            callers,
            state: raw.state,
            path: None,
        })
    }

    /// The connection called `name`; the error lists the known ones.
    pub fn connection(&self, name: &str) -> Result<&Connection, Failure> {
        self.connections.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.connections.keys().map(String::as_str).collect();
            let source = match &self.path {
                Some(p) => format!("in {}", p.display()),
                None => {
                    "(no config file found: pass --config PATH or set SKILLHOST_CONFIG)".to_string()
                }
            };
            Failure::usage(format!(
                "no connection named `{name}` {source}; known connections: {}",
                if known.is_empty() {
                    "(none)".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }
}

impl Connection {
    /// A digest of the whole definition (endpoints, ids, where the secret is kept, limits): the
    /// HTTP clients and tokens cached for a connection are kept under its name and this, so that
    /// an invocation still holding a definition a reload replaced never hands its client or its
    /// tokens to invocations of the new one.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        format!("{self:?}").hash(&mut hasher);
        hasher.finish()
    }

    /// The base URL of the Entra ID login endpoint.
    pub fn login_base(&self) -> String {
        self.endpoints
            .login
            .clone()
            .unwrap_or_else(|| format!("https://{}", self.cloud.login_host()))
    }

    /// The base URL of `service` (`defender` or `graph`), if the connection has it.
    pub fn service_base(&self, service: &str) -> Option<String> {
        let (override_url, api) = match service {
            "defender" => (&self.endpoints.defender, Api::Defender),
            "graph" => (&self.endpoints.graph, Api::Graph),
            _ => return None,
        };
        Some(
            override_url
                .clone()
                .unwrap_or_else(|| format!("https://{}", self.cloud.api_host(api))),
        )
    }

    /// The services a skill may call through this connection: its API's.
    pub fn services(&self) -> Vec<String> {
        vec![self.api.service().to_string()]
    }

    /// The facts an explanation of a failed token request names.
    pub fn token_request_context(&self) -> TokenRequestContext<'_> {
        TokenRequestContext {
            connection: &self.name,
            tenant_id: &self.tenant_id,
            client_id: &self.client_id,
            cloud: self.cloud,
            api: self.api,
            secret_place: self.client_secret.place(),
        }
    }
}

fn check_base_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?} must be an http:// or https:// URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{url:?} must not carry credentials"));
    }
    if parsed.host_str().is_none() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[connections.acme]
tenant = "acme"
tenant_id = "00000000-0000-0000-0000-000000000000"
client_id = "11111111-1111-1111-1111-111111111111"
client_secret = { env = "ACME_SECRET" }
api = "graph"
cloud = "gcc-high"
[connections.acme.endpoints]
login = "http://127.0.0.1:8400"
"#;

    #[test]
    fn a_definition_changed_anywhere_has_another_fingerprint_and_the_same_one_keeps_it() {
        let fingerprint =
            |text: &str| Config::parse(text).unwrap().connections["acme"].fingerprint();
        let same = fingerprint(GOOD);
        assert_eq!(fingerprint(GOOD), same);
        for changed in [
            GOOD.replace(
                "00000000-0000-0000-0000-000000000000",
                "22222222-2222-2222-2222-222222222222",
            ),
            GOOD.replace("ACME_SECRET", "OTHER_SECRET"),
            GOOD.replace("http://127.0.0.1:8400", "http://127.0.0.1:8401"),
        ] {
            assert_ne!(fingerprint(&changed), same, "{changed}");
        }
    }

    #[test]
    fn a_tenant_the_state_store_cannot_scope_by_is_refused_at_load() {
        let long = "t".repeat(300);
        let text = GOOD.replace("tenant = \"acme\"", &format!("tenant = \"{long}\""));
        assert_eq!(
            Config::parse(&text).unwrap_err(),
            "connection `acme`: the tenant is 300 bytes; the limit is 256 bytes"
        );
    }

    #[test]
    fn a_tenant_named_like_a_callers_metrics_label_is_refused() {
        let text = GOOD.replace("tenant = \"acme\"", "tenant = \"caller:soc\"");
        assert_eq!(
            Config::parse(&text).unwrap_err(),
            "connection `acme`, key `tenant`: must not start with `caller:` (reserved for callers \
             in metrics)"
        );
    }

    #[test]
    fn a_complete_connection_parses_with_defaults() {
        let config = Config::parse(GOOD).unwrap();
        let c = &config.connections["acme"];
        assert_eq!(c.api, Api::Graph);
        assert_eq!(c.cloud, Cloud::GccHigh);
        assert_eq!(c.client_secret, SecretSource::Env("ACME_SECRET".into()));
        assert_eq!(c.login_base(), "http://127.0.0.1:8400");
        assert_eq!(
            c.service_base("graph").unwrap(),
            "https://graph.microsoft.us"
        );
        assert_eq!(c.pacing, Pacing::default());
    }

    #[test]
    fn an_inline_secret_is_refused_with_the_reason() {
        let text = GOOD.replace(r#"{ env = "ACME_SECRET" }"#, r#""hunter2""#);
        let err = Config::parse(&text).unwrap_err();
        assert!(err.starts_with("connection `acme`, key `client_secret`: a secret may not be written in the config file"), "{err}");
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn callers_are_read_with_their_key_source_and_tenants() {
        let text = format!(
            "{GOOD}\n[callers.soc]\nkey = {{ file = \"/run/keys/soc\" }}\ntenants = [\"acme\", \"globex\"]\n"
        );
        let config = Config::parse(&text).unwrap();
        let soc = &config.callers["soc"];
        assert_eq!(soc.key, SecretSource::File(PathBuf::from("/run/keys/soc")));
        assert_eq!(soc.tenants, vec!["acme".to_string(), "globex".to_string()]);
    }

    #[test]
    fn an_inline_caller_key_is_refused_with_the_reason() {
        let text = format!("{GOOD}\n[callers.soc]\nkey = \"sk-live-1\"\ntenants = [\"acme\"]\n");
        let err = Config::parse(&text).unwrap_err();
        assert!(
            err.starts_with(
                "caller `soc`, key `key`: a secret may not be written in the config file"
            ),
            "{err}"
        );
        assert!(err.contains("write key = { env = \"VAR\" }"), "{err}");
        assert!(!err.contains("sk-live-1"));
    }

    #[test]
    fn an_unknown_cloud_is_an_error_naming_the_values() {
        let text = GOOD.replace("gcc-high", "mars");
        let err = Config::parse(&text).unwrap_err();
        assert!(
            err.contains(
                "unknown variant `mars`, expected one of `commercial`, `gcc`, `gcc-high`, `dod`"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_secret_with_both_sources_is_refused() {
        let text = GOOD.replace(
            r#"{ env = "ACME_SECRET" }"#,
            r#"{ env = "A", file = "/b" }"#,
        );
        assert_eq!(
            Config::parse(&text).unwrap_err(),
            "connection `acme`, key `client_secret`: give exactly one of env = \"VAR\" or file = \"PATH\""
        );
    }

    #[test]
    fn a_secret_debug_print_shows_nothing() {
        assert_eq!(
            format!("{:?}", Secret("s3cret".into())),
            "Secret(<redacted>)"
        );
    }
}
