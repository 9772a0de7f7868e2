//! `skillhost run ID`: one invocation, its rows or result printed as they come.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Args;
use skillhost_contract::error::Failure;
use skillhost_contract::manifest::OutputKind;
use skillhost_runtime::capabilities::RowSink;
use skillhost_runtime::capabilities::emit::{OutputFull, Row};
use skillhost_runtime::host::{PreparedInvocation, SkillHost};
use skillhost_runtime::limits::{SandboxLimits, parse_bytes, parse_duration};
use skillhost_runtime::output::Output;
use skillhost_runtime::violation::Violation;
use skillhost_upstream::audit::AuditLog;
use skillhost_upstream::connections::Config;
use skillhost_upstream::outbound::Connector;

use crate::global::{GlobalArgs, one_at_a_time};
use crate::output::{OutputFormat, RowPrinter};
use crate::pipe::stdout_pipe;
use skillhost_contract::error::Reason;
use skillhost_runtime::capabilities::state::{PendingState, note_commit};
use skillhost_state::StoreError;

use crate::progress::Progress;

/// `run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The skill's ID (see `skillhost skills list`).
    pub id: String,

    /// The connection the skill is bound to (see `skillhost connections list`).
    #[arg(long, short = 'c', value_name = "NAME")]
    pub connection: Option<String>,

    /// A parameter, as name=value; converted to the type the skill declares. Repeatable.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,

    /// All parameters as a JSON object, or @FILE to read it from a file. --param wins.
    #[arg(long, value_name = "JSON|@FILE")]
    pub input: Option<String>,

    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    pub output: OutputFormat,

    /// Sandbox limits of the invocation.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Append one JSON line per HTTP call the skill makes to this file.
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,

    /// Write CSV cells as they are. By default a cell a spreadsheet would run as a formula
    /// (starting with =, +, -, @, tab or CR, plain numbers excepted) is prefixed with '.
    #[arg(long)]
    pub csv_raw: bool,
}

/// Sandbox limits.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Memory cap of the skill's sandbox, such as 64M or 1G.
    #[arg(long, value_name = "SIZE", default_value = "64M")]
    pub max_memory: String,

    /// Wall-clock deadline of the invocation, HTTP calls included, such as 60s or 500ms.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub timeout: String,

    /// Cap on the result plus emitted rows, and on what is printed of them, such as 256M.
    #[arg(long, value_name = "SIZE", default_value = "256M")]
    pub max_output: String,

    /// Cap on the skill's log messages for the invocation, such as 4M; the rest is dropped and
    /// counted.
    #[arg(long, value_name = "SIZE", default_value = "4M")]
    pub max_log: String,
}

impl LimitArgs {
    /// The limits these flags give.
    pub fn parse(&self) -> Result<SandboxLimits, Failure> {
        Ok(SandboxLimits {
            max_memory: parse_bytes(&self.max_memory)
                .map_err(|m| Failure::usage(format!("--max-memory: {m}")))?,
            timeout: parse_duration(&self.timeout)
                .map_err(|m| Failure::usage(format!("--timeout: {m}")))?,
            max_output: parse_bytes(&self.max_output)
                .map_err(|m| Failure::usage(format!("--max-output: {m}")))?,
            max_log: parse_bytes(&self.max_log)
                .map_err(|m| Failure::usage(format!("--max-log: {m}")))?,
        })
    }
}

