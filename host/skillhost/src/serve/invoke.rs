//! One admitted invocation: a slot from the scheduler, the connection bound, the skill run, its
//! rows streamed to the caller, and one audit record and one metrics count at the end, whatever
//! the end was.
//!
//! Threat: the caller may stop reading (or go away) mid-stream, and the skill may emit faster
//! than the network takes. Rows pass through a small bounded channel: a slow reader makes the
//! guest wait (inside its deadline), never the host buffer; a reader that went away cancels
//! the invocation at once. Shutdown past the drain timeout cancels what still runs, and says so
//! in the stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::Response;
use serde_json::{Map, Value, json};
use skillhost_contract::error::{Failure, Reason};
use skillhost_contract::manifest::OutputKind;
use skillhost_contract::text::escape;
use skillhost_runtime::capabilities::emit::{OutputFull, Ready, Row};
use skillhost_runtime::capabilities::state::{PendingState, StateGrant, commit_note, note_commit};
use skillhost_runtime::capabilities::{Capabilities, RefuseRows, RowSink};
use skillhost_runtime::limits::SandboxLimits;
use skillhost_runtime::output::Output;
use skillhost_upstream::connections::{CALLER_PREFIX, Connection};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::Server;
use super::catalog::ServedSkill;
use super::metrics::Finished;
use super::reply::{
    Body, ROWS_END, error_document, failure_response, json_bytes_response, json_line,
    ndjson_response, output_line, summary_line,
};
use super::schedule::Refused;

/// How long the last line of a stream waits for a caller that stopped reading.
const LAST_LINE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Chunks (rows) in flight between a skill and its caller's connection.
const STREAM_CHUNKS: usize = 16;

/// An invocation checked and ready to be scheduled.
pub struct Invocation {
    /// The skill, as it was when the request arrived.
    pub skill: Arc<ServedSkill>,
    /// Who asked.
    pub caller: String,
    /// The connection to bind, if any.
    pub connection: Option<Connection>,
    /// The validated input.
    pub input: Map<String, Value>,
    /// Its limits.
    pub limits: SandboxLimits,
}

/// How an invocation ended, for the audit record and the metrics.
struct Ending {
    outcome: &'static str,
    peak_memory: usize,
    /// Whether the run's staged state committed (`None`: it staged nothing).
    state: Option<&'static str>,
}

