//! `skillhost demo`: the main job with nothing to set up. Starts the built-in simulator on a free
//! loopback port, binds a connection to it, and runs the detections skill, printing its rows.

use std::time::Instant;

use crate::capabilities::Capabilities;
use crate::cli::{DemoApi, DemoArgs, GlobalArgs, invoke_and_print, load_registry};
use crate::clouds::{Api, Cloud};
use crate::connections::{
    Connection, DEFAULT_MAX_RESPONSE_BYTES, Endpoints, Pacing, Retry, SecretSource,
};
use crate::error::Failure;
use crate::outbound::Connector;
use crate::sandbox::RuntimeOptions;
use crate::simulator::{self, Simulator, SimulatorConfig};

/// The skill the demo runs.
pub const DEMO_SKILL: &str = "list_microsoft_defender_incidents_for_detections";

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
    let secret = SecretFile::write(simulator::DEFAULT_CLIENT_SECRET)
        .map_err(|e| Failure::other(format!("cannot write the demo's secret file: {e}")))?;
    let base = sim.base_url();
    let connection = Connection {
        name: "demo".into(),
        tenant: "demo".into(),
        tenant_id: simulator::DEFAULT_TENANT_ID.into(),
        client_id: simulator::DEFAULT_CLIENT_ID.into(),
        client_secret: SecretSource::File(secret.0.clone()),
        cloud: Cloud::Commercial,
        api: match args.api {
            DemoApi::Defender => Api::Defender,
            DemoApi::Graph => Api::Graph,
        },
        remote_agent: None,
        endpoints: Endpoints {
            login: Some(base.clone()),
            defender: Some(base.clone()),
            graph: Some(base.clone()),
        },
        pacing: Pacing::default(),
        retry: Retry::default(),
        max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
    };
    let options = RuntimeOptions::default();
    let (runtime, registry) = load_registry(global, options).await?;
    let skill = registry.load(&runtime, DEMO_SKILL)?;
    let input = crate::input::validate(&skill.manifest, serde_json::Map::new())
        .map_err(|e| Failure::other(e.0))?;
    let bound = Connector::new(None)
        .bind(connection, Instant::now() + options.limits.timeout)
        .map_err(Failure::other)?;
    eprintln!(
        "skillhost demo: {DEMO_SKILL} against the built-in simulator at {base} ({} incidents)",
        args.incidents
    );
    invoke_and_print(
        &runtime,
        &skill,
        &input,
        Capabilities::bound(bound),
        args.output,
        options.limits,
    )
    .await
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
