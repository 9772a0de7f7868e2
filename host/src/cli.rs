//! The `skillhost` command line: parsing, and one function per command.
//!
//! Results go to stdout; diagnostics, progress and summaries of streamed formats to stderr.
//! Every failure becomes a [`Failure`] with its exit code (see [`crate::error::ExitCode`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::capabilities::Capabilities;
use crate::compile_cache::CompileCache;
use crate::connections::Config;
use crate::error::Failure;
use crate::manifest::OutputKind;
use crate::outbound::Connector;
use crate::output::{OutputFormat, RowPrinter};
use crate::registry::SkillRegistry;
use crate::sandbox::{Runtime, RuntimeOptions, SandboxLimits, parse_bytes, parse_duration};

/// Runs security-integration skills as sandboxed WebAssembly components.
///
/// A skill is a wasm component in a skills folder. skillhost loads it, validates the caller's
/// parameters against what it declares, and runs it in a sandbox bound to one connection: the
/// skill reaches that connection's API through the host, which holds the credentials, and
/// nothing else.
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

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file with the connections [default: $SKILLHOST_CONFIG, then ./skillhost.toml].
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// A folder of skill components (*.wasm). Repeatable. Replaces the default folders: the
    /// skills built by this checkout, then those in $SKILLHOST_SKILLS (colon-separated).
    #[arg(long = "skills-dir", global = true, value_name = "DIR")]
    pub skills_dirs: Vec<PathBuf>,

    /// Folder of precompiled components [default: $SKILLHOST_CACHE_DIR, $XDG_CACHE_HOME/skillhost
    /// or ~/.cache/skillhost].
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compile every component on every run instead of using the cache.
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// Log more to stderr (-v: debug, -vv: trace). SKILLHOST_LOG takes a tracing filter too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List and describe the skills found in the skills folders.
    #[command(subcommand)]
    Skills(SkillsCommand),
    /// Invoke a skill by ID.
    Run(RunArgs),
    /// List and check the configured connections.
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// Serve the built-in Defender XDR, Graph and Entra ID simulator on loopback.
    Simulate(crate::simulator::SimulateArgs),
    /// Run the detections skill against a built-in simulator and print its table: the main job,
    /// with nothing to configure.
    Demo(DemoArgs),
}

/// `skills` subcommands.
#[derive(Debug, Subcommand)]
pub enum SkillsCommand {
    /// ID, version and description of every loaded skill; refused files are reported on stderr.
    List,
    /// A skill's parameters and outputs, as JSON.
    Describe {
        /// The skill's ID.
        id: String,
    },
}

/// `connections` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Every connection with its tenant, cloud, api and endpoints; never a secret.
    List,
    /// Gets a token, checks its permission, makes one probe call, and says what to fix.
    Test {
        /// The connection's name.
        name: String,
    },
}

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

    /// Cap on the result plus emitted rows, such as 256M.
    #[arg(long, value_name = "SIZE", default_value = "256M")]
    pub max_output: String,
}

impl LimitArgs {
    fn parse(&self) -> Result<SandboxLimits, Failure> {
        Ok(SandboxLimits {
            max_memory: parse_bytes(&self.max_memory)
                .map_err(|m| Failure::usage(format!("--max-memory: {m}")))?,
            timeout: parse_duration(&self.timeout)
                .map_err(|m| Failure::usage(format!("--timeout: {m}")))?,
            max_output: parse_bytes(&self.max_output)
                .map_err(|m| Failure::usage(format!("--max-output: {m}")))?,
        })
    }
}

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

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Skills(SkillsCommand::List) => skills_list(&cli.global).await,
        Command::Skills(SkillsCommand::Describe { id }) => skills_describe(&cli.global, &id).await,
        Command::Run(args) => run_skill(&cli.global, args).await,
        Command::Connections(ConnectionsCommand::List) => connections_list(&cli.global),
        Command::Connections(ConnectionsCommand::Test { name }) => {
            crate::probe::connections_test(&cli.global, &name).await
        }
        Command::Simulate(args) => crate::simulator::serve(args).await,
        Command::Demo(args) => crate::demo::run(&cli.global, args).await,
    }
}

