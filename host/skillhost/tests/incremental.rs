//! Incremental detections end to end, through the real CLI and `serve` against a live
//! simulator: a seeded randomized interleaving of updates, runs, runs killed with SIGKILL
//! mid-stream and concurrent runs, checked against the simulator's ground truth (every version
//! present, none twice), on both stores; and the cursor's conflict, summary and reset.

mod common;
#[path = "../../state/tests/support/mod.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{Host, SOC_KEY, Simulator, SimulatorConfig, add_caller};
use jiff::Timestamp;
use skillhost_simulator::Live;

const DETECTIONS: &str = "list_microsoft_defender_incidents_for_detections";

/// A live simulator, the Defender skills, and a store.
struct Fixture {
    host: Host,
    config: String,
    store: String,
    sim: Simulator,
}

/// One incident version: id and `lastUpdateTime`.
type Version = (u64, Timestamp);

/// A run that completed: when it was started and found ended, and the rows it delivered.
struct Completed {
    start: Timestamp,
    end: Timestamp,
    rows: Vec<serde_json::Value>,
}

fn fixture(sim: Simulator, store: &str) -> Fixture {
    let host = Host::defender(&[]);
    // The published limits at a scale where pacing never waits.
    let config = host.config(
        &sim,
        "defender",
        "[connections.sim.pacing]\ntime_scale = 1000",
    );
    Fixture {
        host,
        config,
        store: store.to_string(),
        sim,
    }
}

fn live_simulator(seed: u64) -> Simulator {
    Simulator::start(
        SimulatorConfig {
            incidents: 40,
            seed,
            rate_limits: false,
            // Each page 10 ms late: a run lasts long enough to be killed in the middle.
            faults: common::Faults::parse(&["slow=10".to_string()]).expect("faults"),
            live: Some(Live {
                every: Duration::from_millis(25),
                visibility_delay: Duration::from_millis(700),
            }),
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0",
    )
    .expect("simulator")
}

impl Fixture {
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "--config",
            &self.config,
            "--state",
            &self.store,
            "--lock-ttl",
            "6s",
            "run",
            DETECTIONS,
            "-c",
            "sim",
            "-o",
            "ndjson",
            "-p",
            "incremental=true",
            "-p",
            "duration=3650",
            "-p",
            "page_size=7",
            "-p",
            "overlap_seconds=2",
        ];
        args.extend_from_slice(extra);
        args
    }

    fn spawn(&self, extra: &[&str]) -> Child {
        self.host
            .command(&self.args(extra))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn skillhost run")
    }

    /// Waits (10 s at most) until no run holds a lock of the detections skill.
    fn wait_unlocked(&self) {
        for _ in 0..200 {
            let show = self.show();
            if show["locks"].as_array().is_some_and(Vec::is_empty) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("a lock is still held after 10 s");
    }

    /// The committed state of the detections skill (every key, value and version), as text.
    fn state(&self) -> String {
        self.show()["keys"].to_string()
    }

    /// `skillhost state show` of the detections skill.
    fn show(&self) -> serde_json::Value {
        let show = self.host.run(&[
            "--config",
            &self.config,
            "--state",
            &self.store,
            "state",
            "show",
            "-c",
            "sim",
            "-s",
            DETECTIONS,
        ]);
        assert_eq!(show.code, 0, "{}", show.stderr);
        show.json()
    }
}

/// The rows of NDJSON text.
fn rows(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("row {l:?}: {e}")))
        .collect()
}

fn version_of(row: &serde_json::Value) -> Version {
    let id = row["incident_id"].as_str().and_then(|i| i.parse().ok());
    let time = row["incident_last_update_time"]
        .as_str()
        .and_then(|t| t.parse().ok());
    match (id, time) {
        (Some(id), Some(time)) => (id, time),
        _ => panic!("a row without an incident id and time: {row}"),
    }
}

