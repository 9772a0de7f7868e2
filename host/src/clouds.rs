//! The published endpoints of each Microsoft cloud: login, Defender XDR API, Graph, and scopes.

use serde::{Deserialize, Serialize};

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
}