impl Invocation {
    /// Waits for a slot, runs, and answers: the result object, or the rows as NDJSON ending
    /// with the summary (or the error).
    pub async fn run(self, server: Arc<Server>) -> Result<Response<Body>, Failure> {
        // In flight from now until its answer was handed to the connection: shutdown drains
        // queued invocations and answers being sent, not only running ones.
        let in_flight = server.track();
        let tenant = match &self.connection {
            Some(c) => c.tenant.clone(),
            None => format!("{CALLER_PREFIX}{}", self.caller),
        };
        let mut shutdown = server.shutdown_signal();
        let admitted = tokio::select! {
            admitted = server.scheduler.admit(&tenant) => admitted,
            _ = shutdown.wait_for(|cancel| *cancel) => {
                return Err(Failure::other("the server shut down before the invocation started")
                    .with_reason(Reason::Unavailable)
                    .with_hint("run it again on an instance that is not shutting down"));
            }
        };
        let permit = admitted.map_err(|refused| {
            let why = match refused {
                Refused::TenantQueueFull => "this tenant has as many invocations waiting as it may",
                Refused::QueueFull => "the server has as many invocations waiting as it may",
            };
            Failure::usage(format!("too many invocations: {why}"))
                .with_reason(Reason::Throttled)
                .with_hint("retry after the time Retry-After gives")
        })?;
        let started = Instant::now();
        let capabilities = match self.connection.clone() {
            None => Capabilities::none(),
            Some(connection) => {
                // State is kept per (tenant, connection, skill): the scope is the host's. Neither
                // step depends on the request: a failure is the server's configuration (a tenant
                // the store cannot scope by, a connection whose client cannot be built).
                // The caller gets no detail: it could name a proxy's address, or its credentials.
                let server_side = |failure: Failure| {
                    tracing::error!(
                        "connection `{}` cannot be used: {}",
                        escape(&connection.name),
                        failure.to_safe_string()
                    );
                    Failure::other(format!(
                        "connection `{}` cannot be used: the server's configuration of it is \
                         broken",
                        connection.name
                    ))
                    .with_hint("its operator finds what to fix in the server's log")
                };
                let grant =
                    StateGrant::for_run(&server.state, &connection, &self.skill.manifest().id)
                        .map_err(server_side)?;
                let bound = server
                    .connector
                    .bind(connection.clone(), started + self.limits.timeout)
                    .map_err(|why| server_side(Failure::usage(why)))?;
                Capabilities::bound(bound).with_state(grant)
            }
        };
        let bound = capabilities.connection.clone();
        let (sender, mut receiver) = mpsc::channel::<Bytes>(STREAM_CHUNKS);
        let (early_sender, mut early) = oneshot::channel::<Result<Bytes, Failure>>();
        let dataset = self.skill.manifest().output == OutputKind::Dataset;
        let written = Arc::new(AtomicU64::new(0));
        // Only a dataset's rows reach the caller; an object skill that emits is told it may not.
        let sink: Box<dyn RowSink> = if dataset {
            Box::new(StreamSink {
                sender: sender.clone(),
                written: written.clone(),
                reserved: None,
                cap: self.limits.max_output as u64,
            })
        } else {
            Box::new(RefuseRows)
        };
        let (delivered, delivery) = oneshot::channel::<()>();
        let (rows_taken_sender, rows_taken) = oneshot::channel::<()>();
        let task_server = server.clone();
        let running = server.track();
        // Every line the run logs, the skill's `log` lines and the host's own about it, says
        // whose run it was. At error level, so that it is there whenever anything is logged (a
        // span below the log's level is not recorded).
        let span = tracing::error_span!(
            "invocation",
            tenant = %escape(&tenant),
            caller = %escape(&self.caller),
        );
        tokio::spawn(async move {
            let permit = permit;
            let _running = running;
            let server = task_server;
            // The run is a task of its own, so that a host panic while it runs (a bug) is an
            // answer (500, logged) rather than a connection closed without one.
            let run = {
                let (server, skill, input, limits) = (
                    server.clone(),
                    self.skill.clone(),
                    self.input.clone(),
                    self.limits,
                );
                tokio::spawn(
                    async move {
                        server
                            .runtime
                            .invoke(&skill.loaded, &input, capabilities, sink, limits)
                            .await
                    }
                    .in_current_span(),
                )
            };
            let abort = run.abort_handle();
            let (finished_sender, abort_wait) = oneshot::channel::<()>();
            let run = async move {
                let joined = run.await;
                let _ = finished_sender.send(());
                joined
            };
            let result = tokio::select! {
                joined = run => joined.unwrap_or_else(|e| {
                    let what = panic_text(e);
                    tracing::error!(skill = %self.skill.manifest().id, "the host failed while running the skill: {what}");
                    Err(Failure::other(format!("the host failed while running the skill: {what}"))
                        .with_hint("this is a bug of skillhost; the server's log has the details"))
                }),
                _ = sender.closed() => Err(Failure::other("the caller went away")
                    .with_reason(Reason::Unavailable)),
                _ = shutdown.wait_for(|cancel| *cancel) => Err(Failure::other(
                    "the server shut down before the invocation finished",
                )
                .with_reason(Reason::Unavailable)
                .with_hint("run it again on an instance that is not shutting down")),
            };
            // Cancelled (the caller went away, or shutdown): the run stops with its task, and is
            // over before anything below reads what it wrote.
            abort.abort();
            let _ = abort_wait.await;
            // The slot is free once the run is over, whatever the caller's reading pace.
            drop(permit);
            let mut ending = Ending {
                outcome: match &result {
                    Ok(_) => "ok",
                    Err(f) if f.message == "the caller went away" => "cancelled",
                    Err(f) => f.reason.as_str(),
                },
                peak_memory: result.as_ref().map_or(0, |i| i.peak_memory),
                state: None,
            };
            let (result, mut state) = match result {
                Ok(invocation) => (Ok(invocation.output), Some(invocation.state)),
                Err(failure) => (Err(failure), None),
            };
            let started_stream = written.load(Ordering::Relaxed) > 0;
            // A dataset's state (a cursor) moves on once every row was handed to the
            // connection, before the summary, which says whether it did.
            let result = match result {
                Ok(summary) if dataset && state.as_ref().is_some_and(|s| !s.is_empty()) => {
                    let rows_taken = if started_stream {
                        let marked = matches!(
                            tokio::time::timeout(LAST_LINE_WAIT, sender.send(ROWS_END)).await,
                            Ok(Ok(()))
                        );
                        // Taken, and the caller still there (its body not dropped).
                        marked
                            && matches!(
                                tokio::time::timeout(LAST_LINE_WAIT, rows_taken).await,
                                Ok(Ok(()))
                            )
                            && !sender.is_closed()
                    } else {
                        true
                    };
                    let committed = match state.take() {
                        Some(state) => {
                            settle(&self.skill.manifest().id, state, rows_taken, "rows").await
                        }
                        None => false,
                    };
                    summary
                        .into_value()
                        .map(|mut summary| {
                            ending.state = Some(note_commit(&mut summary, committed));
                            Output::from_value(summary)
                        })
                        .map_err(|e| Failure::other(format!("cannot read the run's summary: {e}")))
                }
                other => other,
            };
            if dataset && started_stream {
                let line = match result.as_ref().map(summary_line) {
                    Ok(Ok(line)) => line,
                    Ok(Err(e)) => json_line(&error_document(&Failure::other(format!(
                        "cannot write the run's summary: {e}"
                    )))),
                    Err(failure) => json_line(&error_document(failure)),
                };
                written.fetch_add(line.len() as u64, Ordering::Relaxed);
                // A caller that stopped reading gets the time of one head to take the last line.
                let _ = tokio::time::timeout(LAST_LINE_WAIT, sender.send(line)).await;
            } else {
                // Serialized here, so that the audit record counts the bytes of the answer.
                let answer = result.and_then(|output| {
                    let line = if dataset {
                        summary_line(&output)
                    } else {
                        output_line(&output)
                    };
                    let line = line.map_err(|e| {
                        Failure::other(format!("cannot write the run's result: {e}"))
                    })?;
                    written.fetch_add(line.len() as u64, Ordering::Relaxed);
                    Ok(line)
                });
                let _ = early_sender.send(answer);
            }
            drop(sender);
            // An object's state moves on only once the whole answer was handed to the
            // connection; a caller that went away leaves it where it was.
            if let Some(state) = state.filter(|s| !s.is_empty()) {
                let delivered = matches!(
                    tokio::time::timeout(LAST_LINE_WAIT, delivery).await,
                    Ok(Ok(()))
                );
                let committed = settle(&self.skill.manifest().id, state, delivered, "answer").await;
                ending.state = Some(commit_note(committed));
            }
            let upstream = bound
                .as_ref()
                .map_or((0, 0), |b| (b.requests_sent(), b.throttled_answers()));
            server.finished(&self, &tenant, started, ending, upstream, &written);
        }.instrument(span));
        // The answer's head waits for the first row or for the end, whichever comes first: a run
        // that fails before any row gets its own status, not a 200 with an error line.
        // `None`: no end will come this way (a dataset that sent rows ends in the stream).
        let ended = tokio::select! {
            biased;
            ended = &mut early => ended.ok(),
            first = receiver.recv() => match first {
                Some(first) => {
                    return Ok(ndjson_response(first, receiver).map(|b| {
                        b.held_by(in_flight)
                            .on_delivered(delivered)
                            .on_rows_taken(rows_taken_sender)
                    }));
                }
                // The stream closed first; the end may still be on its way.
                None => early.await.ok(),
            },
        };
        let response = match ended {
            Some(Ok(summary)) if dataset => ndjson_response(summary, receiver),
            Some(Ok(object)) => json_bytes_response(object),
            Some(Err(failure)) => failure_response(&failure),
            None => match receiver.recv().await {
                Some(first) => ndjson_response(first, receiver),
                None => return Err(Failure::other("the invocation ended without an answer")),
            },
        };
        Ok(response.map(|body| {
            body.held_by(in_flight)
                .on_delivered(delivered)
                .on_rows_taken(rows_taken_sender)
        }))
    }
}

