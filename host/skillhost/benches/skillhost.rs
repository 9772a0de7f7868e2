//! The benchmark suite of BENCHMARKS.md: each figure is measured in the same run as the baseline
//! it is compared with. `cargo bench -p skillhost --bench skillhost` measures; `-- --quick` runs
//! every path once with tiny inputs (CI does, so the paths cannot rot) and asserts no time;
//! `-- languages` measures only the Python example against its Rust twin, `-- incremental` only
//! the incremental run that finds nothing new against a plain run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use skillhost_runtime::capabilities::{Capabilities, CollectRows, RowSink};
use skillhost_runtime::compile_cache::CompileCache;
use skillhost_runtime::host::SkillHost;
use skillhost_runtime::limits::SandboxLimits;
use skillhost_runtime::registry::{SkillRegistry, SkillSource};
use skillhost_runtime::sandbox::{LoadedSkill, Preemption, Runtime, RuntimeOptions};
use skillhost_simulator::{self as simulator, SecretRef, Simulator, SimulatorConfig};
use skillhost_testkit::TempDir;
use skillhost_upstream::connections::Config;
use skillhost_upstream::outbound::Connector;

#[path = "skillhost/incremental.rs"]
mod incremental;
#[path = "skillhost/serve.rs"]
mod serve;
#[path = "skillhost/wire.rs"]
mod wire;

const SECRET_VAR: &str = "SKILLHOST_BENCH_SECRET";

/// A connection's pacing raised far above the published limit, for rows that measure something
/// else (the runs of a row share one store, and so one budget).
const UNPACED: &str = "[connections.sim.pacing]\nper_minute = 1000000\nper_hour = 10000000";

struct Sizes {
    serve: serve::ServeSizes,
    noop_iterations: usize,
    cli_runs: usize,
    normalize_incidents: usize,
    normalize_repeats: usize,
    memory_points: &'static [usize],
    pacing_incidents: usize,
    wire_incidents: usize,
    wire_runs: usize,
    incremental_incidents: usize,
    incremental_runs: usize,
    /// Warm runs of each language's skill; 0 leaves the languages out (the Python build alone
    /// takes 10 s and its first run seconds more).
    language_runs: usize,
}

const FULL: Sizes = Sizes {
    serve: serve::ServeSizes {
        load: Duration::from_secs(5),
        gets: 300,
        cli_runs: 20,
        in_flight: 8,
    },
    noop_iterations: 5000,
    cli_runs: 40,
    normalize_incidents: 10_000,
    normalize_repeats: 5,
    memory_points: &[100, 1_000, 10_000],
    pacing_incidents: 5_000,
    wire_incidents: 1_900,
    wire_runs: 11,
    incremental_incidents: 2_000,
    incremental_runs: 9,
    language_runs: 20,
};

const QUICK: Sizes = Sizes {
    serve: serve::ServeSizes {
        load: Duration::from_millis(100),
        gets: 2,
        cli_runs: 1,
        in_flight: 2,
    },
    noop_iterations: 3,
    cli_runs: 1,
    normalize_incidents: 20,
    normalize_repeats: 1,
    memory_points: &[100, 300],
    pacing_incidents: 60,
    wire_incidents: 30,
    wire_runs: 1,
    incremental_incidents: 30,
    incremental_runs: 1,
    language_runs: 0,
};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn percentile(mut samples: Vec<Duration>, p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p) as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Discard;

impl RowSink for Discard {
    fn row(&mut self, _row: skillhost_runtime::capabilities::emit::Row) -> std::io::Result<()> {
        Ok(())
    }
}

async fn load(runtime: &Runtime, dir: &Path, id: &str) -> LoadedSkill {
    let registry =
        SkillRegistry::scan(runtime, CompileCache::disabled(), &[dir.to_path_buf()]).await;
    registry.load(runtime, id).expect("load skill")
}