/// The skills folders in effect.
pub fn skills_dirs(global: &GlobalArgs) -> Vec<PathBuf> {
    if !global.skills_dirs.is_empty() {
        return global.skills_dirs.clone();
    }
    let mut dirs = vec![PathBuf::from(env!("SKILLHOST_BUILT_SKILLS"))];
    if let Some(extra) = std::env::var_os("SKILLHOST_SKILLS") {
        dirs.extend(std::env::split_paths(&extra));
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

fn compile_cache(global: &GlobalArgs) -> CompileCache {
    if global.no_cache {
        return CompileCache::disabled();
    }
    match global.cache_dir.clone().or_else(CompileCache::default_dir) {
        Some(dir) => CompileCache::open(dir),
        None => CompileCache::disabled(),
    }
}

/// Builds the runtime and scans the skills folders.
pub async fn load_registry(
    global: &GlobalArgs,
    options: RuntimeOptions,
) -> Result<(Runtime, SkillRegistry), Failure> {
    let runtime = Runtime::new(options)
        .map_err(|e| Failure::other(format!("cannot start the wasm engine: {e:#}")))?;
    let registry = SkillRegistry::scan(&runtime, compile_cache(global), &skills_dirs(global)).await;
    Ok((runtime, registry))
}

fn report_problems(registry: &SkillRegistry) {
    for problem in registry.problems() {
        eprintln!(
            "skillhost: skipped {}: {}",
            problem.path.display(),
            problem.message
        );
    }
}

async fn skills_list(global: &GlobalArgs) -> Result<(), Failure> {
    let (_runtime, registry) = load_registry(global, RuntimeOptions::default()).await?;
    report_problems(&registry);
    let skills: Vec<_> = registry.skills().collect();
    let id_width = skills
        .iter()
        .map(|s| s.manifest.id.len())
        .max()
        .unwrap_or(2)
        .max(2);
    let version_width = skills
        .iter()
        .map(|s| s.manifest.version.len())
        .max()
        .unwrap_or(7)
        .max(7);
    println!(
        "{:<id_width$}  {:<version_width$}  DESCRIPTION",
        "ID", "VERSION"
    );
    for skill in skills {
        let m = &skill.manifest;
        println!(
            "{:<id_width$}  {:<version_width$}  {}",
            m.id, m.version, m.description
        );
    }
    Ok(())
}

async fn skills_describe(global: &GlobalArgs, id: &str) -> Result<(), Failure> {
    let (_runtime, registry) = load_registry(global, RuntimeOptions::default()).await?;
    let skill = registry.get(id)?;
    let mut doc =
        serde_json::to_value(&skill.manifest).map_err(|e| Failure::other(e.to_string()))?;
    if let Value::Object(map) = &mut doc {
        map.insert("path".into(), json!(skill.path.display().to_string()));
    }
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(())
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

async fn run_skill(global: &GlobalArgs, args: RunArgs) -> Result<(), Failure> {
    let limits = args.limits.parse()?;
    let options = RuntimeOptions {
        pooling: false,
        limits,
    };
    let (runtime, registry) = load_registry(global, options).await?;
    let manifest = registry.get(&args.id)?.manifest.clone();

    let input_json = read_input_arg(args.input.as_deref())?;
    let input = crate::input::merge_cli_input(&manifest, input_json.as_deref(), &args.params)
        .and_then(|input| crate::input::validate(&manifest, input))
        .map_err(|e| {
            Failure::usage(e.0).with_hint(format!(
                "`skillhost skills describe {}` lists the parameters",
                manifest.id
            ))
        })?;

    let capabilities = match &args.connection {
        None if !manifest.services.is_empty() => {
            return Err(Failure::usage(format!(
                "skill `{}` calls {} and needs a connection: pass --connection NAME",
                manifest.id,
                manifest.services.join(", ")
            )));
        }
        None => Capabilities::none(),
        Some(name) => {
            let config = Config::locate_and_load(global.config.as_deref())?;
            let connection = config.connection(name)?.clone();
            let audit =
                match &args.audit_log {
                    Some(path) => Some(crate::audit::AuditLog::open(path).map_err(|e| {
                        Failure::usage(format!("--audit-log {}: {e}", path.display()))
                    })?),
                    None => None,
                };
            let connector = Connector::new(audit);
            let bound = connector
                .bind(connection, Instant::now() + limits.timeout)
                .map_err(Failure::usage)?;
            Capabilities::bound(bound)
        }
    };

    let skill = registry.load(&runtime, &args.id)?;
    invoke_and_print(&runtime, &skill, &input, capabilities, args.output, limits).await
}

/// Invokes a loaded skill and prints its output in `format`.
pub async fn invoke_and_print(
    runtime: &Runtime,
    skill: &crate::sandbox::LoadedSkill,
    input: &serde_json::Map<String, Value>,
    capabilities: Capabilities,
    format: OutputFormat,
    limits: SandboxLimits,
) -> Result<(), Failure> {
    let manifest = &skill.manifest;
    let printer = Arc::new(std::sync::Mutex::new(Some(RowPrinter::stdout(
        format,
        manifest.columns.clone(),
    ))));
    let progress = (manifest.output == OutputKind::Dataset && std::io::stderr().is_terminal())
        .then(|| Progress::new(capabilities.connection.clone()));
    let sink = SharedPrinter {
        printer: printer.clone(),
        progress,
    };
    let result = runtime
        .invoke(skill, input, capabilities, Box::new(sink), limits)
        .await;
    let printer = printer.lock().ok().and_then(|mut p| p.take());
    let value = result?.output;
    let Some(printer) = printer else {
        return Err(Failure::other("output printer lost"));
    };
    let printed = match manifest.output {
        OutputKind::Dataset => printer.finish_dataset(&value),
        OutputKind::Object => printer.finish_object(value),
    };
    match printed {
        Ok(()) => Ok(()),
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::other(format!("cannot write the output: {e}"))),
    }
}

/// Lets the sandbox stream rows into a printer the caller gets back afterwards.
struct SharedPrinter {
    printer: Arc<std::sync::Mutex<Option<RowPrinter>>>,
    progress: Option<Progress>,
}

impl crate::capabilities::RowSink for SharedPrinter {
    fn row(&mut self, row: serde_json::Map<String, Value>) -> std::io::Result<()> {
        if let Some(progress) = &mut self.progress {
            progress.row();
        }
        match self.printer.lock() {
            Ok(mut guard) => match guard.as_mut() {
                Some(printer) => printer.row(row),
                None => Err(std::io::Error::other("output closed")),
            },
            Err(_) => Err(std::io::Error::other("output printer poisoned")),
        }
    }
}

/// A one-line progress report on a terminal's stderr while a dataset streams: requests sent and
/// rows received, redrawn at most four times a second and erased at the end.
struct Progress {
    connection: Option<Arc<crate::outbound::BoundConnection>>,
    rows: u64,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(connection: Option<Arc<crate::outbound::BoundConnection>>) -> Self {
        Progress {
            connection,
            rows: 0,
            last: Instant::now(),
            shown: false,
        }
    }

    fn row(&mut self) {
        self.rows += 1;
        if self.last.elapsed() < std::time::Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let requests = self.connection.as_ref().map_or(0, |c| c.requests_sent());
        eprint!(
            "\r\x1b[Kskillhost: {requests} requests, {} rows…",
            self.rows
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}

fn connections_list(global: &GlobalArgs) -> Result<(), Failure> {
    let config = Config::locate_and_load(global.config.as_deref())?;
    let mut list = Vec::new();
    for c in config.connections.values() {
        let secret = match &c.client_secret {
            crate::connections::SecretSource::Env(var) => json!({"env": var}),
            crate::connections::SecretSource::File(path) => {
                json!({"file": path.display().to_string()})
            }
        };
        list.push(json!({
            "name": c.name,
            "tenant": c.tenant,
            "tenant_id": c.tenant_id,
            "client_id": c.client_id,
            "client_secret": secret,
            "cloud": c.cloud.name(),
            "api": c.api.service(),
            "permission": c.api.permission(),
            "login": c.login_base(),
            "services": c.services().iter().map(|s| json!({"name": s, "base": c.service_base(s)})).collect::<Vec<_>>(),
            "remote_agent": c.remote_agent,
            "pacing": {"per_minute": c.pacing.per_minute, "per_hour": c.pacing.per_hour},
        }));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&list).unwrap_or_default()
    );
    Ok(())
}
