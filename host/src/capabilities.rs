//! The imports a skill is granted: `http`, `connection`, `log` and `emit`.
//!
//! Threat: these functions are the whole of a guest's reach, and everything they receive is
//! guest-controlled. `emit` is bounded (output cap, rows must be JSON objects), `log` is truncated
//! and never reaches stdout, `connection.info` returns no secret, and `http.send` goes through the
//! egress policy and authentication of [`crate::outbound`]. An invocation without a connection has
//! no HTTP at all.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde_json::{Map, Value};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use wasmtime::component::Resource;

use crate::bindings::{connection, emit, http, log, types};
use crate::error::Failure;
use crate::outbound::{BoundConnection, IncomingBody};
use crate::sandbox::{InvocationState, Violation, human_bytes};

/// The most of one log message that is kept.
const LOG_MESSAGE_CAP: usize = 4096;
/// Streamed response bodies a guest may hold open at once (each holds a connection).
const OPEN_BODIES_CAP: usize = 8;

/// What an invocation may reach beyond its own memory.
#[derive(Default)]
pub struct Capabilities {
    /// The connection the invocation is bound to, if any.
    pub connection: Option<Arc<BoundConnection>>,
}

impl Capabilities {
    /// No connection: `http.send` is refused and `connection.info` traps.
    pub fn none() -> Self {
        Capabilities::default()
    }

    /// Bound to `connection`.
    pub fn bound(connection: Arc<BoundConnection>) -> Self {
        Capabilities {
            connection: Some(connection),
        }
    }
}

/// Where a dataset's rows go, one JSON object at a time, as the guest emits them.
pub trait RowSink: Send {
    /// Takes one row. An error stops the skill (the host reports it).
    fn row(&mut self, row: Map<String, Value>) -> std::io::Result<()>;
}

/// A sink for skills that must not emit (during `describe`).
pub struct RefuseRows;

impl RowSink for RefuseRows {
    fn row(&mut self, _row: Map<String, Value>) -> std::io::Result<()> {
        Err(std::io::Error::other("rows cannot be emitted here"))
    }
}

/// A sink that keeps rows in memory (tests and library callers).
#[derive(Clone, Default)]
pub struct CollectRows(pub Arc<Mutex<Vec<Map<String, Value>>>>);

impl RowSink for CollectRows {
    fn row(&mut self, row: Map<String, Value>) -> std::io::Result<()> {
        match self.0.lock() {
            Ok(mut rows) => {
                rows.push(row);
                Ok(())
            }
            Err(_) => Err(std::io::Error::other("row collector poisoned")),
        }
    }
}

/// Maps a guest's `skill-error` to a failure with the guidance of the troubleshooting table.
pub fn skill_error_failure(skill: &str, error: types::SkillError) -> Failure {
    use types::SkillError as E;
    match error {
        E::InvalidInput(m) => Failure::usage(format!("skill `{skill}` refused its input: {m}")),
        E::NotFound(m) => Failure::skill(format!("not found: {m}")),
        E::Denied(m) => Failure::sandbox(format!("skill `{skill}` was denied a capability: {m}")),
        E::Unauthorized(m) => Failure::skill(format!("unauthorized: {m}")).with_hint(
            "check the connection's tenant_id, client_id and client secret; if the secret \
             expired, create a new one in Entra ID and update the env var or file it is read from",
        ),
        E::Forbidden(m) => Failure::skill(format!("forbidden: {m}")).with_hint(
            "grant the application permission the connection's api needs (Incident.Read.All for \
             defender, SecurityIncident.Read.All for graph) and have an administrator grant admin \
             consent in Entra ID",
        ),
        E::Throttled(m) => Failure::skill(format!("throttled: {m}")).with_hint(
            "the API kept answering 429 after retries; run again later or lower the call rate",
        ),
        E::Upstream(u) => {
            let hint = match u.status {
                0 => {
                    "the service could not be reached; check the connection's endpoints, remote_agent and the network path"
                }
                400 => "the request was malformed; check the parameters (filter, page size)",
                500..=599 => "the service had a problem; retry later",
                _ => "see the service's message above",
            };
            let code = if u.code.is_empty() {
                String::new()
            } else {
                format!(" {}", u.code)
            };
            Failure::skill(format!("upstream error {}{code}: {}", u.status, u.message))
                .with_hint(hint)
        }
        E::Timeout(m) => Failure::skill(format!("timed out: {m}")),
        E::Internal(m) => Failure::skill(format!("skill `{skill}` failed: {m}")),
    }
}

impl types::Host for InvocationState {}

impl log::Host for InvocationState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let message = truncate(&message, LOG_MESSAGE_CAP);
        let skill = self.skill.as_str();
        match level {
            log::Level::Trace => tracing::trace!(target: "skill", skill, "{message}"),
            log::Level::Debug => tracing::debug!(target: "skill", skill, "{message}"),
            log::Level::Info => tracing::info!(target: "skill", skill, "{message}"),
            log::Level::Warn => tracing::warn!(target: "skill", skill, "{message}"),
            log::Level::Error => tracing::error!(target: "skill", skill, "{message}"),
        }
        Ok(())
    }
}