/// How a run ended, for the interleaving.
enum Ended {
    Completed(Completed),
    /// Refused at once: another run held the cursor (exit 3, "in use").
    InUse,
    /// Killed before it committed.
    Killed,
}

/// Waits for `child` started at `start`: completed, or refused because the cursor was in use.
fn ended(child: Child, start: Timestamp) -> Ended {
    let out = child.wait_with_output().expect("wait");
    let end = Timestamp::now();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {
            assert!(
                stderr.contains("\"state\":\"committed\""),
                "a completed run's summary says it committed: {stderr}"
            );
            Ended::Completed(Completed {
                start,
                end,
                rows: rows(&stdout),
            })
        }
        Some(3) if stderr.contains("cursor `default` is in use by another run") => Ended::InUse,
        other => panic!("run ended with {other:?}: {stderr}"),
    }
}

/// Starts a run and kills it with SIGKILL once it printed `lines` rows or `after` passed,
/// whichever comes first. A run that had already committed (its state changed) or exited
/// counts as completed, with everything it wrote.
fn killed(f: &Fixture, lines: usize, after: Duration) -> Ended {
    // On a free cursor, so that the run gets as far as rows (a killed run's lock outlives it).
    f.wait_unlocked();
    let before = f.state();
    let start = Timestamp::now();
    let started = std::time::Instant::now();
    let mut child = f.spawn(&[]);
    let stdout = child.stdout.take().expect("stdout");
    let printed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = printed.clone();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let mut stdout = BufReader::new(stdout);
        while stdout.read_line(&mut text).unwrap_or(0) > 0 {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        text
    });
    while printed.load(std::sync::atomic::Ordering::SeqCst) < lines && started.elapsed() < after {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    let end = Timestamp::now();
    let text = reader.join().expect("stdout reader");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    if status.code() == Some(3) && stderr.contains("is in use by another run") {
        return Ended::InUse;
    }
    if status.success() || f.state() != before {
        return Ended::Completed(Completed {
            start,
            end,
            rows: rows(&text),
        });
    }
    Ended::Killed
}

/// What the interleaving does at one step.
#[derive(Debug, Clone, Copy)]
enum Step {
    Run,
    Kill,
    Pair,
    Pause,
}