impl Server {
    /// Writes the invocation's audit record and counts it.
    fn finished(
        &self,
        invocation: &Invocation,
        tenant: &str,
        started: Instant,
        ending: Ending,
        upstream: (u64, u64),
        written: &AtomicU64,
    ) {
        let elapsed = started.elapsed();
        let manifest = invocation.skill.manifest();
        let connection = invocation.connection.as_ref().map(|c| c.name.as_str());
        if let Some(audit) = &self.audit {
            audit.write_json(&json!({
                "kind": "invocation",
                "time": jiff::Timestamp::now().to_string(),
                "caller": invocation.caller,
                "tenant": invocation.connection.as_ref().map(|c| c.tenant.as_str()),
                "connection": connection,
                "skill": manifest.id,
                "digest": invocation.skill.digest,
                "outcome": ending.outcome,
                "duration_ms": elapsed.as_millis() as u64,
                "bytes_out": written.load(Ordering::Relaxed),
                "peak_memory": ending.peak_memory,
                "upstream_requests": upstream.0,
                "state": ending.state,
            }));
        }
        self.metrics.finished(Finished {
            skill: &manifest.id,
            tenant,
            outcome: ending.outcome,
            seconds: elapsed.as_secs_f64(),
            upstream,
            peak_memory: ending.peak_memory,
        });
    }
}