/// Fresh-Store instantiate + invoke of a skill that does nothing.
async fn noop(sizes: &Sizes, pooling: bool) -> (Duration, Duration) {
    let dir = TempDir::new("bench-noop").with_components(&["noop"]);
    let runtime = Runtime::new(RuntimeOptions {
        pooling,
        pool_instances: 0,
        limits: SandboxLimits::default(),
        preemption: Preemption::Epoch,
    })
    .expect("runtime");
    let skill = load(&runtime, dir.path(), "noop").await;
    let input = Map::new();
    let limits = runtime.limits();
    let invoke = || async {
        let started = Instant::now();
        runtime
            .invoke(
                &skill,
                &input,
                Capabilities::none(),
                Box::new(Discard),
                limits,
            )
            .await
            .expect("noop");
        started.elapsed()
    };
    for _ in 0..sizes.noop_iterations.min(200) {
        invoke().await;
    }
    let mut samples = Vec::with_capacity(sizes.noop_iterations);
    for _ in 0..sizes.noop_iterations {
        samples.push(invoke().await);
    }
    (median(samples.clone()), percentile(samples, 0.9))
}

fn write_config(dir: &Path, sim: &Simulator, extra: &str) -> String {
    let path = dir.join("skillhost.toml");
    let text = sim.connection_toml(
        "sim",
        "bench",
        "defender",
        SecretRef::Env(SECRET_VAR),
        extra,
    );
    std::fs::write(&path, text).expect("config");
    path.display().to_string()
}

/// `skillhost --config CONFIG --cache-dir CACHE`, with the simulator's client secret and a
/// store of the bench's own in CACHE (its pacing, raised or not, and state).
fn skillhost(config: impl AsRef<std::ffi::OsStr>, cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skillhost"));
    cmd.arg("--config")
        .arg(config)
        .arg("--cache-dir")
        .arg(cache)
        .env(SECRET_VAR, simulator::DEFAULT_CLIENT_SECRET)
        .env(
            "SKILLHOST_STATE",
            format!("sqlite:{}", cache.join("state.db").display()),
        );
    cmd
}

fn timed(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    let elapsed = started.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    elapsed
}

