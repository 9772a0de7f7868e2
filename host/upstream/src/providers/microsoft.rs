//! Everything the host knows about Microsoft: the clouds and their published endpoints, the
//! client-credentials scopes, the application permission each API needs, what Entra ID's
//! `AADSTS` errors mean, how to read a token's roles, and the troubleshooting table (what an
//! operator does about a 400, 401, 403, 404, 429 or 5xx).
//!
//! The Defender skills carry their own copy of the permission names (they sit on the other side
//! of the wasm boundary); a test of the `skillhost` package keeps the two from drifting apart.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Microsoft cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    /// Worldwide commercial cloud.
    #[default]
    Commercial,
    /// US Government Community Cloud.
    Gcc,
    /// US Government Community Cloud High.
    GccHigh,
    /// US Department of Defense.
    Dod,
}

/// Which incidents API a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// The Defender XDR API (`/api/incidents`), retiring 2027-02-01.
    #[default]
    Defender,
    /// The Microsoft Graph security API (`/v1.0/security/incidents`).
    Graph,
}

impl Api {
    /// The service name skills use for this API.
    pub fn service(self) -> &'static str {
        match self {
            Api::Defender => "defender",
            Api::Graph => "graph",
        }
    }

    /// The application permission the API needs.
    pub fn permission(self) -> &'static str {
        match self {
            Api::Defender => "Incident.Read.All",
            Api::Graph => "SecurityIncident.Read.All",
        }
    }

    /// Where the permission is found in Entra ID's "API permissions" page.
    pub fn permission_api_name(self) -> &'static str {
        match self {
            Api::Defender => "Microsoft Threat Protection",
            Api::Graph => "Microsoft Graph",
        }
    }

    /// The API whose service a skill names (`defender` or `graph`).
    pub fn of_service(service: &str) -> Option<Api> {
        [Api::Defender, Api::Graph]
            .into_iter()
            .find(|api| api.service() == service)
    }

    /// The cheapest call that proves the API answers: one incident.
    pub fn probe_path(self) -> &'static str {
        match self {
            Api::Defender => "/api/incidents?$top=1",
            Api::Graph => "/v1.0/security/incidents?$top=1",
        }
    }

    /// The flavour a skill is told about.
    pub fn flavour(self) -> skillhost_contract::types::ApiFlavour {
        match self {
            Api::Defender => skillhost_contract::types::ApiFlavour::Defender,
            Api::Graph => skillhost_contract::types::ApiFlavour::Graph,
        }
    }
}

/// What to do about an answer with `status` from `api` (0: no answer at all): the
/// troubleshooting table, the one source of the guidance the host prints.
pub fn guidance(status: u16, api: Option<Api>) -> String {
    match status {
        0 => "the service could not be reached; check the connection's endpoints, remote_agent \
              and the network path"
            .into(),
        400 => "the request was malformed; check the parameters (filter, page size) and the \
                connection's api and cloud"
            .into(),
        401 => "check the connection's tenant_id, client_id and client secret; if the secret \
                expired, create a new one in Entra ID and update the env var or file it is read \
                from"
            .into(),
        403 => {
            let needed = match api {
                Some(api) => format!(
                    "the application permission {} ({})",
                    api.permission(),
                    api.permission_api_name()
                ),
                None => format!(
                    "the application permission the connection's api needs ({} for defender, {} \
                     for graph)",
                    Api::Defender.permission(),
                    Api::Graph.permission()
                ),
            };
            format!("grant {needed} and have an administrator grant admin consent in Entra ID")
        }
        404 => "not found; check the id, and the connection's cloud and endpoint overrides".into(),
        429 => "the API kept answering 429 after retries; run again later or lower the call rate"
            .into(),
        500..=599 => "the service had a problem; retry later".into(),
        _ => "see the service's message above".into(),
    }
}

