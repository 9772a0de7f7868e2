//! The request path: route, authenticate, then answer (skills, health, metrics) or admit an
//! invocation.
//!
//! Threat: every request is from the network. Nothing but `/healthz` and `/readyz` answers
//! without a valid key; a request body is read up to [`super::ServeSettings::max_body`] and no
//! further; an invocation request is checked completely (skill, connection, tenant, input,
//! limits) before it takes a slot or anything is sent upstream, so a caller naming another
//! tenant's connection costs the upstream nothing; the limits a caller asks for may only be
//! lower than the server's.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use skillhost_contract::error::{Failure, Reason};
use skillhost_contract::text::escape;
use skillhost_runtime::limits::{SandboxLimits, human_bytes, parse_bytes, parse_duration};
use skillhost_upstream::connections::CALLER_PREFIX;

use super::Server;
use super::callers::KnownCaller;
use super::invoke::Invocation;
use super::reply::{Body, failure_response, json_response, text_response};

/// Answers one request.
pub async fn handle<B>(server: Arc<Server>, request: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match route(&server, request).await {
        Ok(response) => response,
        Err(failure) => {
            server.metrics.rejected(failure.reason.as_str());
            failure_response(&failure)
        }
    }
}

async fn route<B>(server: &Arc<Server>, request: Request<B>) -> Result<Response<Body>, Failure>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    // Health answers need no key: a load balancer probes them.
    match (&method, path.as_str()) {
        (&Method::GET, "/healthz") => {
            return Ok(text_response(StatusCode::OK, "text/plain", "ok\n".into()));
        }
        (&Method::GET, "/readyz") => return Ok(ready(server)),
        _ => {}
    }
    let caller = authenticate(server, &request)?;
    if server.is_draining() {
        return Err(
            Failure::other("the server is shutting down and takes no new work")
                .with_reason(Reason::Unavailable)
                .with_hint("send it to another instance, or again once this one restarted"),
        );
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["metrics"]) => Ok(text_response(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            server.metrics.render(server.scheduler.load(), &|tenant| {
                // An invocation without a connection is counted under `caller:NAME`.
                match tenant.strip_prefix(CALLER_PREFIX) {
                    Some(name) => name == caller.name,
                    None => caller.may_use(tenant),
                }
            }),
        )),
        (&Method::GET, ["v1", "skills"]) => Ok(list_skills(server)),
        (&Method::GET, ["v1", "skills", id]) => describe_skill(server, id),
        (&Method::POST, ["v1", "skills", id, "invoke"]) => {
            let id = id.to_string();
            invoke(server, caller, &id, request).await
        }
        (_, ["v1", "skills", ..] | ["metrics"]) => {
            Err(Failure::usage(format!("{method} is not allowed on {path}"))
                .with_hint("skills are listed with GET and invoked with POST .../invoke"))
        }
        _ => Err(not_found(format!("no such endpoint: {path}"))),
    }
}

fn not_found(message: String) -> Failure {
    Failure::usage(message)
        .with_reason(Reason::NotFound)
        .with_hint("the endpoints are GET /v1/skills, GET /v1/skills/ID, POST /v1/skills/ID/invoke, GET /metrics, GET /healthz and GET /readyz")
}

/// The caller whose key the `Authorization: Bearer` header carries.
fn authenticate<B>(server: &Server, request: &Request<B>) -> Result<KnownCaller, Failure> {
    let unauthenticated = |why: &str| {
        Failure::usage(why.to_string())
            .with_reason(Reason::Unauthenticated)
            .with_hint("send `Authorization: Bearer <key>` with a key of a [callers.NAME] of the server's config")
    };
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthenticated("no API key: the Authorization header is missing"))?;
    let key = header
        .as_bytes()
        .strip_prefix(b"Bearer ")
        .ok_or_else(|| unauthenticated("the Authorization header is not `Bearer <key>`"))?;
    server
        .callers()
        .authenticate(key)
        .cloned()
        .ok_or_else(|| unauthenticated("the API key is not valid"))
}

fn ready(server: &Server) -> Response<Body> {
    let catalog = server.skills.current();
    let (status, state) = if server.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        (StatusCode::OK, "ready")
    };
    json_response(
        status,
        &json!({"status": state, "skills": catalog.skills.len(), "refused": catalog.refused.len()}),
    )
}