/// Runs `skillhost run`.
pub async fn run(global: &GlobalArgs, args: RunArgs) -> Result<(), Failure> {
    let limits = args.limits.parse()?;
    let mut host = global
        .open_host(one_at_a_time(limits), Connector::new(None))
        .await?;
    let manifest = &host.registry().get(&args.id)?.manifest;
    let input_json = read_input_arg(args.input.as_deref())?;
    // Input errors come before connection errors, whatever else is wrong.
    let input =
        skillhost_runtime::input::merge_cli_input(manifest, input_json.as_deref(), &args.params)
            .and_then(|input| skillhost_runtime::input::validate(manifest, input))
            .map_err(|e| {
                Failure::usage(e.0).with_hint(format!(
                    "`skillhost skills describe {}` lists the parameters",
                    manifest.id
                ))
            })?;
    let connection = match &args.connection {
        None => None,
        Some(name) => {
            let config = Config::locate_and_load(global.config.as_deref())?;
            let connection = config.connection(name)?.clone();
            // The store paces every API call of the (tenant, app) with every other process
            // sharing it, and keeps the skill's state (contract 0.2). Without it nothing is
            // sent: a call is never made unpaced.
            let state = global.state_store(Some(&config))?;
            GlobalArgs::pace_through(&state, host.connector()).await?;
            host.set_state(state);
            // Opened once there is a connection to audit, as before the crates were split.
            if let Some(path) = &args.audit_log {
                let log = AuditLog::open(path)
                    .map_err(|e| Failure::usage(format!("--audit-log {}: {e}", path.display())))?;
                host.connector().set_audit(log);
            }
            Some(connection)
        }
    };
    let prepared = host.prepare(&args.id, input, connection, limits)?;
    invoke_and_print(&host, prepared, args.output, args.csv_raw).await
}

/// The input of `--input`: inline JSON or `@file`.
fn read_input_arg(input: Option<&str>) -> Result<Option<String>, Failure> {
    match input {
        None => Ok(None),
        Some(arg) => match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map(Some)
                .map_err(|e| Failure::usage(format!("--input @{path}: cannot read the file: {e}"))),
            None => Ok(Some(arg.to_string())),
        },
    }
}

/// Prints a dataset's summary after its rows; with `committed`, the summary says whether the
/// run's state was saved.
fn finish_dataset(
    printer: RowPrinter,
    output: Output,
    committed: Option<bool>,
) -> std::io::Result<()> {
    let mut summary = output.into_value()?;
    if let Some(saved) = committed {
        note_commit(&mut summary, saved);
    }
    printer.finish_dataset(&summary)
}

