//! `skillhost demo`: the main job with nothing to set up. Starts the built-in simulator on a free
//! loopback port, binds a connection to it, and runs the detections skill, printing its rows.

use std::time::Instant;

use crate::capabilities::Capabilities;
use crate::cli::{DemoApi, DemoArgs, GlobalArgs, invoke_and_print, load_registry};
use crate::clouds::{Api, Cloud};
use crate::connections::{Connection, Endpoints, Pacing, Retry, SecretSource};
use crate::error::Failure;
use crate::outbound::Connector;
use crate::sandbox::RuntimeOptions;
use crate::simulator::{self, Simulator, SimulatorConfig};

/// The skill the demo runs.
pub const DEMO_SKILL: &str = "list_microsoft_defender_incidents_for_detections";
/// The environment variable the demo connection reads its (simulated) secret from.
const DEMO_SECRET_VAR: &str = "SKILLHOST_DEMO_SECRET";

/// Runs the demo.
pub async fn run(global: &GlobalArgs, args: DemoArgs) -> Result<(), Failure> {
    let config = SimulatorConfig {
        incidents: args.incidents,
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(config, "127.0.0.1:0")
        .map_err(|e| Failure::other(format!("cannot start the simulator on loopback: {e}")))?;
    // The connection reads its secret from the environment like any other; the demo sets it for
    // its own process only.
    // SAFETY: single-threaded at this point of the CLI (the simulator's thread never reads the
    // environment), so no concurrent `getenv` can observe a torn write.
    unsafe { std::env::set_var(DEMO_SECRET_VAR, simulator::DEFAULT_CLIENT_SECRET) };
    let base = sim.base_url();
    let connection = Connection {
        name: "demo".into(),
        tenant: "demo".into(),
        tenant_id: simulator::DEFAULT_TENANT_ID.into(),
        client_id: simulator::DEFAULT_CLIENT_ID.into(),
        client_secret: SecretSource::Env(DEMO_SECRET_VAR.into()),
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
