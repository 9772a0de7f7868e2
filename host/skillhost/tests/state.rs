//! Contract 0.2's `state`, end to end through the real CLI: what a skill keeps between runs, kept
//! per (tenant, connection, skill), committed only once a run's output was delivered, one run at
//! a time under a lock; and `skillhost state list|show|reset`. The skill is the `state-counter`
//! test component, built from `wit/skill@0.2.0` directly.

mod common;
#[path = "../../state/tests/support/mod.rs"]
mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Host, SECRET_VAR, SOC_KEY, TempDir, add_caller};

/// A host with `state-counter` (0.2) and `echo` (0.1), a config with connection `sim`, and a
/// private SQLite store.
struct Fixture {
    host: Host,
    config: String,
    store: String,
    _sim: common::Simulator,
    _state: TempDir,
}

fn fixture() -> Fixture {
    let host = Host::with(&["state-counter", "echo"])
        .env(SECRET_VAR, skillhost_simulator::DEFAULT_CLIENT_SECRET);
    let sim = common::simulator(1, &[]);
    let config = host.config(&sim, "defender", "");
    let state = TempDir::new("state");
    let store = format!("sqlite:{}", state.path().join("state.db").display());
    Fixture {
        host,
        config,
        store,
        _sim: sim,
        _state: state,
    }
}

impl Fixture {
    fn run(&self, args: &[&str]) -> common::Run {
        self.run_in(&self.store, args)
    }

    /// Runs the CLI with this fixture's config and the store at `url`.
    fn run_in(&self, url: &str, args: &[&str]) -> common::Run {
        let mut all = vec!["--config", &self.config, "--state", url];
        all.extend_from_slice(args);
        self.host.run(&all)
    }