fn list_skills(server: &Server) -> Response<Body> {
    let catalog = server.skills.current();
    let skills: Vec<Value> = catalog
        .skills
        .values()
        .map(|s| {
            let m = s.manifest();
            json!({
                "id": m.id,
                "version": m.version,
                "name": m.name,
                "description": m.description,
                "output": m.output,
                "services": m.services,
                "digest": s.digest,
            })
        })
        .collect();
    let refused: Vec<Value> = catalog
        .refused
        .iter()
        .map(|p| json!({"file": p.path.display().to_string(), "reason": p.message}))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"skills": skills, "refused": refused}),
    )
}

fn describe_skill(server: &Server, id: &str) -> Result<Response<Body>, Failure> {
    let catalog = server.skills.current();
    let skill = catalog
        .skills
        .get(id)
        .ok_or_else(|| unknown_skill(id, &catalog))?;
    let mut doc = serde_json::to_value(skill.manifest())
        .map_err(|e| Failure::other(format!("cannot encode the manifest: {e}")))?;
    if let Value::Object(map) = &mut doc {
        map.insert("path".into(), json!(skill.path.display().to_string()));
        map.insert("digest".into(), json!(skill.digest));
    }
    Ok(json_response(StatusCode::OK, &doc))
}

fn unknown_skill(id: &str, catalog: &super::catalog::Catalog) -> Failure {
    let known: Vec<&str> = catalog.skills.keys().map(String::as_str).collect();
    Failure::usage(format!(
        "no skill with id `{id}`; known skills: {}",
        if known.is_empty() {
            "(none)".to_string()
        } else {
            known.join(", ")
        }
    ))
    .with_reason(Reason::NotFound)
    .with_hint("GET /v1/skills lists them, and the files that were refused")
}

/// The body of `POST /v1/skills/{id}/invoke`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeRequest {
    connection: Option<String>,
    #[serde(default)]
    input: Map<String, Value>,
    limits: Option<RequestedLimits>,
}

/// Limits a caller asks for: sizes and durations as the CLI writes them (`"32M"`, `"5s"`), or
/// numbers (bytes, milliseconds).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RequestedLimits {
    max_memory: Option<Value>,
    timeout: Option<Value>,
    max_output: Option<Value>,
    max_log: Option<Value>,
}

async fn invoke<B>(
    server: &Arc<Server>,
    caller: KnownCaller,
    id: &str,
    request: Request<B>,
) -> Result<Response<Body>, Failure>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let catalog = server.skills.current();
    let skill = catalog
        .skills
        .get(id)
        .cloned()
        .ok_or_else(|| unknown_skill(id, &catalog))?;
    drop(catalog);
    let body = read_body(request.into_body(), server.settings.max_body).await?;
    let parsed = serde_json::from_slice::<InvokeRequest>(&body);
    // Not kept while the invocation waits and runs.
    drop(body);
    let request: InvokeRequest = parsed.map_err(|e| {
        Failure::usage(format!("the request body is not a valid invocation: {e}")).with_hint(
            "send {\"connection\": \"NAME\", \"input\": {...}} (limits optional: \
             {\"limits\": {\"timeout\": \"5s\", \"max_memory\": \"32M\"}})",
        )
    })?;
    let manifest = skill.manifest();
    let config = server.config();
    let connection = match &request.connection {
        None if !manifest.services.is_empty() => {
            return Err(Failure::usage(format!(
                "skill `{id}` calls {} and needs a connection",
                manifest.services.join(", ")
            ))
            .with_hint("name one in the request: {\"connection\": \"NAME\", ...}"));
        }
        None => None,
        Some(name) => {
            // A connection of another tenant is answered as one that does not exist: a caller
            // learns nothing of other tenants' connections, not even their names.
            let not_found = || {
                Failure::usage(format!(
                    "caller `{}` has no connection named `{name}`",
                    caller.name
                ))
                .with_reason(Reason::NotFound)
                .with_hint(
                    "connections are the [connections.NAME] tables of the server's config, and \
                     the caller's `tenants` there decide which of them it may bind",
                )
            };
            let connection = config.connections.get(name).ok_or_else(not_found)?;
            if !caller.may_use(&connection.tenant) {
                tracing::warn!(
                    caller = %escape(&caller.name),
                    connection = %escape(name),
                    "a caller named a connection of a tenant not in its list (answered 404)"
                );
                return Err(not_found());
            }
            Some(connection.clone())
        }
    };
    let input = skillhost_runtime::input::validate(manifest, request.input).map_err(|e| {
        Failure::usage(e.0).with_hint(format!(
            "GET /v1/skills/{id} lists the parameters and their types"
        ))
    })?;
    let limits = requested_limits(server.settings.limits, request.limits.unwrap_or_default())?;
    let invocation = Invocation {
        skill,
        caller: caller.name,
        connection,
        input,
        limits,
    };
    invocation.run(server.clone()).await
}

