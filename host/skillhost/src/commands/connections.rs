//! `skillhost connections list|test`: the configured connections, and an end-to-end check of one
//! that says what to fix.
//!
//! `test` runs three checks, in the order an operator would fix them: a token can be obtained
//! (Entra ID errors explained), the token carries the application permission the API needs (read
//! from the JWT's `roles` claim, without verifying its signature: this is diagnosis, not trust),
//! and one probe call succeeds (answers explained with the troubleshooting table).

use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::json;
use skillhost_contract::error::Failure;
use skillhost_contract::text::escape;
use skillhost_contract::types::{HttpError, HttpRequest, Method};
use skillhost_runtime::limits::{human_duration, parse_duration};
use skillhost_upstream::auth::AccessToken;
use skillhost_upstream::connections::{Config, Connection, SecretSource};
use skillhost_upstream::outbound::Connector;
use skillhost_upstream::providers::microsoft::{guidance, token_roles};

use crate::global::GlobalArgs;

/// `connections` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Every connection with its tenant, cloud, api and endpoints; never a secret.
    List,
    /// Gets a token, checks its permission, makes one probe call, and says what to fix.
    Test {
        /// The connection's name.
        name: String,
        /// How long each check (the token, the probe call) may take.
        #[arg(long, value_name = "DURATION", default_value = "60s")]
        timeout: String,
    },
}

/// Runs a `connections` subcommand.
pub async fn run(global: &GlobalArgs, command: ConnectionsCommand) -> Result<(), Failure> {
    let config = Config::locate_and_load(global.config.as_deref())?;
    match command {
        ConnectionsCommand::List => list(&config),
        ConnectionsCommand::Test { name, timeout } => {
            let timeout =
                parse_duration(&timeout).map_err(|m| Failure::usage(format!("--timeout: {m}")))?;
            test(&config, &name, timeout).await
        }
    }
}

fn list(config: &Config) -> Result<(), Failure> {
    let mut list = Vec::new();
    for c in config.connections.values() {
        let secret = match &c.client_secret {
            SecretSource::Env(var) => json!({"env": var}),
            SecretSource::File(path) => json!({"file": path.display().to_string()}),
        };
        let services: Vec<_> = c
            .services()
            .iter()
            .map(|s| json!({"name": s, "base": c.service_base(s)}))
            .collect();
        list.push(json!({
            "name": c.name,
            "tenant": c.tenant,
            "tenant_id": c.tenant_id,
            "client_id": c.client_id,
            "client_secret": secret,
            "cloud": c.cloud.name(),
            "api": c.api.service(),
            "permission": c.api.permission(),
            "login": c.login_base(),
            "services": services,
            "remote_agent": c.remote_agent,
            "pacing": {"per_minute": c.pacing.per_minute, "per_hour": c.pacing.per_hour},
        }));
    }
    let text = serde_json::to_string_pretty(&list)
        .map_err(|e| Failure::other(format!("cannot encode the connections: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Runs the checks, printing one line per check, each within `timeout`; exit 0 only when all
/// pass.
async fn test(config: &Config, name: &str, timeout: Duration) -> Result<(), Failure> {
    let connection = config.connection(name)?.clone();
    let connector = Connector::new(None);
    println!(
        "connection `{name}`: tenant {}, app {}, cloud {}, api {}",
        connection.tenant_id,
        connection.client_id,
        connection.cloud.name(),
        connection.api.service()
    );
    let token = check_token(&connector, &connection, timeout).await?;
    let mut failed = Vec::new();
    if !check_permission(&connection, &token) {
        failed.push("permission");
    }
    if !check_probe(&connector, connection, timeout).await? {
        failed.push("probe");
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

/// A token can be obtained within `timeout`; without one nothing else can be checked.
async fn check_token(
    connector: &Connector,
    connection: &Connection,
    timeout: Duration,
) -> Result<AccessToken, Failure> {
    let scope = connection.cloud.scope(connection.api);
    let client = connector.client(connection).map_err(Failure::usage)?;
    let asked = connector.tokens().token(&client, connection, &scope, None);
    let Ok(answer) = tokio::time::timeout(timeout, asked).await else {
        println!(
            "FAIL token: {} did not answer within {}",
            escape(&connection.login_base()),
            human_duration(timeout)
        );
        return Err(Failure::skill(format!(
            "connection `{}`: no token could be obtained",
            connection.name
        ))
        .with_hint(
            "check that the login endpoint is reachable from here (a proxy or a firewall that \
             holds connections open), or give it longer with --timeout",
        ));
    };
    match answer {
        Ok(token) => {
            println!(
                "ok   token: obtained from {} for {scope}",
                connection.login_base()
            );
            Ok(token)
        }
        Err(e) => {
            println!("FAIL token: {}", escape(&e.to_string()));
            Err(Failure::skill(format!(
                "connection `{}`: no token could be obtained",
                connection.name
            )))
        }
    }
}

/// The token carries the API's application permission.
fn check_permission(connection: &Connection, token: &AccessToken) -> bool {
    let api = connection.api;
    let permission = api.permission();
    match token_roles(token.bearer()) {
        Some(roles) if roles.iter().any(|r| r == permission) => {
            println!("ok   permission: the token carries the {permission} role");
            true
        }
        Some(roles) => {
            println!(
                "FAIL permission: the token's roles are [{}], without {permission}. In Entra ID > App \
                 registrations > {} > API permissions, add {} > Application permissions > {permission}, \
                 then select \"Grant admin consent\"",
                escape(&roles.join(", ")),
                connection.client_id,
                api.permission_api_name()
            );
            false
        }
        None => {
            println!("skip permission: the token is not a JWT whose roles can be read");
            true
        }
    }
}

/// One cheap call answers 200.
async fn check_probe(
    connector: &std::sync::Arc<Connector>,
    connection: Connection,
    timeout: Duration,
) -> Result<bool, Failure> {
    let api = connection.api;
    let path = api.probe_path();
    let bound = connector
        .bind(connection, Instant::now() + timeout)
        .map_err(Failure::usage)?;
    let request = HttpRequest {
        service: api.service().to_string(),
        method: Method::Get,
        path_and_query: path.to_string(),
        headers: Vec::new(),
        body: None,
    };
    Ok(match bound.send("connections-test", request).await {
        Ok(response) if response.status == 200 => {
            println!("ok   probe: GET {path} answered 200");
            true
        }
        Ok(response) => {
            println!(
                "FAIL probe: GET {path} answered {}: {}",
                response.status,
                guidance(response.status, Some(api))
            );
            false
        }
        Err(e) => {
            println!(
                "FAIL probe: GET {path}: {}",
                escape(&describe_http_error(&e))
            );
            false
        }
    })
}

fn describe_http_error(error: &HttpError) -> String {
    match error {
        HttpError::Denied(why) => format!("denied by the egress policy: {why}"),
        HttpError::Unauthorized(why) => why.clone(),
        HttpError::Timeout => "timed out".into(),
        HttpError::TooLarge(cap) => format!("answer larger than {cap} bytes"),
        // The host words an answer that arrived damaged as "the answer ...": it was reached.
        HttpError::Transport(why) if why.starts_with("the answer ") => why.clone(),
        HttpError::Transport(why) => format!("cannot reach the API: {why}"),
    }
}
