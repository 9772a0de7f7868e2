//! The `skillhost` binary: parses the command line, sets up logging, runs the command, and turns
//! its outcome into an exit code.
//!
//! The host itself lives in library crates, each with one job (see `docs/ARCHITECTURE.md`):
//! `skillhost-contract` (the contract and its per-version bindings), `skillhost-upstream`
//! (connections, providers, tokens, egress, pacing, outbound HTTP, audit), `skillhost-runtime`
//! (registry, compile cache, sandbox, capabilities) and `skillhost-simulator`. This crate is the
//! command line: [`cli`] parses it and hands each command to its module under [`commands`].

#![warn(missing_docs)]

/// `eprintln!` that never panics nor blocks: it goes through the lossy stderr queue.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!($crate::errlog::StderrWriter, $($arg)*);
    }};
}

mod cli;
mod commands;
mod errlog;
mod global;
mod output;
mod pipe;
mod progress;
mod serve;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.global.verbose);
    // A server runs one worker per core. A single invocation runs its guest on this thread and
    // reads answers on one worker meanwhile (bodies are read ahead of the guest, and the next
    // page asked for while it parses this one).
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if !matches!(cli.command, cli::Command::Serve(_)) {
        builder.worker_threads(1);
    }
    let runtime = builder.enable_all().build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            say!("skillhost: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    std::process::ExitCode::from(last_word(runtime.block_on(cli::run(cli))))
}

/// How the process ends on `outcome`: a failure is said on stderr, the diagnostics get a second
/// to reach a reader (one that stopped reading gets none), and the exit code is returned. `main`
/// ends so, and so does the watchdog's report of a skill past its deadline
/// (`global::end_past_deadline`).
fn last_word(outcome: Result<(), skillhost_contract::error::Failure>) -> u8 {
    let code = match outcome {
        Ok(()) => 0,
        Err(failure) => {
            say!("skillhost: {}", failure.to_safe_string());
            failure.code as u8
        }
    };
    errlog::drain(std::time::Duration::from_secs(1));
    code
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug,hyper=info,reqwest=info,cranelift=info,wasmtime=info,h2=info",
        _ => "trace",
    };
    let filter = std::env::var("SKILLHOST_LOG").unwrap_or_else(|_| default.to_string());
    tracing_subscriber::fmt()
        .with_writer(|| errlog::StderrWriter)
        // Colours only for a terminal: a log file or a pipe gets no escape sequences at all.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .without_time()
        .init();
}