/// Whether `curl` runs here (the baselines of two rows are curl processes).
fn curl_available() -> bool {
    Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The token request of the Defender API to `sim`, as curl sends it: the URL and the form.
fn token_request(sim: &Simulator) -> (String, String) {
    (
        format!(
            "{}/{}/oauth2/v2.0/token",
            sim.base_url(),
            simulator::DEFAULT_TENANT_ID
        ),
        format!(
            "client_id={}&client_secret={}&scope=https%3A%2F%2Fapi.security.microsoft.com%2F.default&grant_type=client_credentials",
            simulator::DEFAULT_CLIENT_ID,
            simulator::DEFAULT_CLIENT_SECRET
        ),
    )
}

/// The CLI's `get` against two curl calls (token, then GET) on the same simulator.
fn cli_against_curl(sizes: &Sizes) -> (Duration, Option<Duration>) {
    let sim = Simulator::start(
        SimulatorConfig {
            rate_limits: false,
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0",
    )
    .expect("sim");
    let dir = TempDir::new("bench-cli");
    let config = write_config(dir.path(), &sim, UNPACED);
    let cache = dir.path().join("cache");
    let cli = || {
        let mut cmd = skillhost(&config, &cache);
        cmd.args([
            "run",
            "get_microsoft_defender_incident",
            "-c",
            "sim",
            "-p",
            "incident_id=100003",
        ]);
        cmd
    };
    timed(&mut cli()); // warms the compile cache
    let cli_median = median((0..sizes.cli_runs).map(|_| timed(&mut cli())).collect());

    if !curl_available() {
        return (cli_median, None);
    }
    let base = sim.base_url();
    let (token_url, form) = token_request(&sim);
    let pair = || {
        let started = Instant::now();
        let out = Command::new("curl")
            .args(["-s", "-X", "POST", &token_url, "-d", &form])
            .output()
            .expect("curl");
        let token: Value = serde_json::from_slice(&out.stdout).expect("token JSON");
        let bearer = format!(
            "Authorization: Bearer {}",
            token["access_token"].as_str().expect("token")
        );
        let get = Command::new("curl")
            .args([
                "-s",
                "-f",
                "-H",
                &bearer,
                &format!("{base}/api/incidents/100003"),
            ])
            .output()
            .expect("curl");
        assert!(get.status.success());
        started.elapsed()
    };
    pair();
    let curl_median = median((0..sizes.cli_runs).map(|_| pair()).collect());
    (cli_median, Some(curl_median))
}

/// The normalization of incidents × 5 alerts in the wasm skill and natively: best of N.
async fn normalization(sizes: &Sizes) -> (Duration, Duration, u64) {
    let dir = TempDir::new("bench-normalize").with_components(&["normalize-bench"]);
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let skill = load(&runtime, dir.path(), "normalize-bench").await;
    let input = json!({"incidents": sizes.normalize_incidents, "alerts": 5});
    let limits = SandboxLimits {
        max_memory: 256 << 20,
        timeout: Duration::from_secs(300),
        ..SandboxLimits::default()
    };
    let mut wasm = Vec::new();
    let mut rows = 0;
    for _ in 0..sizes.normalize_repeats {
        let out = runtime
            .invoke(
                &skill,
                input.as_object().expect("object"),
                Capabilities::none(),
                Box::new(Discard),
                limits,
            )
            .await
            .expect("normalize-bench")
            .output
            .into_value()
            .expect("a summary");
        wasm.push(Duration::from_nanos(out["nanos"].as_u64().expect("nanos")));
        rows = out["rows"].as_u64().expect("rows");
    }
    let page = defender::workload::page(5);
    let mut native = Vec::new();
    for _ in 0..sizes.normalize_repeats {
        let started = Instant::now();
        let (native_rows, _) = std::hint::black_box(defender::workload::normalize(
            &page,
            sizes.normalize_incidents,
        ));
        native.push(started.elapsed());
        assert_eq!(native_rows, rows, "the two builds did the same work");
    }
    (
        wasm.into_iter().min().expect("sample"),
        native.into_iter().min().expect("sample"),
        rows,
    )
}

fn in_process_connection(
    sim: &Simulator,
    dir: &Path,
    extra: &str,
) -> skillhost_upstream::connections::Connection {
    // The secret is read from a private file, not from the environment of this process.
    let secret = dir.join("client-secret");
    std::fs::write(&secret, simulator::DEFAULT_CLIENT_SECRET).expect("secret");
    let text = sim.connection_toml("sim", "bench", "defender", SecretRef::File(&secret), extra);
    let config = Config::parse(&text).expect("config");
    config.connection("sim").expect("connection").clone()
}

/// Runs the detections skill in process against `sim` with `input`, the connection's extra
/// settings `extra`; returns the invocation and the time it took (loading excluded).
async fn detections(
    sim: &Simulator,
    extra: &str,
    input: Value,
    rows: Box<dyn RowSink>,
) -> (skillhost_runtime::sandbox::Invocation, Duration) {
    let dir = TempDir::new("bench-detections");
    let connection = in_process_connection(sim, dir.path(), extra);
    let host = SkillHost::open(
        RuntimeOptions::default(),
        CompileCache::disabled(),
        vec![SkillSource::Folder(env!("SKILLHOST_BUILT_SKILLS").into())],
        Connector::new(None),
    )
    .await
    .expect("host");
    let limits = SandboxLimits {
        timeout: Duration::from_secs(600),
        ..SandboxLimits::default()
    };
    let input = input.as_object().expect("object").clone();
    let prepared = host
        .prepare(
            "list_microsoft_defender_incidents_for_detections",
            input,
            Some(connection),
            limits,
        )
        .expect("prepare");
    let started = Instant::now();
    let done = host.invoke(prepared, rows).await.expect("detections");
    (done, started.elapsed())
}

/// Peak guest memory of the detections skill at `incidents`.
async fn detections_memory(incidents: usize) -> usize {
    let sim = Simulator::start(
        SimulatorConfig {
            incidents,
            rate_limits: false,
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0",
    )
    .expect("sim");
    let (done, _) = detections(&sim, UNPACED, json!({}), Box::new(CollectRows::default())).await;
    assert_eq!(
        done.output.into_value().unwrap()["incidents"],
        json!(incidents)
    );
    done.peak_memory
}

/// Pulls `incidents` at 50 calls per (scaled) minute; returns (calls, elapsed, allowed rate per
/// second, 429s seen).
async fn pacing(sizes: &Sizes) -> (u64, Duration, f64, u64) {
    let scale = 120.0;
    let config = SimulatorConfig {
        incidents: sizes.pacing_incidents,
        time_scale: scale,
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(config, "127.0.0.1:0").expect("sim");
    let paced = format!("[connections.sim.pacing]\nper_minute = 50\ntime_scale = {scale:.1}");
    let (_, elapsed) = detections(&sim, &paced, json!({"page_size": 10}), Box::new(Discard)).await;
    let allowed_per_second = 50.0 / (60.0 / scale);
    (
        sim.stats().calls(),
        elapsed,
        allowed_per_second,
        sim.stats().throttled.load(Ordering::SeqCst),
    )
}

/// First and warm CLI runs of one skill: the first with an empty compile cache (compile,
/// describe, run), the warm ones with it filled (median).
struct LanguageFigures {
    first: Duration,
    warm: Duration,
    size: u64,
}

/// The example Python skill against its Rust twin (`sample-incidents`), the same calls on the
/// same simulator, each through the CLI. `None` when componentize-py is not installed.
fn python_against_rust(sizes: &Sizes) -> Option<(LanguageFigures, LanguageFigures)> {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/python/sample_incidents");
    let python = TempDir::new("bench-python");
    let built = Command::new("componentize-py")
        .args([
            "-d",
            "../../../wit/skill@0.1.0",
            "-w",
            "skill",
            "componentize",
        ])
        .args(["-p", ".", "-p", "../../../sdk/python", "app", "-o"])
        .arg(python.path().join("sample_incidents_py.wasm"))
        .current_dir(&example)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !built.is_ok_and(|s| s.success()) {
        return None;
    }
    let rust = TempDir::new("bench-rust").with_components(&["sample-incidents"]);
    let sim = Simulator::start(
        SimulatorConfig {
            incidents: 40,
            rate_limits: false,
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0",
    )
    .expect("sim");
    let measure = |skills: &Path, id: &str| {
        let cache = TempDir::new("bench-language-cache");
        // Pacing raised: the runs share one store, and 21 runs of 4 calls within a minute
        // would otherwise measure the published limit.
        let config = write_config(cache.path(), &sim, UNPACED);
        let run = || {
            let mut cmd = skillhost(&config, cache.path());
            cmd.arg("--skills-dir")
                .arg(skills)
                .args(["run", id, "-c", "sim"]);
            timed(&mut cmd)
        };
        let first = run();
        let warm = median((0..sizes.language_runs).map(|_| run()).collect());
        let size = std::fs::read_dir(skills)
            .expect("skills")
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        LanguageFigures { first, warm, size }
    };
    Some((
        measure(python.path(), "sample_incidents_py"),
        measure(rust.path(), "sample_incidents_rs"),
    ))
}

/// The rows of the Python example against its Rust twin.
fn print_languages(sizes: &Sizes) {
    if sizes.language_runs == 0 {
        println!("| Python example vs its Rust twin | left out in quick mode | – | – | – |");
    } else {
        match python_against_rust(sizes) {
            Some((python, rust)) => {
                println!(
                    "| Python example `sample_incidents_py` (20 incidents, 4 pages), first run: compile + describe + run ({:.1} MB component) | {:.2} s | Rust twin ({:.0} KB): {:.3} s | {:.0} | – |",
                    python.size as f64 / 1e6,
                    python.first.as_secs_f64(),
                    rust.size as f64 / 1e3,
                    rust.first.as_secs_f64(),
                    python.first.as_secs_f64() / rust.first.as_secs_f64()
                );
                println!(
                    "| Python example, warm run from the compile cache (median of {}) | {:.1} ms | Rust twin: {:.1} ms | {:.2} | – |",
                    sizes.language_runs,
                    millis(python.warm),
                    millis(rust.warm),
                    millis(python.warm) / millis(rust.warm)
                );
            }
            None => println!(
                "| Python example vs its Rust twin | componentize-py 0.25.1 not installed | – | – | – |"
            ),
        }
    }
}

/// The row of an incremental run that finds nothing new against a plain run.
fn print_incremental(sizes: &Sizes) {
    let inc = incremental::measure(sizes.incremental_incidents, sizes.incremental_runs);
    println!(
        "| incremental detections run finding nothing new, {} incidents in a one-day window (median of {}) | overlap = the window: {:.1} ms, 0 rows; default 5-minute overlap: {:.1} ms, 0 rows | plain run, same parameters: {:.1} ms, {} rows | {:.2} | – |",
        sizes.incremental_incidents,
        sizes.incremental_runs,
        millis(inc.nothing_new),
        millis(inc.steady),
        millis(inc.plain.0),
        inc.plain.1,
        millis(inc.nothing_new) / millis(inc.plain.0)
    );
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1048576.0))
        .unwrap_or_else(|| "unknown".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{cores} cores ({cpu}), {memory}")
}

/// The `serve` rows: no-op throughput, a warm `get`, memory per in-flight detections run.
fn print_serve(rt: &tokio::runtime::Runtime, sizes: &Sizes) {
    let figures = rt.block_on(serve::measure(&sizes.serve));
    println!(
        "| `serve`: no-op invocations over HTTP, 64 connections, {:.0} s | {:.0}/s, p50 {:.2} ms, p99 {:.2} ms | one CLI process per invocation: {:.1}/s | {:.0} | ≥ 14,000/s |",
        sizes.serve.load.as_secs_f64(),
        figures.noop_per_second,
        millis(figures.noop_p50),
        millis(figures.noop_p99),
        figures.cli_per_second,
        figures.noop_per_second / figures.cli_per_second
    );
    println!(
        "| `serve`: warm `get` (caller → serve → simulator, token cached; median of {}) | {:.3} ms | the same GET sent directly with a cached token: {:.3} ms | {:.2} | ≤ 1.3 |",
        sizes.serve.gets,
        millis(figures.get_serve),
        millis(figures.get_native),
        millis(figures.get_serve) / millis(figures.get_native)
    );
    println!(
        "| `serve`: resident memory per in-flight detections invocation ({} at once) | {:.1} MiB each | idle server: {:.1} MiB | – | – |",
        sizes.serve.in_flight,
        figures.rss_per_invocation / 1048576.0,
        figures.rss_idle as f64 / 1048576.0
    );
}

/// The end-to-end rows (`-- wire` alone): detections and list against the simulator as fast as
/// it answers, then detections against the same simulator paced like issue 14's mock.
fn print_wire(sizes: &Sizes) {
    let Some(w) = wire::measure(sizes.wire_incidents, sizes.wire_runs, None, true) else {
        println!("| detections end to end | – | curl not installed | – | ≤ 1.5 |");
        return;
    };
    print_detections_row(sizes, &w, "");
    if let Some(list) = w.list {
        println!(
            "| list end to end (`list_microsoft_defender_incidents -o json`), same window (median of {}) | wall {:.3} s, CPU {:.3} s ({:.0} MB/s) | the same curl process | {:.2} | – |",
            sizes.wire_runs,
            list.0.as_secs_f64(),
            list.1.as_secs_f64(),
            w.bytes as f64 / 1e6 / list.1.as_secs_f64(),
            list.0.as_secs_f64() / w.curl.0.as_secs_f64()
        );
    }
    let paced = wire::PACED;
    if let Some(w) = wire::measure(sizes.wire_incidents, sizes.wire_runs, Some(paced), false) {
        let pace = format!(", every answer {} ms later", paced.as_millis());
        print_detections_row(sizes, &w, &pace);
    }
}

/// One detections row of [`print_wire`]; `pace` says how the simulator was paced.
fn print_detections_row(sizes: &Sizes, w: &wire::WireFigures, pace: &str) {
    let mb = w.bytes as f64 / 1e6;
    println!(
        "| detections end to end, CLI → simulator{pace}: {} realistic incidents, {} pages, {mb:.1} MB, {} rows (median of {}) | wall {:.3} s, CPU {:.3} s ({:.0} MB/s, {:.0}k rows per CPU-second) | one curl process, same pages over one connection: wall {:.3} s, CPU {:.3} s | {:.2} | ≤ 1.5, CPU ≤ 0.15 s |",
        sizes.wire_incidents,
        w.pages,
        w.rows,
        sizes.wire_runs,
        w.cli.0.as_secs_f64(),
        w.cli.1.as_secs_f64(),
        mb / w.cli.1.as_secs_f64(),
        w.rows as f64 / 1e3 / w.cli.1.as_secs_f64(),
        w.curl.0.as_secs_f64(),
        w.curl.1.as_secs_f64(),
        w.cli.0.as_secs_f64() / w.curl.0.as_secs_f64()
    );
}

/// The normalization row: the detections' parse → rows → serialize in wasm against the same
/// code native.
fn print_normalization(rt: &tokio::runtime::Runtime, sizes: &Sizes) {
    let (wasm, native, rows) = rt.block_on(normalization(sizes));
    let json_bytes = (defender::workload::page(5).len() * sizes.normalize_incidents) as f64;
    let rate = |d: Duration| {
        format!(
            "{:.0} MB/s, {:.0}k rows/s",
            json_bytes / 1e6 / d.as_secs_f64(),
            rows as f64 / 1e3 / d.as_secs_f64()
        )
    };
    println!(
        "| normalization of {} incidents × 5 alerts ({:.1} MB of incident JSON, {rows} rows, best of {}) | wasm: {:.1} ms ({}) | native: {:.1} ms ({}) | {:.2} | ≤ 1.5 |",
        sizes.normalize_incidents,
        json_bytes / 1e6,
        sizes.normalize_repeats,
        millis(wasm),
        rate(wasm),
        millis(native),
        rate(native),
        millis(wasm) / millis(native)
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick { &QUICK } else { &FULL };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    println!(
        "machine: {}{}",
        machine(),
        if quick {
            " (quick mode: paths only, figures meaningless)"
        } else {
            ""
        }
    );
    println!();
    println!("| measure | result | baseline | ratio | target |");
    println!("|---|---|---|---|---|");
    // `-- incremental`: only the incremental run against the plain one.
    if std::env::args().any(|a| a == "incremental") {
        print_incremental(sizes);
        return;
    }
    // `-- wire`: only detections end to end against one curl download.
    if std::env::args().any(|a| a == "wire") {
        print_wire(sizes);
        return;
    }
    // `-- normalization`: only the normalization row.
    if std::env::args().any(|a| a == "normalization") {
        print_normalization(&rt, sizes);
        return;
    }
    // `-- serve`: only the `serve` rows.
    if std::env::args().any(|a| a == "serve") {
        print_serve(&rt, sizes);
        return;
    }
    // `-- languages`: only the Python example against its Rust twin.
    if std::env::args().any(|a| a == "languages") {
        print_languages(sizes);
        return;
    }

    let (plain, plain_p90) = rt.block_on(noop(sizes, false));
    let (pooled, pooled_p90) = rt.block_on(noop(sizes, true));
    println!(
        "| no-op instantiate + invoke, fresh Store (median, p90) | pooling: {:.1} µs, {:.1} µs | on-demand: {:.1} µs, {:.1} µs | {:.2} | ≤ 50 µs with pooling |",
        micros(pooled),
        micros(pooled_p90),
        micros(plain),
        micros(plain_p90),
        micros(pooled) / micros(plain)
    );

    let (cli, curl) = cli_against_curl(sizes);
    match curl {
        Some(curl) => println!(
            "| CLI `run get_microsoft_defender_incident`, warm cache (median of {}) | {:.1} ms | two curl calls: {:.1} ms | {:.2} | ≤ 2.0 |",
            sizes.cli_runs,
            millis(cli),
            millis(curl),
            millis(cli) / millis(curl)
        ),
        None => println!(
            "| CLI get, warm cache | {:.1} ms | curl not installed | – | ≤ 2.0 |",
            millis(cli)
        ),
    }

    print_normalization(&rt, sizes);
    print_wire(sizes);
    print_incremental(sizes);

    let peaks: Vec<(usize, usize)> = sizes
        .memory_points
        .iter()
        .map(|&n| (n, rt.block_on(detections_memory(n))))
        .collect();
    let (first_n, first) = peaks[0];
    for &(n, peak) in &peaks[1..] {
        println!(
            "| peak guest memory, detections, {n} incidents | {:.2} MiB | {first_n} incidents: {:.2} MiB | {:.2} | ≤ 1.2 |",
            peak as f64 / 1048576.0,
            first as f64 / 1048576.0,
            peak as f64 / first as f64
        );
    }

    print_serve(&rt, sizes);

    print_languages(sizes);

    let (calls, elapsed, allowed, throttled) = rt.block_on(pacing(sizes));
    // At 50 calls a window, call n cannot start before window × ((n - 1) / 50): the fastest the
    // limit allows. The ratio is that over the time taken (1.0 = exactly at the allowed rate).
    let window = 50.0 / allowed;
    let fastest = window * (calls.saturating_sub(1) / 50) as f64;
    println!(
        "| pacing: {} incidents, page_size 10, 50 calls/min at time scale 120 | {calls} calls in {:.2} s, {throttled} × 429 | fastest allowed: {fastest:.2} s ({allowed:.0} calls/s) | {:.2} | ≥ 0.95, no 429 |",
        sizes.pacing_incidents,
        elapsed.as_secs_f64(),
        if elapsed.as_secs_f64() > 0.0 {
            fastest / elapsed.as_secs_f64()
        } else {
            0.0
        }
    );
}
