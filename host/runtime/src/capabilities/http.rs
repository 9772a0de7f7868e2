//! `http.send`, `http.send-streaming`, `incoming-body` and `connection.info`: the bound
//! connection, reached through `skillhost-upstream`.
//!
//! Threat: without a connection there is no HTTP (a denial, reported as a sandbox violation);
//! an `http.send` body is held whole by the host before the guest gets it, so it is refused past
//! the invocation's memory cap (the guest could not take it, and the host would hold it for
//! nothing);
//! streamed bodies each hold an upstream connection, so at most [`OPEN_BODIES_CAP`] are open at
//! once; body handles are typed entries of the store's resource table, so a guest cannot name
//! anything else through them.

use std::sync::Arc;
use std::time::Duration;

use skillhost_contract::types::{
    BodyId, ConnectionInfo, HttpError, HttpRequest, HttpResponse, StreamedResponse,
};
use skillhost_upstream::body::IncomingBody;
use skillhost_upstream::outbound::{BoundConnection, StreamedAnswer};
use wasmtime::component::{Resource, ResourceTable};

use crate::violation::Violation;

/// Streamed response bodies a guest may hold open at once (each holds a connection).
pub const OPEN_BODIES_CAP: usize = 8;

const NO_CONNECTION: &str =
    "this invocation is bound to no connection; run it with --connection NAME";

/// The HTTP capability of one invocation.
pub struct HttpCapability {
    connection: Option<Arc<BoundConnection>>,
    open_bodies: usize,
    timeout: Duration,
    /// The invocation's memory cap: an `http.send` body larger than this is refused.
    max_body: u64,
    violation: Option<Violation>,
}

impl HttpCapability {
    /// HTTP through `connection`, or none at all, for an invocation with `timeout` and
    /// `max_memory` bytes of memory.
    pub fn new(
        connection: Option<Arc<BoundConnection>>,
        timeout: Duration,
        max_memory: usize,
    ) -> Self {
        HttpCapability {
            connection,
            open_bodies: 0,
            timeout,
            max_body: max_memory as u64,
            violation: None,
        }
    }

    /// The rule the last call broke, if any (taken: reported once).
    pub fn take_violation(&mut self) -> Option<Violation> {
        self.violation.take()
    }

    /// Records what `result`'s error means for the invocation as a whole. A timeout the pacer
    /// decided (its wait would have passed the deadline) is reported as pacing, not as the
    /// deadline.
    fn note<T>(&mut self, result: Result<T, HttpError>) -> Result<T, HttpError> {
        if let Err(error) = &result {
            let paced = match error {
                HttpError::Timeout => self
                    .connection
                    .as_ref()
                    .and_then(|c| c.take_pacing_refusal()),
                _ => None,
            };
            if let Some(violation) = paced
                .map(Violation::Paced)
                .or_else(|| violation_of(error, self.timeout))
            {
                self.violation = Some(violation);
            }
        }
        result
    }

    /// The bound connection, if any.
    pub fn connection(&self) -> Option<&Arc<BoundConnection>> {
        self.connection.as_ref()
    }

    fn bound(&self) -> Result<Arc<BoundConnection>, HttpError> {
        self.connection
            .clone()
            .ok_or_else(|| HttpError::Denied(NO_CONNECTION.to_string()))
    }

    /// `connection.info`; without a connection the guest traps (it cannot go on meaningfully).
    pub fn info(&self) -> wasmtime::Result<ConnectionInfo> {
        match &self.connection {
            Some(bound) => Ok(bound.info()),
            None => Err(wasmtime::Error::msg(NO_CONNECTION)),
        }
    }

    /// `http.send` for `skill`.
    pub async fn send(
        &mut self,
        skill: &str,
        request: HttpRequest,
    ) -> Result<HttpResponse, HttpError> {
        let bound = self.bound();
        let result = match bound {
            Ok(bound) => bound.send_within(skill, request, self.max_body).await,
            Err(e) => Err(e),
        };
        self.note(result)
    }

    /// `http.send-streaming` for `skill`; the body is kept in `table`.
    pub async fn send_streaming(
        &mut self,
        skill: &str,
        request: HttpRequest,
        table: &mut ResourceTable,
    ) -> wasmtime::Result<Result<StreamedResponse, HttpError>> {
        let bound = match self.bound() {
            Ok(bound) => bound,
            Err(e) => return Ok(self.note(Err(e))),
        };
        if self.open_bodies >= OPEN_BODIES_CAP {
            // Not a violation: the guest may drop a body and go on.
            let why = format!(
                "at most {OPEN_BODIES_CAP} response bodies may be open at once; read or drop one first"
            );
            return Ok(Err(HttpError::Denied(why)));
        }
        match bound.send_streaming(skill, request).await {
            Ok(StreamedAnswer {
                status,
                headers,
                body,
            }) => {
                let body = table.push(body)?;
                self.open_bodies += 1;
                Ok(Ok(StreamedResponse {
                    status,
                    headers,
                    body: body.rep(),
                }))
            }
            Err(error) => Ok(self.note(Err(error))),
        }
    }

    /// `incoming-body.read`.
    pub async fn read(
        &mut self,
        table: &mut ResourceTable,
        body: BodyId,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, HttpError>> {
        let body = table.get_mut(&Resource::<IncomingBody>::new_borrow(body))?;
        let result = body.read(max).await;
        Ok(self.note(result))
    }

    /// The guest dropped a body: its connection is released and its audit record written.
    pub fn drop_body(&mut self, table: &mut ResourceTable, body: BodyId) -> wasmtime::Result<()> {
        table.delete(Resource::<IncomingBody>::new_own(body))?;
        self.open_bodies = self.open_bodies.saturating_sub(1);
        Ok(())
    }

    /// The guest returned: a page the host asked for ahead of it is dropped now (a call still
    /// under way is cancelled), not when the invocation's store goes, after the host's own
    /// work on the way out.
    pub fn abandon_prefetch(&self) {
        if let Some(connection) = &self.connection {
            connection.abandon_prefetch();
        }
    }
}

impl Drop for HttpCapability {
    /// The invocation is over: a page the host asked for ahead of it is dropped.
    fn drop(&mut self) {
        self.abandon_prefetch();
    }
}

/// What an HTTP error means for the invocation as a whole, whatever the guest does with it: a
/// denial is a sandbox violation, and a call that gave up because the deadline came means the
/// invocation ran out of time.
pub fn violation_of(error: &HttpError, timeout: Duration) -> Option<Violation> {
    match error {
        HttpError::Denied(why) => Some(Violation::Denied(why.clone())),
        HttpError::Timeout => Some(Violation::Deadline(timeout)),
        _ => None,
    }
}
