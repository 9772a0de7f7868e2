//! `skillhost demo`: the main job with nothing to set up. Starts the built-in simulator on a free
//! loopback port, binds a connection to it, and runs the detections skill, printing its rows.

use clap::Args;
use skillhost_contract::error::Failure;
use skillhost_runtime::limits::SandboxLimits;
use skillhost_simulator::{SecretRef, Simulator, SimulatorConfig};
use skillhost_upstream::connections::Config;
use skillhost_upstream::outbound::Connector;

use crate::commands::run::invoke_and_print;
use crate::global::{GlobalArgs, one_at_a_time};
use crate::output::OutputFormat;

/// The skill the demo runs.
pub const DEMO_SKILL: &str = "list_microsoft_defender_incidents_for_detections";

/// `demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many incidents the simulator holds.
    #[arg(long, default_value_t = 12)]
    pub incidents: usize,
    /// Which API the demo connection speaks.
    #[arg(long, value_enum, default_value = "defender")]
    pub api: DemoApi,
    /// How to print the rows.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// API flavours for the demo.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DemoApi {
    /// Defender XDR incidents API.
    Defender,
    /// Microsoft Graph security API.
    Graph,
}

/// Runs the demo.
pub async fn run(global: &GlobalArgs, args: DemoArgs) -> Result<(), Failure> {
    let config = SimulatorConfig {
        incidents: args.incidents,
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(config, "127.0.0.1:0")
        .map_err(|e| Failure::other(format!("cannot start the simulator on loopback: {e}")))?;
    // The connection reads the simulator's secret from a file like any other connection could;
    // the file is private and removed when the demo ends.
    let secret = SecretFile::write(skillhost_simulator::DEFAULT_CLIENT_SECRET)
        .map_err(|e| Failure::other(format!("cannot write the demo's secret file: {e}")))?;
    let api = match args.api {
        DemoApi::Defender => "defender",
        DemoApi::Graph => "graph",
    };
    let toml = sim.connection_toml("demo", "demo", api, SecretRef::File(&secret.0), "");
    let connection = Config::parse(&toml)
        .map_err(|e| Failure::other(format!("the demo's connection does not parse: {e}")))?
        .connection("demo")?
        .clone();
    let options = one_at_a_time(SandboxLimits::default());
    let host = global.open_host(options, Connector::new(None)).await?;
    let prepared = host.prepare(
        DEMO_SKILL,
        serde_json::Map::new(),
        Some(connection),
        options.limits,
    )?;
    say!(
        "skillhost demo: {DEMO_SKILL} against the built-in simulator at {} ({} incidents)",
        sim.base_url(),
        args.incidents
    );
    invoke_and_print(&host, prepared, args.output, false).await
}

/// A private temporary file holding the simulator's secret, removed on drop.
struct SecretFile(std::path::PathBuf);

impl SecretFile {
    fn write(secret: &str) -> std::io::Result<Self> {
        use std::io::Write;
        let path =
            std::env::temp_dir().join(format!("skillhost-demo-{}.secret", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&path)?.write_all(secret.as_bytes())?;
        Ok(SecretFile(path))
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