    fn count(&self, extra: &[&str]) -> common::Run {
        let mut args = vec!["run", "state_counter", "-c", "sim", "-o", "ndjson"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn show(&self) -> serde_json::Value {
        self.show_in(&self.store)
    }

    /// `state show` of the counter's scope in the store at `url`.
    fn show_in(&self, url: &str) -> serde_json::Value {
        let show = self.run_in(url, &["state", "show", "-c", "sim", "-s", "state_counter"]);
        assert_eq!(show.code, 0, "{}", show.stderr);
        show.json()
    }

    /// Waits until the counter's lock shows as held in the store at `url`.
    fn wait_for_lock(&self, url: &str) {
        let started = Instant::now();
        while self.show_in(url)["locks"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            assert!(
                started.elapsed() < common::PATIENCE,
                "the lock never showed"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn state_persists_between_runs_and_is_shown_and_listed() {
    let f = fixture();
    let first = f.count(&[]);
    assert_eq!(
        (first.code, first.stdout.as_str()),
        (0, "{\"count\":1}\n"),
        "{}",
        first.stderr
    );
    let second = f.count(&[]);
    assert_eq!(second.stdout, "{\"count\":2}\n", "{}", second.stderr);

    let show = f.show();
    assert_eq!(show["tenant"], "acme");
    assert_eq!(show["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(show["keys"][0]["key"], "count");
    assert_eq!(show["keys"][0]["value"], "2");
    assert_eq!(show["locks"], serde_json::json!([]), "the lock is released");

    let list = f.run(&["state", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let scopes = list.json()["scopes"].clone();
    assert_eq!(
        scopes,
        serde_json::json!([{"tenant": "acme", "connection": "sim", "skill": "state_counter", "keys": 1}])
    );
}

#[test]
fn a_failed_run_commits_nothing() {
    let f = fixture();
    assert_eq!(f.count(&[]).stdout, "{\"count\":1}\n");
    let failed = f.count(&["-p", "fail=true"]);
    assert_eq!(failed.code, 3, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("failing after staging"),
        "{}",
        failed.stderr
    );
    // Its row was printed, but the state did not move: the next run gives the same number.
    assert_eq!(failed.stdout, "{\"count\":2}\n");
    let next = f.count(&[]);
    assert_eq!(next.stdout, "{\"count\":2}\n", "{}", next.stderr);
}

#[test]
fn a_second_run_on_a_held_lock_fails_at_once_with_a_conflict_and_the_first_commits() {
    let f = fixture();
    let holder = f
        .host
        .command(&[
            "--config",
            &f.config,
            "--state",
            &f.store,
            "run",
            "state_counter",
            "-c",
            "sim",
            "-p",
            "hold_ms=4000",
            "-o",
            "ndjson",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the first run holds its lock.
    f.wait_for_lock(&f.store);
    let second = f.count(&[]);
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("conflict: `counter` is in use by another run"),
        "{}",
        second.stderr
    );
    assert_eq!(second.stdout, "");
    let first = holder.wait_with_output().expect("first run");
    assert!(first.status.success());
    assert_eq!(String::from_utf8_lossy(&first.stdout), "{\"count\":1}\n");
    assert_eq!(f.show()["keys"][0]["value"], "1");
    assert_eq!(f.count(&[]).stdout, "{\"count\":2}\n");
}

#[test]
fn a_run_stopped_computing_past_its_deadline_gives_its_lock_back_and_the_next_run_counts() {
    let f = fixture();
    let stopped = f.count(&["-p", "spin=true", "--timeout", "500ms"]);
    assert_eq!(stopped.code, 4, "{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .contains("skill `state_counter` did not finish within its deadline of 500 ms"),
        "{}",
        stopped.stderr
    );
    assert_eq!(f.show()["locks"], serde_json::json!([]));
    let next = f.count(&[]);
    assert_eq!(
        (next.code, next.stdout.as_str()),
        (0, "{\"count\":1}\n"),
        "{}",
        next.stderr
    );
}

#[test]
fn a_run_one_of_whose_rows_the_host_refused_commits_nothing() {
    let f = fixture();
    let run = f.count(&["-p", "bad_row=true"]);
    // The skill ignored the refusal and succeeded; its good row was printed.
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "{\"count\":1}\n"),
        "{}",
        run.stderr
    );
    assert_eq!(f.show()["keys"], serde_json::json!([]));
    assert_eq!(f.count(&[]).stdout, "{\"count\":1}\n");
}

#[test]
fn state_reset_starts_the_scope_over() {
    let f = fixture();
    f.count(&[]);
    f.count(&[]);
    let reset = f.run(&["state", "reset", "-c", "sim", "-s", "state_counter"]);
    assert_eq!(reset.code, 0, "{}", reset.stderr);
    assert_eq!(reset.json()["removed"], 1);
    assert_eq!(f.show()["keys"], serde_json::json!([]));
    assert_eq!(f.count(&[]).stdout, "{\"count\":1}\n");
}

#[test]
fn state_is_kept_per_connection() {
    let f = fixture();
    // A second connection of the same tenant: its own scope, its own count.
    let text = std::fs::read_to_string(&f.config).expect("config");
    let other = text.replace("[connections.sim", "[connections.other");
    std::fs::write(&f.config, format!("{text}\n{other}")).expect("config");
    f.count(&[]);
    f.count(&[]);
    let other = f.run(&["run", "state_counter", "-c", "other", "-o", "ndjson"]);
    assert_eq!(other.stdout, "{\"count\":1}\n", "{}", other.stderr);
}

#[test]
fn a_0_1_component_runs_unchanged_beside_a_0_2_skill() {
    let f = fixture();
    let echo = f.run(&["run", "echo", "-p", "message=Hi"]);
    assert_eq!(echo.code, 0, "{}", echo.stderr);
    assert_eq!(echo.json()["echo"], "hi");
    assert_eq!(f.count(&[]).stdout, "{\"count\":1}\n");
    let list = f.run(&["skills", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("state_counter") && list.stdout.contains("echo"));
}

#[test]
fn an_unreachable_store_fails_the_run_before_any_call_with_unavailable() {
    let f = fixture();
    // Nothing listens on port 1 of loopback.
    let run = f.host.run(&[
        "--config",
        &f.config,
        "--state",
        "redis://127.0.0.1:1/0",
        "run",
        "state_counter",
        "-c",
        "sim",
        "-o",
        "ndjson",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "skillhost: cannot pace the connection's calls: the state store is unavailable: \
             Redis store redis://127.0.0.1:1/0"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
    assert_eq!(f._sim.stats().calls() + f._sim.stats().tokens(), 0);
}

#[test]
fn a_bad_state_url_is_refused_with_the_forms_to_write() {
    let f = fixture();
    let run = f.host.run(&[
        "--config",
        &f.config,
        "--state",
        "postgres://db/1",
        "run",
        "state_counter",
        "-c",
        "sim",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--state: state store `postgres://db/1`: unknown kind of store"),
        "{}",
        run.stderr
    );
}

/// Waits until the state of `state_counter` for `sim` is `count` with no lock held.
fn settled(f: &Fixture, count: &str) {
    let started = Instant::now();
    loop {
        let show = f.show();
        if show["keys"][0]["value"] == count && show["locks"] == serde_json::json!([]) {
            return;
        }
        assert!(
            started.elapsed() < common::PATIENCE,
            "state never became {count}: {show}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The key of caller `soc` (tenant `acme`).
#[test]
fn serve_commits_a_run_once_its_answer_was_delivered() {
    let f = fixture();
    let key = SOC_KEY;
    add_caller(&f.host, &f.config);
    let serve = f.host.serve(&["--config", &f.config, "--state", &f.store]);
    let body = serde_json::json!({"connection": "sim", "input": {}});
    let first = serve.invoke("state_counter", key, &body);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.ndjson()[0], serde_json::json!({"count": 1}));
    settled(&f, "1");
    let second = serve.invoke("state_counter", key, &body);
    assert_eq!(second.ndjson()[0], serde_json::json!({"count": 2}));
    settled(&f, "2");
    // A failed run, after its rows went out: nothing moves.
    let failed = serve.invoke(
        "state_counter",
        key,
        &serde_json::json!({"connection": "sim", "input": {"fail": true}}),
    );
    assert_eq!(failed.ndjson()[0], serde_json::json!({"count": 3}));
    assert_eq!(failed.ndjson()[1]["error"]["code"], "internal");
    settled(&f, "2");
}

/// A simulator with `incidents` and the published rate limits, its minute lasting one second.
fn limited_simulator(incidents: usize) -> skillhost_simulator::Simulator {
    skillhost_simulator::Simulator::start(
        skillhost_simulator::SimulatorConfig {
            incidents,
            time_scale: 60.0,
            ..skillhost_simulator::SimulatorConfig::default()
        },
        "127.0.0.1:0",
    )
    .expect("simulator")
}

/// Asserts the simulator answered no 429, naming the requests that got one.
fn assert_no_429(sim: &skillhost_simulator::Simulator) {
    let stats = sim.stats();
    let seen = stats.seen();
    let at: Vec<usize> = (0..seen.len()).filter(|&i| seen[i].status == 429).collect();
    assert_eq!(
        stats.throttled.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "429 to requests number {at:?} of {}",
        seen.len()
    );
}

#[test]
fn six_concurrent_cli_detection_runs_share_the_default_stores_pacing_and_get_no_429() {
    const INCIDENTS: usize = 1500;
    const DETECTIONS: &str = "list_microsoft_defender_incidents_for_detections";
    // The published limits, a minute lasting one second; the connection paces at that scale.
    let limited = limited_simulator(INCIDENTS);
    // One host: every process uses its store (the tests' stand-in for the default file).
    let host = Host::defender(&[]);
    let config = host.config(
        &limited,
        "defender",
        "[connections.sim.pacing]\ntime_scale = 60",
    );
    let args = [
        "--config",
        config.as_str(),
        "run",
        DETECTIONS,
        "-c",
        "sim",
        "-p",
        "page_size=10",
        "-p",
        "duration=30",
        "-o",
        "ndjson",
    ];
    let runs: Vec<_> = (0..6)
        .map(|_| {
            host.command(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut rows = Vec::new();
    for run in runs {
        let out = run.wait_with_output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        rows.push(out.stdout.iter().filter(|b| **b == b'\n').count());
    }
    assert!(rows[0] > INCIDENTS, "{rows:?}");
    assert!(rows.iter().all(|r| *r == rows[0]), "{rows:?}");
    assert_no_429(&limited);
}

#[test]
fn three_serve_processes_sharing_one_redis_share_the_pacing_budget_and_get_no_429() {
    const INCIDENTS: usize = 1500;
    const DETECTIONS: &str = "list_microsoft_defender_incidents_for_detections";
    let Some(redis) = support::Backend::redis("three_serve_processes_sharing_one_redis") else {
        return;
    };
    let url = redis.url().to_string();
    let limited = limited_simulator(INCIDENTS);
    let host = Host::defender(&[]);
    let config = host.config(
        &limited,
        "defender",
        "[connections.sim.pacing]\ntime_scale = 60",
    );
    add_caller(&host, &config);
    let servers: Vec<common::Serve> = (0..3)
        .map(|_| host.serve(&["--config", &config, "--state", &url]))
        .collect();
    let body = serde_json::json!({"connection": "sim", "input": {"page_size": 10, "duration": 30}});
    // Six runs at once, two on each server.
    let answers: Vec<common::Response> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..6)
            .map(|i| {
                let (server, body) = (&servers[i % 3], &body);
                s.spawn(move || server.invoke(DETECTIONS, SOC_KEY, body))
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("run")).collect()
    });
    let mut rows = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer.status, 200, "run {i}: {}", answer.text());
        let lines = answer.ndjson();
        let summary = lines.last().expect("summary");
        assert_eq!(
            summary["summary"]["incidents"], INCIDENTS,
            "run {i}: {summary}"
        );
        rows.push(lines.len() - 1);
    }
    assert!(
        rows.iter().all(|r| *r == rows[0] && *r > INCIDENTS),
        "{rows:?}"
    );
    assert_no_429(&limited);
}

#[test]
fn a_run_whose_lock_could_not_be_renewed_stops_emitting() {
    let Some(mut redis) = support::Backend::redis("a_run_whose_lock_could_not_be_renewed") else {
        return;
    };
    let url = redis.url().to_string();
    let f = fixture();
    // The lock lasts 3 s; the run holds it 6 s before its row, and the store goes away once the
    // lock shows as held. A renewal that got through in the first 3 s would leave the lock
    // lapsing before the row all the same, so the test has 3 s to see the lock and stop the
    // store, whatever the machine's load.
    let run = f
        .host
        .command(&[
            "--config",
            &f.config,
            "--state",
            &url,
            "--lock-ttl",
            "3s",
            "run",
            "state_counter",
            "-c",
            "sim",
            "-o",
            "ndjson",
            "-p",
            "hold_ms=6000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    f.wait_for_lock(&url);
    match &mut redis {
        support::Backend::Redis { server, .. } => server.stop(),
        support::Backend::Sqlite { .. } => unreachable!("a Redis backend"),
    }
    let out = run.wait_with_output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "the run lost its lock `counter` (it was not renewed within its lifetime, and another run may hold it now); it may emit no more rows"
        ),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "no row went out");
}
