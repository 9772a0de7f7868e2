//! A body cut short, stalled or broken mid-answer is a transient fault: the page is fetched
//! again, no row is lost or doubled, and a fault that persists fails cleanly, naming what
//! happened rather than blaming reachability.

mod common;

use common::{Faults, Host, Run, Simulator, SimulatorConfig};
use serde_json::Value;

const DETECTIONS: &str = "list_microsoft_defender_incidents_for_detections";
const GET: &str = "get_microsoft_defender_incident";

/// Quick retries, a short read-idle timeout, no client pacing.
const TUNED: &str = "[connections.sim.retry]\nbase_backoff_ms = 10\nread_idle_timeout_ms = 300\n\
                     [connections.sim.pacing]\nper_minute = 100000\nper_hour = 1000000";

fn simulator(faults: &[&str], anchor: jiff::Timestamp) -> Simulator {
    let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
    let config = SimulatorConfig {
        incidents: 60,
        rate_limits: false,
        anchor: Some(anchor),
        faults: Faults::parse(&faults).expect("faults"),
        ..SimulatorConfig::default()
    };
    Simulator::start(config, "127.0.0.1:0").expect("simulator")
}

/// A detections run over every incident, 10 a page; its rows sorted (a multiset).
fn detections(host: &Host, sim: &Simulator, api: &str) -> (Run, Vec<String>) {
    let config = host.config(sim, api, TUNED);
    let run = host.run(&[
        "--config",
        &config,
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
    ]);
    let mut rows: Vec<String> = run.stdout.lines().map(str::to_string).collect();
    rows.sort();
    (run, rows)
}

fn rows_under(faults: &[&str], api: &str, anchor: jiff::Timestamp) -> Vec<String> {
    let host = Host::defender(&[]);
    let sim = simulator(faults, anchor);
    let (run, rows) = detections(&host, &sim, api);
    assert_eq!(run.code, 0, "{api} {faults:?}: {}", run.stderr);
    for row in &rows {
        let row: Value = serde_json::from_str(row).expect("row is JSON");
        assert!(!row["incident_id"].is_null(), "{api} {faults:?}: {row}");
    }
    rows
}

#[test]
fn each_body_fault_on_every_nth_call_gives_the_rows_of_a_clean_run_on_both_apis() {
    let anchor = jiff::Timestamp::now();
    for api in ["defender", "graph"] {
        let clean = rows_under(&[], api, anchor);
        assert!(clean.len() >= 60, "{api}: {} rows", clean.len());
        for fault in [
            "cut-every=3",
            "reset-every=3",
            "stall-every=4",
            "truncate=2",
        ] {
            assert_eq!(rows_under(&[fault], api, anchor), clean, "{api} {fault}");
        }
    }
}

#[test]
fn a_seeded_mix_of_faults_on_20_percent_of_calls_gives_the_rows_of_a_clean_run_on_both_apis() {
    let anchor = jiff::Timestamp::now();
    for api in ["defender", "graph"] {
        let clean = rows_under(&[], api, anchor);
        assert_eq!(rows_under(&["mix=20"], api, anchor), clean, "{api}");
    }
}

#[test]
fn a_body_cut_short_on_every_call_fails_with_exit_3_naming_the_cut_and_the_fetches() {
    let host = Host::defender(&[]);
    let sim = simulator(&["cut-every=1"], jiff::Timestamp::now());
    let (run, rows) = detections(&host, &sim, "defender");
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(rows.is_empty(), "{rows:?}");
    assert!(
        run.stderr
            .contains("upstream error 200 IncompleteResponse: the answer was cut short after "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("; the page was fetched 5 times"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("hint: the service answered, but its answers kept arriving incomplete"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("could not be reached"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.stats().calls(), 5);
}

#[test]
fn a_get_whose_answer_is_cut_short_is_fetched_again_by_the_host_and_audited_as_cut() {
    let host = Host::defender(&[]);
    let sim = simulator(&["cut-every=2"], jiff::Timestamp::now());
    let config = host.config(&sim, "defender", TUNED);
    let audit = host.cache_dir().join("audit.jsonl");
    let audit_arg = audit.display().to_string();
    let args = |id: &str| {
        vec![
            "--config".to_string(),
            config.clone(),
            "run".into(),
            GET.into(),
            "-c".into(),
            "sim".into(),
            "-p".into(),
            format!("incident_id={id}"),
            "--audit-log".into(),
            audit_arg.clone(),
        ]
    };
    let first: Vec<String> = args("100003");
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    // Call 1 answers whole; call 2 is cut; call 3 answers whole again.
    assert_eq!(host.run(&first).code, 0);
    let second: Vec<String> = args("100004");
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let run = host.run(&second);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["incident"]["incidentId"], 100004);
    assert_eq!(sim.stats().calls(), 3);
    let records: Vec<Value> = std::fs::read_to_string(&audit)
        .expect("audit")
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line"))
        .collect();
    let reasons: Vec<&str> = records
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons.len(), 3, "{records:?}");
    assert_eq!(reasons[0], "");
    assert!(
        reasons[1].starts_with("was cut short after ") && reasons[1].contains(" of "),
        "{reasons:?}"
    );
    assert_eq!(reasons[2], "");
}
