//! The `skillhost` command line: the commands, and which module runs each.
//!
//! Results go to stdout; diagnostics, progress and summaries of streamed formats to stderr.
//! Every failure becomes a [`Failure`] with its exit code.

use clap::{Parser, Subcommand};
use skillhost_contract::error::Failure;

use crate::commands;
use crate::global::GlobalArgs;

/// Runs security-integration skills as sandboxed WebAssembly components.
///
/// A skill is a wasm component: the Defender skills are built in, and more are dropped into a
/// skills folder. skillhost loads it, validates the caller's parameters against what it
/// declares, and runs it in a sandbox bound to one connection: the skill reaches that
/// connection's API through the host, which holds the credentials, and nothing else.
///
/// Exit codes: 0 ok, 2 invalid input or usage, 3 skill or upstream error, 4 sandbox violation
/// (a limit hit or a capability denied), 1 anything else.
#[derive(Debug, Parser)]
#[command(name = "skillhost", version, max_term_width = 100)]
pub struct Cli {
    /// Flags every command accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, describe and check skills: those of the skills folders, or one component file.
    #[command(subcommand)]
    Skills(commands::skills::SkillsCommand),
    /// Invoke a skill by ID.
    Run(commands::run::RunArgs),
    /// Create a skill project (Rust, Python or JavaScript) that builds, checks and runs as it is.
    New(commands::new::NewArgs),
    /// Serve invocations over HTTP to the callers of the config, many tenants side by side.
    Serve(crate::serve::ServeArgs),
    /// List and check the configured connections.
    #[command(subcommand)]
    Connections(commands::connections::ConnectionsCommand),
    /// Inspect and reset what skills keep between runs (cursors of incremental runs).
    #[command(subcommand)]
    State(commands::state::StateCommand),
    /// Serve the built-in Defender XDR, Graph and Entra ID simulator on loopback.
    #[cfg(feature = "simulator")]
    Simulate(commands::simulate::SimulateArgs),
    /// Run the detections skill against a built-in simulator and print its table: the main job,
    /// with nothing to configure.
    #[cfg(feature = "simulator")]
    Demo(commands::demo::DemoArgs),
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Skills(command) => commands::skills::run(&cli.global, command).await,
        Command::Run(args) => commands::run::run(&cli.global, args).await,
        Command::New(args) => commands::new::run(args),
        Command::Serve(args) => crate::serve::run(&cli.global, args).await,
        Command::Connections(command) => commands::connections::run(&cli.global, command).await,
        Command::State(command) => commands::state::run(&cli.global, command).await,
        #[cfg(feature = "simulator")]
        Command::Simulate(args) => commands::simulate::run(args).await,
        #[cfg(feature = "simulator")]
        Command::Demo(args) => commands::demo::run(&cli.global, args).await,
    }
}
