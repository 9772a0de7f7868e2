//! `skillhost simulate`: the built-in Entra ID + Defender XDR + Graph stand-in, on loopback, until
//! interrupted.

use std::time::Duration;

use clap::Args;
use skillhost_contract::error::Failure;
use skillhost_simulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, Detail, Faults, Live,
    SimulatorConfig,
};

/// `skillhost simulate` arguments.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on (loopback only unless you mean it).
    #[arg(long, default_value = "127.0.0.1:8400")]
    pub listen: String,
    /// Incidents to generate.
    #[arg(long, default_value_t = 12)]
    pub incidents: usize,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Accepted directory (tenant) id.
    #[arg(long, default_value = DEFAULT_TENANT_ID)]
    pub tenant_id: String,
    /// Accepted application (client) id.
    #[arg(long, default_value = DEFAULT_CLIENT_ID)]
    pub client_id: String,
    /// Environment variable holding the accepted client secret [default secret:
    /// simulated-client-secret].
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
    /// Roles granted to tokens (comma-separated); drop one to see a 403.
    #[arg(
        long,
        default_value = "Incident.Read.All,SecurityIncident.Read.All",
        value_delimiter = ','
    )]
    pub roles: Vec<String>,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 3599)]
    pub token_lifetime: u64,
    /// Do not enforce the published rate limits.
    #[arg(long)]
    pub no_rate_limits: bool,
    /// Divide the rate-limit windows by this factor (60 makes a minute last one second).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Inject a fault: throttle=N, retry-after=SECS, error=N|always, slow=MS, truncate=N,
    /// revoke-after=N, churn, deny-tokens, cut-every=N, stall-every=N, reset-every=N,
    /// mix=PERCENT. Repeatable.
    #[arg(long = "fault", value_name = "FAULT")]
    pub faults: Vec<String>,
    /// How much each incident carries: `compact` (up to 4 alerts, about 2 KB) or `realistic`
    /// (3 to 12 alerts with their entities or evidence and comments, 7 to 10 KB).
    #[arg(long, default_value = "compact", value_parser = parse_detail)]
    pub detail: Detail,
    /// Create or update one incident every MS milliseconds while serving (a live tenant).
    #[arg(long, value_name = "MS")]
    pub live_every: Option<u64>,
    /// With --live-every: a new version becomes visible MS milliseconds after its
    /// lastUpdateTime, as the service indexes updates with a lag.
    #[arg(long, value_name = "MS", default_value_t = 0, requires = "live_every")]
    pub visibility_delay: u64,
}

fn parse_detail(text: &str) -> Result<Detail, String> {
    match text {
        "compact" => Ok(Detail::Compact),
        "realistic" => Ok(Detail::Realistic),
        _ => Err("expected compact or realistic".to_string()),
    }
}

/// Runs `skillhost simulate` until interrupted.
pub async fn run(args: SimulateArgs) -> Result<(), Failure> {
    let faults = Faults::parse(&args.faults).map_err(Failure::usage)?;
    let secret = match &args.client_secret_env {
        Some(var) => std::env::var(var)
            .map_err(|_| Failure::usage(format!("--client-secret-env: {var} is not set")))?,
        None => DEFAULT_CLIENT_SECRET.to_string(),
    };
    if args.time_scale.is_nan() || args.time_scale <= 0.0 {
        return Err(Failure::usage("--time-scale must be positive"));
    }
    let config = SimulatorConfig {
        incidents: args.incidents,
        seed: args.seed,
        anchor: None,
        tenant_id: args.tenant_id,
        client_id: args.client_id,
        client_secret: secret,
        roles: args.roles,
        token_lifetime: Duration::from_secs(args.token_lifetime),
        rate_limits: !args.no_rate_limits,
        time_scale: args.time_scale,
        faults,
        detail: args.detail,
        live: args.live_every.map(|every| Live {
            every: Duration::from_millis(every.max(1)),
            visibility_delay: Duration::from_millis(args.visibility_delay),
        }),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| Failure::usage(format!("--listen {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::other(e.to_string()))?;
    say!(
        "skillhost simulator on http://{addr}: {} incidents (seed {}), tenant_id {}, client_id {}; \
         point a connection's endpoints.login/defender/graph at http://{addr}",
        config.incidents,
        config.seed,
        config.tenant_id,
        config.client_id
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    skillhost_simulator::serve(listener, config, shutdown)
        .await
        .map_err(|e| Failure::other(format!("simulator stopped: {e}")))
}