/// How long a request body may take to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The body, read up to `max` bytes within [`BODY_TIMEOUT`].
async fn read_body<B>(body: B, max: usize) -> Result<Bytes, Failure>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // A body trickled byte by byte must not hold the connection: it has as long as a head.
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, max).collect());
    let Ok(collected) = read.await else {
        return Err(Failure::usage(format!(
            "the request body did not arrive within {} s",
            BODY_TIMEOUT.as_secs()
        )));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Failure::usage(format!(
            "the request body is larger than the server takes ({})",
            human_bytes(max)
        ))
        .with_hint("inputs are small; a large value belongs upstream, not in the request")),
        Err(e) => Err(Failure::usage(format!("cannot read the request body: {e}"))),
    }
}

/// The server's limits, lowered where the caller asked for less. Asking for more is an error.
fn requested_limits(
    server: SandboxLimits,
    asked: RequestedLimits,
) -> Result<SandboxLimits, Failure> {
    let size = |name: &str, value: Option<Value>, max: usize| -> Result<usize, Failure> {
        let Some(value) = value else {
            return Ok(max);
        };
        let bytes = match &value {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("{n} is not a size in bytes")),
            Value::String(s) => parse_bytes(s),
            _ => Err("give a size such as \"32M\" or a number of bytes".to_string()),
        }
        .map_err(|m| Failure::usage(format!("limits.{name}: {m}")))?;
        if bytes > max {
            return Err(Failure::usage(format!(
                "limits.{name}: {} is more than the server allows ({})",
                human_bytes(bytes),
                human_bytes(max)
            ))
            .with_hint("a request may only lower the server's limits"));
        }
        Ok(bytes)
    };
    let timeout = match asked.timeout {
        None => server.timeout,
        Some(value) => {
            let asked = match &value {
                Value::Number(n) => n
                    .as_u64()
                    .map(std::time::Duration::from_millis)
                    .ok_or_else(|| format!("{n} is not a number of milliseconds")),
                Value::String(s) => parse_duration(s),
                _ => Err("give a duration such as \"5s\" or a number of milliseconds".into()),
            }
            .map_err(|m| Failure::usage(format!("limits.timeout: {m}")))?;
            if asked > server.timeout || asked.is_zero() {
                return Err(Failure::usage(format!(
                    "limits.timeout: {} is not between 1 ms and the server's {}",
                    skillhost_runtime::limits::human_duration(asked),
                    skillhost_runtime::limits::human_duration(server.timeout)
                ))
                .with_hint("a request may only lower the server's limits"));
            }
            asked
        }
    };
    Ok(SandboxLimits {
        max_memory: size("max_memory", asked.max_memory, server.max_memory)?,
        timeout,
        max_output: size("max_output", asked.max_output, server.max_output)?,
        max_log: size("max_log", asked.max_log, server.max_log)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn server_limits() -> SandboxLimits {
        SandboxLimits {
            max_memory: 64 << 20,
            timeout: Duration::from_secs(60),
            max_output: 256 << 20,
            max_log: 4 << 20,
        }
    }

    #[test]
    fn a_request_may_lower_the_limits() {
        let asked = RequestedLimits {
            max_memory: Some(json!("32M")),
            timeout: Some(json!(1500)),
            ..RequestedLimits::default()
        };
        let limits = requested_limits(server_limits(), asked).unwrap();
        assert_eq!(limits.max_memory, 32 << 20);
        assert_eq!(limits.timeout, Duration::from_millis(1500));
        assert_eq!(limits.max_output, 256 << 20);
    }

    #[test]
    fn a_request_may_not_raise_a_limit() {
        let asked = RequestedLimits {
            timeout: Some(json!("2m")),
            ..RequestedLimits::default()
        };
        let err = requested_limits(server_limits(), asked).unwrap_err();
        assert_eq!(
            err.message,
            "limits.timeout: 120 s is not between 1 ms and the server's 60 s"
        );
    }
}