impl emit::Host for InvocationState {
    async fn emit(&mut self, row_json: String) -> wasmtime::Result<Result<(), String>> {
        self.output_used = self.output_used.saturating_add(row_json.len());
        if self.output_used > self.output_cap {
            self.violation = Some(Violation::Output(self.output_cap));
            return Ok(Err(format!(
                "output limit of {} reached; stop emitting",
                human_bytes(self.output_cap)
            )));
        }
        let row = match serde_json::from_str::<Value>(&row_json) {
            Ok(Value::Object(row)) => row,
            Ok(_) => return Ok(Err("a row must be a JSON object".to_string())),
            Err(e) => return Ok(Err(format!("a row must be a JSON object: {e}"))),
        };
        match self.rows.row(row) {
            Ok(()) => Ok(Ok(())),
            // The consumer went away (closed pipe): nothing more can be delivered.
            Err(e) => Ok(Err(format!("the host could not take the row: {e}"))),
        }
    }
}

impl connection::Host for InvocationState {
    async fn info(&mut self) -> wasmtime::Result<connection::ConnectionInfo> {
        match &self.capabilities.connection {
            Some(bound) => Ok(bound.info()),
            None => Err(wasmtime::Error::msg(
                "this invocation is bound to no connection; run it with --connection NAME",
            )),
        }
    }
}

impl InvocationState {
    fn bound_connection(&mut self) -> Result<Arc<BoundConnection>, http::HttpError> {
        match self.capabilities.connection.clone() {
            Some(bound) => Ok(bound),
            None => {
                let why =
                    "this invocation is bound to no connection; run it with --connection NAME";
                self.violation = Some(Violation::Denied(why.to_string()));
                Err(http::HttpError::Denied(why.to_string()))
            }
        }
    }

    /// Records what an HTTP error means for the invocation as a whole.
    fn note_http_error(&mut self, error: &http::HttpError) {
        match error {
            http::HttpError::Denied(why) => {
                self.violation = Some(Violation::Denied(why.clone()));
            }
            // The call gave up because the invocation's deadline came: whatever the guest does
            // with the error, the invocation ran out of time.
            http::HttpError::Timeout => {
                self.violation = Some(Violation::Deadline(self.timeout));
            }
            _ => {}
        }
    }
}

impl http::Host for InvocationState {
    async fn send(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        let bound = match self.bound_connection() {
            Ok(bound) => bound,
            Err(e) => return Ok(Err(e)),
        };
        let result = bound.send(&self.skill, request).await;
        if let Err(error) = &result {
            self.note_http_error(error);
        }
        Ok(result)
    }

    async fn send_streaming(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::StreamedResponse, http::HttpError>> {
        let bound = match self.bound_connection() {
            Ok(bound) => bound,
            Err(e) => return Ok(Err(e)),
        };
        if self.open_bodies >= OPEN_BODIES_CAP {
            let why = format!(
                "at most {OPEN_BODIES_CAP} response bodies may be open at once; read or drop one first"
            );
            return Ok(Err(http::HttpError::Denied(why)));
        }
        match bound.send_streaming(&self.skill, request).await {
            Ok((status, headers, body)) => {
                let body = self.table.push(body)?;
                self.open_bodies += 1;
                Ok(Ok(http::StreamedResponse {
                    status,
                    headers,
                    body,
                }))
            }
            Err(error) => {
                self.note_http_error(&error);
                Ok(Err(error))
            }
        }
    }
}

impl http::HostIncomingBody for InvocationState {
    async fn read(
        &mut self,
        body: Resource<IncomingBody>,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, http::HttpError>> {
        let result = self.table.get_mut(&body)?.read(max).await;
        if let Err(error) = &result {
            self.note_http_error(error);
        }
        Ok(result)
    }

    async fn drop(&mut self, body: Resource<IncomingBody>) -> wasmtime::Result<()> {
        self.table.delete(body)?;
        self.open_bodies = self.open_bodies.saturating_sub(1);
        Ok(())
    }
}

fn truncate(text: &str, cap: usize) -> &str {
    if text.len() <= cap {
        return text;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A guest's stdout or stderr: kept in memory up to a cap, the rest silently dropped (a guest
/// cannot fill the host's memory or crash on a full pipe), forwarded to the log afterwards.
#[derive(Clone)]
pub struct GuestOutput {
    buffer: Arc<Mutex<Vec<u8>>>,
    cap: usize,
}

impl GuestOutput {
    /// An empty buffer that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        GuestOutput {
            buffer: Arc::new(Mutex::new(Vec::new())),
            cap,
        }
    }

    /// The complete lines written so far, lossily decoded.
    pub fn lines(&self) -> Vec<String> {
        match self.buffer.lock() {
            Ok(buf) => String::from_utf8_lossy(&buf)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The last non-empty line (a Rust guest's panic message ends up here).
    pub fn last_line(&self) -> Option<String> {
        self.lines()
            .into_iter()
            .rfind(|l| !l.contains("note: run with"))
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Ok(mut buf) = self.buffer.lock() {
            let room = self.cap.saturating_sub(buf.len());
            buf.extend_from_slice(&data[..data.len().min(room)]);
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