/// Interleaves runs, killed runs, concurrent pairs and pauses in an order drawn from `seed`
/// while the simulator keeps creating and updating incidents (each update visible 0.7 s after
/// its `lastUpdateTime`, inside the 2 s overlap; each page 10 ms late); then checks the
/// completed runs' rows against the ground truth.
fn randomized(seed: u64, store: &str) {
    let f = fixture(live_simulator(seed), store);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut steps: Vec<Step> = [
        [Step::Run; 6].as_slice(),
        &[Step::Kill; 4],
        &[Step::Pair; 3],
        &[Step::Pause; 2],
    ]
    .concat();
    rng.shuffle(&mut steps);
    let mut completed = Vec::new();
    let (mut kills, mut refusals) = (0, 0);
    let mut record = |ended: Ended, completed: &mut Vec<Completed>| match ended {
        Ended::Completed(run) => {
            eprintln!("seed {seed}: completed, {} rows", run.rows.len());
            completed.push(run)
        }
        Ended::InUse => {
            eprintln!("seed {seed}: refused, the cursor was in use");
            refusals += 1
        }
        Ended::Killed => {
            eprintln!("seed {seed}: killed");
            kills += 1
        }
    };
    for step in steps {
        match step {
            // Again while the cursor is in use (a killed run's lock lasts 6 s at most).
            Step::Run => {
                for _ in 0..40 {
                    let start = Timestamp::now();
                    let end = ended(f.spawn(&[]), start);
                    let again = matches!(end, Ended::InUse);
                    record(end, &mut completed);
                    if !again {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
            Step::Kill => record(
                killed(
                    &f,
                    rng.usize(1..20),
                    Duration::from_millis(rng.u64(20..150)),
                ),
                &mut completed,
            ),
            Step::Pair => {
                let start = Timestamp::now();
                let (a, b) = (f.spawn(&[]), f.spawn(&[]));
                record(ended(a, start), &mut completed);
                record(ended(b, start), &mut completed);
            }
            Step::Pause => std::thread::sleep(Duration::from_millis(rng.u64(200..1500))),
        }
        std::thread::sleep(Duration::from_millis(rng.u64(0..300)));
    }
    // A last run that completes (a killed run's lock lasts 6 s at most).
    let mut last = None;
    for _ in 0..40 {
        let start = Timestamp::now();
        match ended(f.spawn(&[]), start) {
            Ended::Completed(run) => {
                last = Some(run);
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
    completed.push(last.expect("a last run completed within 10 s"));

    // None twice: no version in two completed runs, no row twice in one.
    let mut delivered: HashMap<Version, usize> = HashMap::new();
    for (i, run) in completed.iter().enumerate() {
        let mut seen_rows = HashSet::new();
        let mut versions = HashSet::new();
        for row in &run.rows {
            let version = version_of(row);
            assert!(
                seen_rows.insert((version, row["alert_id"].to_string())),
                "seed {seed}: run {i} delivered a row twice: {row}"
            );
            versions.insert(version);
        }
        for version in versions {
            let before = delivered.insert(version, i);
            assert_eq!(
                before, None,
                "seed {seed}: {version:?} delivered by runs {before:?} and {i}"
            );
        }
    }
    // Every version present: each version that was its incident's latest visible one for the
    // whole of some completed run was delivered by a completed run.
    let truth = f.sim.stats().versions();
    let mut by_id: HashMap<u64, Vec<(Timestamp, Timestamp)>> = HashMap::new();
    for v in &truth {
        let time: Timestamp = v.last_update_time.parse().expect("ground truth time");
        by_id.entry(v.id).or_default().push((time, v.visible_at));
    }
    let mut required = 0;
    for (id, versions) in &mut by_id {
        versions.sort_by_key(|(_, visible)| *visible);
        for (i, (time, visible)) in versions.iter().enumerate() {
            let superseded = versions.get(i + 1).map(|(_, next)| *next);
            let stable = completed
                .iter()
                .any(|run| *visible <= run.start && superseded.is_none_or(|next| next > run.end));
            if stable {
                required += 1;
                assert!(
                    delivered.contains_key(&(*id, *time)),
                    "seed {seed}: incident {id} at {time} was visible through a completed run but never delivered"
                );
            }
        }
    }
    // Everything delivered is a real version.
    let real: HashSet<Version> = by_id
        .iter()
        .flat_map(|(id, vs)| vs.iter().map(move |(t, _)| (*id, *t)))
        .collect();
    for version in delivered.keys() {
        assert!(
            real.contains(version),
            "seed {seed}: {version:?} was never a version"
        );
    }
    // The check checked something: the interleaving killed runs and delivered many versions.
    assert!(
        kills >= 1,
        "seed {seed}: no run was killed before it committed"
    );
    assert!(
        completed.len() >= 8,
        "seed {seed}: {} runs completed",
        completed.len()
    );
    assert!(
        required >= 100,
        "seed {seed}: only {required} versions were checked"
    );
    eprintln!(
        "seed {seed}: {} completed runs, {kills} killed, {refusals} refused as in use, {} versions delivered, {required} required",
        completed.len(),
        delivered.len()
    );
}

#[test]
fn incremental_runs_deliver_every_version_once_through_kills_and_concurrency_on_sqlite() {
    let dir = common::TempDir::new("incremental-sqlite");
    let store = format!("sqlite:{}", dir.path().join("state.db").display());
    for seed in [11, 12] {
        randomized(
            seed,
            &store.replace("state.db", &format!("state-{seed}.db")),
        );
    }
}

#[test]
fn incremental_runs_deliver_every_version_once_through_kills_and_concurrency_on_redis() {
    let Some(redis) = support::Backend::redis("incremental_runs_on_redis") else {
        return;
    };
    // One database per seed, so that each starts with no cursor.
    let base = redis.url().to_string();
    for (db, seed) in [(1, 21), (2, 22)] {
        let url = format!(
            "{}/{db}",
            base.rsplit_once('/').map_or(base.as_str(), |(b, _)| b)
        );
        randomized(seed, &url);
    }
}

#[test]
fn a_second_run_on_a_cursor_in_use_fails_at_once_and_another_cursor_runs() {
    let dir = common::TempDir::new("incremental-conflict");
    let store = format!("sqlite:{}", dir.path().join("state.db").display());
    // Every answer 300 ms late, one incident a page: a minute of paging.
    let f = fixture(common::simulator(200, &["slow=300"]), &store);
    let config = f.config.clone();
    let slow = |cursor: &str, window: &[&str]| {
        let cursor = format!("cursor={cursor}");
        let mut args = vec![
            "--config",
            config.as_str(),
            "--state",
            &store,
            "run",
            DETECTIONS,
            "-c",
            "sim",
            "-o",
            "ndjson",
            "-p",
            "incremental=true",
            "-p",
            "page_size=1",
            "-p",
            &cursor,
        ];
        for param in window {
            args.extend(["-p", param]);
        }
        f.host
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let mut first = slow("default", &["duration=30"]);
    let mut stdout = BufReader::new(first.stdout.take().expect("stdout"));
    let mut row = String::new();
    stdout.read_line(&mut row).expect("first row");
    assert!(row.starts_with("{\"incident_id\":"), "{row}");

    let second = slow("default", &["duration=30"])
        .wait_with_output()
        .expect("second");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with("skillhost: conflict: cursor `default` is in use by another run"),
        "{stderr}"
    );
    assert!(second.stdout.is_empty());
    assert_eq!(
        first.try_wait().expect("try_wait"),
        None,
        "the first run still runs"
    );

    // Another pipeline's cursor is its own (a one-minute window: nothing to page).
    let other = slow("other", &["duration=1", "duration_type=minutes"])
        .wait_with_output()
        .expect("other");
    assert_eq!(
        other.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    first.kill().expect("kill");
    let _ = first.wait();
}

#[test]
fn a_run_with_nothing_new_delivers_no_row_and_its_summary_says_where_the_cursor_is() {
    let dir = common::TempDir::new("incremental-summary");
    let store = format!("sqlite:{}", dir.path().join("state.db").display());
    let f = fixture(common::simulator(12, &[]), &store);
    let run = |extra: &[&str]| f.host.run(&f.args(extra));
    let first = run(&[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let delivered = rows(&first.stdout);
    assert!(!delivered.is_empty());
    let summary = |stderr: &str| -> serde_json::Value {
        serde_json::from_str(stderr.lines().last().expect("summary")).expect("summary JSON")
    };
    let one = summary(&first.stderr);
    assert_eq!(one["state"], "committed");
    assert_eq!(one["cursor"]["name"], "default");
    assert_eq!(one["cursor"]["already_delivered"], 0);
    assert_eq!(one["cursor"]["delivered"], one["incidents"]);

    let second = run(&[]);
    assert_eq!(
        (second.code, second.stdout.as_str()),
        (0, ""),
        "{}",
        second.stderr
    );
    let two = summary(&second.stderr);
    assert_eq!(two["cursor"]["from"], one["cursor"]["next"]);
    assert_eq!(two["cursor"]["delivered"], 0);
    assert_eq!(two["state"], "committed");
    assert_eq!(
        two["filter"],
        format!(
            "lastUpdateTime ge {}",
            one["cursor"]["next"].as_str().expect("next")
        )
    );

    // A plain run is what it always was: no cursor, no state, every row.
    let plain = f.host.run(&[
        "--config",
        &f.config,
        "--state",
        &f.store,
        "run",
        DETECTIONS,
        "-c",
        "sim",
        "-o",
        "ndjson",
        "-p",
        "duration=3650",
        "-p",
        "page_size=7",
    ]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert_eq!(rows(&plain.stdout), delivered);
    let three = summary(&plain.stderr);
    assert_eq!((three.get("cursor"), three.get("state")), (None, None));

    // After a reset, the window starts over.
    let reset = f.host.run(&[
        "--config", &f.config, "--state", &f.store, "state", "reset", "-c", "sim", "-s", DETECTIONS,
    ]);
    assert_eq!(reset.code, 0, "{}", reset.stderr);
    let again = run(&[]);
    assert_eq!(rows(&again.stdout), delivered, "{}", again.stderr);
}

#[test]
fn incremental_refuses_a_limit_with_what_to_do() {
    let dir = common::TempDir::new("incremental-limit");
    let store = format!("sqlite:{}", dir.path().join("state.db").display());
    let f = fixture(common::simulator(3, &[]), &store);
    let run = f.host.run(&f.args(&["-p", "limit=2"]));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().next(),
        Some(
            "skillhost: skill `list_microsoft_defender_incidents_for_detections` refused its input: `limit` cannot be combined with `incremental`: the cursor would move past incidents never read; drop `limit`"
        )
    );
    assert_eq!(f.sim.stats().seen().len(), 0, "nothing was fetched");
}

#[test]
fn serve_commits_the_cursor_once_the_rows_were_taken_and_answers_409_to_a_second_run() {
    let dir = common::TempDir::new("incremental-serve");
    let store = format!("sqlite:{}", dir.path().join("state.db").display());
    // Every answer 300 ms late, one incident a page: a run of 20 incidents takes 6 s.
    let f = fixture(common::simulator(20, &["slow=300"]), &store);
    add_caller(&f.host, &f.config);
    let serve = f.host.serve(&["--config", &f.config, "--state", &store]);
    let body = serde_json::json!({"connection": "sim", "input": {
        "incremental": true, "duration": 3650, "page_size": 1,
    }});
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| serve.invoke(DETECTIONS, SOC_KEY, &body));
        // Once the first run holds the cursor, a second run is refused at once.
        let held = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            let show = f.host.run(&[
                "--config", &f.config, "--state", &store, "state", "show", "-c", "sim", "-s",
                DETECTIONS,
            ]);
            show.code == 0
                && show.json()["locks"]
                    .as_array()
                    .is_some_and(|l| !l.is_empty())
        });
        assert!(held, "the first run took the cursor's lock");
        let second = serve.invoke(DETECTIONS, SOC_KEY, &body);
        (first.join().expect("first"), second)
    });
    assert_eq!(second.status, 409, "{}", second.text());
    assert_eq!(second.error_code(), "conflict");
    assert!(
        second
            .text()
            .contains("cursor `default` is in use by another run"),
        "{}",
        second.text()
    );

    assert_eq!(first.status, 200, "{}", first.text());
    let lines = first.ndjson();
    let summary = &lines.last().expect("summary")["summary"];
    assert_eq!(summary["state"], "committed", "{summary}");
    assert_eq!(summary["cursor"]["delivered"], 20);
    assert_eq!(
        lines.len() - 1,
        summary["rows"].as_u64().expect("rows") as usize
    );

    // The next run continues from the cursor: nothing new, and it says so.
    let again = serve.invoke(DETECTIONS, SOC_KEY, &body);
    assert_eq!(again.status, 200, "{}", again.text());
    let lines = again.ndjson();
    assert_eq!(lines.len(), 1, "only the summary: {}", again.text());
    assert_eq!(lines[0]["summary"]["state"], "committed");
    assert_eq!(
        lines[0]["summary"]["cursor"]["from"],
        summary["cursor"]["next"]
    );
}