/// Runs a prepared invocation and prints its output in `format`: rows as they arrive, then the
/// result or summary. Output goes through a bounded pipe, so a reader that stops reading cannot
/// hold the command past the invocation's deadline.
pub async fn invoke_and_print(
    host: &SkillHost,
    prepared: PreparedInvocation,
    format: OutputFormat,
    raw_csv: bool,
) -> Result<(), Failure> {
    let manifest = prepared.skill.manifest.clone();
    let limits = prepared.limits;
    let deadline = Instant::now() + limits.timeout;
    let (writer, pipe) = stdout_pipe(deadline, limits.max_output)
        .map_err(|e| Failure::other(format!("cannot start the output writer: {e}")))?;
    let printer = RowPrinter::new(
        format,
        manifest.columns.clone(),
        Box::new(writer),
        std::io::stdout().is_terminal(),
    )
    .raw_csv(raw_csv);
    let printer = Arc::new(Mutex::new(printer));
    let progress = (manifest.output == OutputKind::Dataset && std::io::stderr().is_terminal())
        .then(|| Progress::new(prepared.capabilities.connection.clone()));
    let sink = PrinterSink {
        printer: printer.clone(),
        progress,
    };
    let mut result = host.invoke(prepared, Box::new(sink)).await;
    // The invocation's store, and the sink's other handle with it, is gone once it returned.
    let printer = match Arc::try_unwrap(printer)
        .map_err(|_| Failure::other("internal error: the row printer is still in use"))
        .and_then(|p| {
            p.into_inner().map_err(|_| {
                Failure::other("internal error: the row printer failed while printing")
            })
        }) {
        Ok(printer) => printer,
        Err(failure) => {
            // Nothing was delivered for sure: the run's lock goes now, its state stays.
            if let Ok(invocation) = &mut result {
                std::mem::replace(&mut invocation.state, PendingState::none())
                    .abandon()
                    .await;
            }
            return Err(failure);
        }
    };
    let invocation = match result {
        Ok(invocation) => invocation,
        Err(failure) => {
            // The rows printed so far still reach the reader, within the deadline.
            let _ = printer.abandon();
            let _ = pipe.finish();
            return Err(failure);
        }
    };
    let state = invocation.state;
    let (delivered, committed) = match manifest.output {
        // A run that staged nothing prints as it always did: rows, then the summary.
        OutputKind::Dataset if state.is_empty() => {
            let printed = finish_dataset(printer, invocation.output, None);
            (printed.and(pipe.finish()), None)
        }
        OutputKind::Dataset => {
            let mut printer = printer;
            // Every row reaches stdout first: only then may the run's state (a cursor) move
            // on, and the summary printed after says whether it did.
            match printer.flush_rows().and_then(|()| pipe.sync()) {
                Ok(()) => {
                    let committed = commit_state(&manifest.id, state).await;
                    let noted = committed.as_ref().map(Result::is_ok);
                    let printed = finish_dataset(printer, invocation.output, noted);
                    (printed.and(pipe.finish()), committed)
                }
                Err(e) => {
                    // Not every row was delivered, so the state stays where it was.
                    state.abandon().await;
                    let _ = printer.abandon();
                    let _ = pipe.finish();
                    (Err(e), None)
                }
            }
        }
        OutputKind::Object => {
            let printed = printer.finish_object(invocation.output);
            // The pipe is finished whatever printing came to, so what was queued is not lost.
            let delivered = printed.and(pipe.finish());
            match delivered {
                // The whole result reached stdout: only now may the run's state move on.
                Ok(()) => return commit_state(&manifest.id, state).await.unwrap_or(Ok(())),
                Err(e) => {
                    // Not all of it was delivered, so the state stays where it was.
                    state.abandon().await;
                    (Err(e), None)
                }
            }
        }
    };
    let e = match (delivered, committed) {
        (Ok(()), None) => return Ok(()),
        (Ok(()), Some(outcome)) => return outcome,
        (Err(e), Some(outcome)) => {
            // The rows went out (and the state was settled); only the summary did not.
            outcome?;
            e
        }
        (Err(e), None) => e,
    };
    match e {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        e if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        e if e.kind() == std::io::ErrorKind::TimedOut => {
            Err(Violation::Deadline(limits.timeout).into_failure(&manifest.id))
        }
        e => match e.get_ref().and_then(|r| r.downcast_ref::<OutputFull>()) {
            Some(OutputFull(cap)) => Err(Violation::Output(*cap).into_failure(&manifest.id)),
            None => Err(Failure::other(format!("cannot write the output: {e}"))),
        },
    }
}

/// Commits a delivered run's state (`None`: the run staged nothing). A failure says the output
/// went out but the state did not move, so the next run delivers the same again (never skips).
async fn commit_state(id: &str, state: PendingState) -> Option<Result<(), Failure>> {
    if state.is_empty() {
        return None;
    }
    Some(match state.commit().await {
        Ok(committed) => {
            tracing::debug!(skill = id, writes = committed.writes, "state committed");
            Ok(())
        }
        Err(e) => {
            let reason = match e {
                StoreError::Unavailable(_) => Reason::Unavailable,
                StoreError::Limit(_) | StoreError::Invalid(_) => Reason::Internal,
                _ => Reason::Conflict,
            };
            Err(Failure::skill(format!(
                "skill `{id}` delivered its output, but its state was not saved: {e}"
            ))
            .with_hint(
                "the next run starts from the state before this one, so it delivers the same again",
            )
            .with_reason(reason))
        }
    })
}

/// The invocation's side of the printer: rows in, progress counted.
struct PrinterSink {
    printer: Arc<Mutex<RowPrinter>>,
    progress: Option<Progress>,
}

impl RowSink for PrinterSink {
    fn row(&mut self, row: Row) -> std::io::Result<()> {
        if let Some(progress) = &mut self.progress {
            progress.row();
        }
        match self.printer.lock() {
            Ok(mut printer) => printer.row(row),
            Err(_) => Err(std::io::Error::other("output printer poisoned")),
        }
    }
}