/// The `roles` claim of a JWT, read without verification (diagnosis, not trust). `None` when the
/// token is not a JWT whose payload can be read.
pub fn token_roles(token: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    Some(
        claims["roles"]
            .as_array()
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// The facts of a connection an Entra ID explanation names.
pub struct TokenRequestContext<'a> {
    /// The connection's name.
    pub connection: &'a str,
    /// The Entra directory id.
    pub tenant_id: &'a str,
    /// The application id.
    pub client_id: &'a str,
    /// The cloud.
    pub cloud: Cloud,
    /// The API.
    pub api: Api,
    /// Where the secret is read from, in words (`the environment variable X`).
    pub secret_place: String,
}

#[derive(Deserialize, Default)]
struct EntraError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// Turns an Entra ID error answer into what the operator should do. Entra's own text is quoted;
/// the request (which carried the secret) never is.
pub fn explain_entra_error(
    context: &TokenRequestContext<'_>,
    scope: &str,
    status: u16,
    body: &str,
) -> String {
    let parsed: EntraError = serde_json::from_str(body).unwrap_or_default();
    let name = context.connection;
    let has = |code: u64| {
        parsed.error_codes.contains(&code)
            || parsed.error_description.contains(&format!("AADSTS{code}:"))
    };
    if has(7000215) || has(7000222) {
        return format!(
            "connection `{name}`: Entra ID rejected the client secret (AADSTS7000215: wrong or \
             expired). Create a new client secret for application {} in Entra ID > App \
             registrations > Certificates & secrets, then put its value in {}",
            context.client_id, context.secret_place
        );
    }
    if has(700016) {
        return format!(
            "connection `{name}`: application {} was not found in tenant {} (AADSTS700016). Check \
             client_id, and that the app is registered in, or consented to by, that tenant",
            context.client_id, context.tenant_id
        );
    }
    if has(90002) {
        return format!(
            "connection `{name}`: tenant {} was not found (AADSTS90002). Check tenant_id (Entra ID \
             > Overview > Tenant ID) and the connection's cloud ({})",
            context.tenant_id,
            context.cloud.name()
        );
    }
    if parsed.error == "invalid_scope" || has(70011) || has(500011) {
        return format!(
            "connection `{name}`: Entra ID rejected the scope {scope} (invalid_scope). Check the \
             connection's cloud ({}) and api ({})",
            context.cloud.name(),
            context.api.service()
        );
    }
    let detail = parsed.error_description.lines().next().unwrap_or("").trim();
    if parsed.error.is_empty() {
        format!("connection `{name}`: Entra ID answered HTTP {status} to the token request")
    } else {
        format!(
            "connection `{name}`: Entra ID refused the token request: {}: {detail}",
            parsed.error
        )
    }
}

impl Cloud {
    /// The cloud's name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Commercial => "commercial",
            Cloud::Gcc => "gcc",
            Cloud::GccHigh => "gcc-high",
            Cloud::Dod => "dod",
        }
    }

    /// The Entra ID login host.
    pub fn login_host(self) -> &'static str {
        match self {
            Cloud::Commercial | Cloud::Gcc => "login.microsoftonline.com",
            Cloud::GccHigh | Cloud::Dod => "login.microsoftonline.us",
        }
    }

    /// The Defender XDR API host.
    pub fn defender_host(self) -> &'static str {
        match self {
            Cloud::Commercial => "api.security.microsoft.com",
            Cloud::Gcc => "api-gcc.security.microsoft.us",
            Cloud::GccHigh | Cloud::Dod => "api-gov.security.microsoft.us",
        }
    }

    /// The Microsoft Graph host.
    pub fn graph_host(self) -> &'static str {
        match self {
            Cloud::Commercial | Cloud::Gcc => "graph.microsoft.com",
            Cloud::GccHigh => "graph.microsoft.us",
            Cloud::Dod => "dod-graph.microsoft.us",
        }
    }

    /// The host of `api`.
    pub fn api_host(self, api: Api) -> &'static str {
        match api {
            Api::Defender => self.defender_host(),
            Api::Graph => self.graph_host(),
        }
    }

    /// The client-credentials scope for `api`: its resource with `/.default`.
    pub fn scope(self, api: Api) -> String {
        format!("https://{}/.default", self.api_host(api))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cloud_maps_to_its_published_hosts_and_scopes() {
        let table = [
            (
                Cloud::Commercial,
                "login.microsoftonline.com",
                "https://api.security.microsoft.com/.default",
                "https://graph.microsoft.com/.default",
            ),
            (
                Cloud::Gcc,
                "login.microsoftonline.com",
                "https://api-gcc.security.microsoft.us/.default",
                "https://graph.microsoft.com/.default",
            ),
            (
                Cloud::GccHigh,
                "login.microsoftonline.us",
                "https://api-gov.security.microsoft.us/.default",
                "https://graph.microsoft.us/.default",
            ),
            (
                Cloud::Dod,
                "login.microsoftonline.us",
                "https://api-gov.security.microsoft.us/.default",
                "https://dod-graph.microsoft.us/.default",
            ),
        ];
        for (cloud, login, defender_scope, graph_scope) in table {
            assert_eq!(cloud.login_host(), login, "{cloud:?}");
            assert_eq!(cloud.scope(Api::Defender), defender_scope, "{cloud:?}");
            assert_eq!(cloud.scope(Api::Graph), graph_scope, "{cloud:?}");
        }
    }

    #[test]
    fn roles_are_read_from_the_jwt_payload() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!(
            "{}.{}.sig",
            b64.encode("{}"),
            b64.encode(r#"{"roles":["Incident.Read.All"]}"#)
        );
        assert_eq!(
            token_roles(&token),
            Some(vec!["Incident.Read.All".to_string()])
        );
        assert_eq!(token_roles("opaque-token"), None);
    }

    #[test]
    fn the_403_guidance_names_the_connections_permission_or_both() {
        assert_eq!(
            guidance(403, Some(Api::Graph)),
            "grant the application permission SecurityIncident.Read.All (Microsoft Graph) and \
             have an administrator grant admin consent in Entra ID"
        );
        let either = guidance(403, None);
        assert!(
            either.contains("Incident.Read.All for defender, SecurityIncident.Read.All for graph")
        );
    }
}