/// Commits a run's state if its `what` (the rows, or the whole answer) was delivered, else
/// drops it; says whether it committed, and logs why when it did not.
async fn settle(id: &str, state: PendingState, delivered: bool, what: &str) -> bool {
    if !delivered {
        state.abandon().await;
        tracing::info!(skill = %id, "the skill's state is not saved: its {what} did not all reach the caller");
        return false;
    }
    match state.commit().await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(skill = %id, "the skill's state was not saved, though its {what} reached the caller: {e}");
            false
        }
    }
}

/// What a failed run task says: the panic's message, or that it was cancelled.
fn panic_text(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return "the run was cancelled".to_string();
    }
    let payload = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// The rows of one invocation, one NDJSON line each, into the channel its answer reads.
struct StreamSink {
    sender: mpsc::Sender<Bytes>,
    written: Arc<AtomicU64>,
    reserved: Option<mpsc::OwnedPermit<Bytes>>,
    /// The output cap, bytes: what is sent (rows with their line ends) stops there, as the
    /// CLI's printed output does.
    cap: u64,
}

impl RowSink for StreamSink {
    fn ready(&mut self) -> Option<Ready<'_>> {
        if self.reserved.is_some() {
            return None;
        }
        Some(Box::pin(async move {
            let permit = self
                .sender
                .clone()
                .reserve_owned()
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
            self.reserved = Some(permit);
            Ok(())
        }))
    }

    fn row(&mut self, row: Row) -> std::io::Result<()> {
        // The guest's checked text, as it is: one object on one line.
        let mut line = row.into_text().into_bytes();
        line.push(b'\n');
        let len = line.len() as u64;
        if self.written.load(Ordering::Relaxed) + len > self.cap {
            return Err(std::io::Error::other(OutputFull(self.cap as usize)));
        }
        match self.reserved.take() {
            Some(permit) => {
                permit.send(Bytes::from(line));
            }
            None => self
                .sender
                .try_send(Bytes::from(line))
                .map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => {
                        std::io::Error::from(std::io::ErrorKind::WouldBlock)
                    }
                    mpsc::error::TrySendError::Closed(_) => {
                        std::io::Error::from(std::io::ErrorKind::BrokenPipe)
                    }
                })?,
        }
        self.written.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }
}
