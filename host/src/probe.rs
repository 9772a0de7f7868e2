//! `skillhost connections test NAME`: checks a connection end to end and says what to fix.
//!
//! Three checks, in the order an operator would fix them: a token can be obtained (Entra ID
//! errors explained), the token carries the application permission the API needs (read from
//! the JWT's `roles` claim, without verifying its signature: this is diagnosis, not trust), and
//! one probe call succeeds (answers explained with the troubleshooting table).

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::bindings::http;
use crate::cli::GlobalArgs;
use crate::connections::Config;
use crate::error::Failure;
use crate::outbound::Connector;

/// Runs the checks, printing one line per check; exit 0 only when all pass.
pub async fn connections_test(global: &GlobalArgs, name: &str) -> Result<(), Failure> {
    let config = Config::locate_and_load(global.config.as_deref())?;
    let connection = config.connection(name)?.clone();
    let api = connection.api;
    let scope = connection.cloud.scope(api);
    let connector = Connector::new(None);
    let client = connector.client(&connection).map_err(Failure::usage)?;
    println!(
        "connection `{name}`: tenant {}, app {}, cloud {}, api {}",
        connection.tenant_id,
        connection.client_id,
        connection.cloud.name(),
        api.service()
    );

    let token = match connector
        .tokens()
        .token(&client, &connection, &scope, None)
        .await
    {
        Ok(token) => token,
        Err(e) => {
            println!("FAIL token: {e}");
            return Err(Failure::skill(format!(
                "connection `{name}`: no token could be obtained"
            )));
        }
    };
    println!(
        "ok   token: obtained from {} for {scope}",
        connection.login_base()
    );

    let mut failed = Vec::new();
    let permission = api.permission();
    match token_roles(token.bearer()) {
        Some(roles) if roles.iter().any(|r| r == permission) => {
            println!("ok   permission: the token carries the {permission} role");
        }
        Some(roles) => {
            println!(
                "FAIL permission: the token's roles are [{}], without {permission}. In Entra ID > App \
                 registrations > {} > API permissions, add {} > Application permissions > {permission}, \
                 then select \"Grant admin consent\"",
                roles.join(", "),
                connection.client_id,
                api.permission_api_name()
            );
            failed.push("permission");
        }
        None => println!("skip permission: the token is not a JWT whose roles can be read"),
    }

    let path = match api {
        crate::clouds::Api::Defender => "/api/incidents?$top=1",
        crate::clouds::Api::Graph => "/v1.0/security/incidents?$top=1",
    };
    let bound = connector
        .bind(connection, Instant::now() + Duration::from_secs(60))
        .map_err(Failure::usage)?;
    let request = http::Request {
        service: api.service().to_string(),
        method: http::Method::Get,
        path_and_query: path.to_string(),
        headers: Vec::new(),
        body: None,
    };
    match bound.send("connections-test", request).await {
        Ok(response) if response.status == 200 => println!("ok   probe: GET {path} answered 200"),
        Ok(response) => {
            println!(
                "FAIL probe: GET {path} answered {}: {}",
                response.status,
                guidance(response.status, permission)
            );
            failed.push("probe");
        }
        Err(e) => {
            println!("FAIL probe: GET {path}: {}", describe_http_error(&e));
            failed.push("probe");
        }
    }
    if failed.is_empty() {
        println!("connection `{name}` is ready");
        Ok(())
    } else {
        Err(Failure::skill(format!(
            "connection `{name}` failed: {}",
            failed.join(", ")
        )))
    }
}

/// The `roles` claim of a JWT, read without verification.
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

/// What to do about a probe answer (the troubleshooting table).
pub fn guidance(status: u16, permission: &str) -> String {
    match status {
        400 => "the request was rejected as malformed; check the connection's api and cloud".into(),
        401 => "the token was refused; check tenant_id, client_id and the client secret, or regenerate the secret".into(),
        403 => format!("the app lacks {permission}; grant it and have an administrator grant admin consent"),
        404 => "the endpoint was not found; check the connection's cloud and endpoint overrides".into(),
        429 => "throttled; wait a minute and try again".into(),
        500..=599 => "the service had a problem; retry later".into(),
        _ => "unexpected answer".into(),
    }
}

fn describe_http_error(error: &http::HttpError) -> String {
    match error {
        http::HttpError::Denied(why) => format!("denied by the egress policy: {why}"),
        http::HttpError::Unauthorized(why) => why.clone(),
        http::HttpError::Timeout => "timed out".into(),
        http::HttpError::TooLarge(cap) => format!("answer larger than {cap} bytes"),
        http::HttpError::Transport(why) => format!("cannot reach the API: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
