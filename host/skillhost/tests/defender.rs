//! The three Defender skills against the simulator over loopback, on both APIs: filters, paging,
//! de-duplication, the detection rows, output formats, bad input and error guidance.

mod common;

use common::{Host, filters_seen, simulator};
use serde_json::{Map, Value, json};
use skillhost_runtime::capabilities::CollectRows;
use skillhost_runtime::limits::SandboxLimits;

const LIST: &str = "list_microsoft_defender_incidents";
const GET: &str = "get_microsoft_defender_incident";
const DETECTIONS: &str = "list_microsoft_defender_incidents_for_detections";

fn run_on(sim: &common::Simulator, api: &str, args: &[&str]) -> common::Run {
    let host = Host::defender(&[]);
    let config = host.config(sim, api, "[connections.sim.retry]\nbase_backoff_ms = 20");
    let mut full = vec!["--config", config.as_str(), "run"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-c", "sim"]);
    host.run(&full)
}

#[test]
fn the_filter_sent_follows_the_window_time_field_and_api() {
    let end = "end_time=2026-11-26T12:00:00Z";
    let cases: [(&str, &[&str], &str); 5] = [
        (
            "defender",
            &["-p", "duration=2", "-p", "duration_type=hours", "-p", end],
            "lastUpdateTime ge 2026-11-26T10:00:00Z and lastUpdateTime le 2026-11-26T12:00:00Z",
        ),
        (
            "defender",
            &[
                "-p",
                "duration=30",
                "-p",
                "duration_type=minutes",
                "-p",
                "time_field=createdTime",
                "-p",
                end,
            ],
            "createdTime ge 2026-11-26T11:30:00Z and createdTime le 2026-11-26T12:00:00Z",
        ),
        (
            "defender",
            &["-p", "duration=3", "-p", end],
            "lastUpdateTime ge 2026-11-23T12:00:00Z and lastUpdateTime le 2026-11-26T12:00:00Z",
        ),
        (
            "graph",
            &[
                "-p",
                "duration=1",
                "-p",
                "duration_type=days",
                "-p",
                "time_field=createdTime",
                "-p",
                end,
            ],
            "createdDateTime ge 2026-11-25T12:00:00Z and createdDateTime le 2026-11-26T12:00:00Z",
        ),
        (
            "graph",
            &[
                "-p",
                "start_time=2026-11-26T09:00:00+01:00",
                "-p",
                end,
                "-p",
                "status=InProgress",
                "-p",
                "assigned_to=kai.c@contoso.com",
            ],
            "lastUpdateDateTime ge 2026-11-26T08:00:00Z and lastUpdateDateTime le 2026-11-26T12:00:00Z and status eq 'inProgress' and assignedTo eq 'kai.c@contoso.com'",
        ),
    ];
    for (api, params, expected) in cases {
        let sim = simulator(3, &[]);
        let mut args = vec![LIST];
        args.extend_from_slice(params);
        let run = run_on(&sim, api, &args);
        assert_eq!(run.code, 0, "{params:?}: {}", run.stderr);
        assert_eq!(filters_seen(&sim), vec![expected.to_string()], "{params:?}");
        assert_eq!(run.json()["filter"], expected);
    }
}

#[test]
fn every_page_is_followed_across_page_boundaries() {
    for (incidents, pages) in [(0, 1), (1, 1), (100, 2), (101, 2), (1050, 11)] {
        let sim = simulator(incidents, &[]);
        let run = run_on(&sim, "defender", &[LIST]);
        assert_eq!(run.code, 0, "{incidents}: {}", run.stderr);
        let out = run.json();
        assert_eq!(
            (out["count"].clone(), out["pages"].clone()),
            (json!(incidents), json!(pages)),
            "{incidents}"
        );
        let ids: std::collections::BTreeSet<u64> = out["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["incidentId"].as_u64().unwrap())
            .collect();
        assert_eq!(ids.len(), incidents);
    }
}

#[test]
fn graph_pages_follow_next_links_at_fifty() {
    let sim = simulator(120, &[]);
    let run = run_on(&sim, "graph", &[LIST]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (run.json()["count"].clone(), run.json()["pages"].clone()),
        (json!(120), json!(3))
    );
    let seen = sim.stats().seen();
    let gets: Vec<&str> = seen
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path_and_query.as_str())
        .collect();
    assert!(gets[0].contains("$expand=alerts&$top=50"), "{}", gets[0]);
    assert!(
        gets[1].contains("%24skip=50"),
        "the second page came from the nextLink: {}",
        gets[1]
    );
}

#[test]
fn the_list_skill_lists_26_mb_of_realistic_graph_incidents_within_the_default_memory_cap() {
    let config = common::SimulatorConfig {
        incidents: 1900,
        detail: common::Detail::Realistic,
        rate_limits: false,
        ..common::SimulatorConfig::default()
    };
    let sim = common::Simulator::start(config, "127.0.0.1:0").unwrap();
    let run = run_on(&sim, "graph", &[LIST, "-p", "duration=3"]);
    // Before each listed incident's text gave back the room its growth left, the guest asked
    // for 64.6 MiB here and the run failed with exit 4.
    assert_eq!(run.code, 0, "{}", run.stderr);
    let result = run.json();
    assert_eq!(
        (
            result["count"].clone(),
            result["pages"].clone(),
            result["incidents"].as_array().map(Vec::len)
        ),
        (json!(1900), json!(38), Some(1900))
    );
}

#[test]
fn an_incident_that_moves_between_pages_is_counted_once_at_its_latest_version() {
    let sim = simulator(12, &["churn"]);
    let run = run_on(&sim, "defender", &[LIST, "-p", "page_size=5"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["count"], 12);
    let moved = out["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["incidentId"] == 100008)
        .unwrap();
    assert!(
        moved["lastUpdateTime"].as_str().unwrap() > "2026-11-27T00:00:00Z"
            || moved["lastUpdateTime"].as_str().unwrap()
                > out["filter"].as_str().unwrap()[18..].to_string().as_str()
    );

    let sim = simulator(12, &["churn"]);
    let run = run_on(
        &sim,
        "defender",
        &[DETECTIONS, "-p", "page_size=5", "-o", "json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["summary"]["incidents"], 12);
    let rows = out["rows"].as_array().unwrap();
    let versions: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter(|r| r["incident_id"] == "100008")
        .map(|r| r["incident_last_update_time"].as_str().unwrap())
        .collect();
    assert_eq!(
        versions.len(),
        1,
        "one version of the moved incident: {versions:?}"
    );
}

fn detections(sim: &common::Simulator, api: &str) -> (Vec<Value>, Value) {
    let run = run_on(sim, api, &[DETECTIONS, "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    (
        out["rows"].as_array().unwrap().clone(),
        out["summary"].clone(),
    )
}

#[test]
fn a_redirected_incident_gives_one_row_with_null_alert_columns() {
    let sim = simulator(12, &[]);
    let (rows, summary) = detections(&sim, "defender");
    let redirected: Vec<&Value> = rows
        .iter()
        .filter(|r| r["incident_status"] == "Redirected")
        .collect();
    assert_eq!(
        redirected.len(),
        2,
        "seed 1 has two redirected incidents among 12"
    );
    for row in redirected {
        assert!(row["incident_redirect_id"].is_string());
        for (column, value) in row.as_object().unwrap() {
            if column.starts_with("alert_") {
                assert_eq!(value, &Value::Null, "{column}");
            }
        }
    }
    assert_eq!(summary["incidents"], 12);
    assert_eq!(summary["rows"], json!(rows.len()));
    let columns: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(columns.len(), 24);
    assert_eq!(
        (columns[0], columns[23]),
        ("incident_id", "alert_mitre_techniques")
    );
}

#[test]
fn the_same_data_through_both_apis_gives_identical_rows() {
    let sim = simulator(60, &[]);
    let (legacy, legacy_summary) = detections(&sim, "defender");
    let (graph, graph_summary) = detections(&sim, "graph");
    assert!(legacy.len() > 60);
    assert_eq!(legacy, graph);
    assert_eq!(legacy_summary["api"], "defender");
    assert_eq!(graph_summary["api"], "graph");
    assert_eq!(legacy_summary["rows"], graph_summary["rows"]);
}

#[test]
fn limit_and_page_size_bound_the_run() {
    let sim = simulator(20, &[]);
    let run = run_on(
        &sim,
        "defender",
        &[LIST, "-p", "limit=7", "-p", "page_size=3"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (run.json()["count"].clone(), run.json()["pages"].clone()),
        (json!(7), json!(3))
    );
    let sim = simulator(20, &[]);
    let run = run_on(
        &sim,
        "graph",
        &[
            DETECTIONS,
            "-p",
            "limit=4",
            "-p",
            "page_size=2",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["summary"]["incidents"], 4);
    assert_eq!(run.json()["summary"]["pages"], 2);
}

#[test]
fn get_returns_one_incident_with_its_alerts_on_both_apis() {
    let sim = simulator(12, &[]);
    let legacy = run_on(&sim, "defender", &[GET, "-p", "incident_id=100004"]);
    assert_eq!(legacy.code, 0, "{}", legacy.stderr);
    let incident = &legacy.json()["incident"];
    assert_eq!(incident["incidentId"], 100004);
    assert!(!incident["alerts"].as_array().unwrap().is_empty());
    assert!(incident["alerts"][0]["entities"].is_array());
    let graph = run_on(&sim, "graph", &[GET, "-p", "incident_id=100004"]);
    assert_eq!(graph.code, 0, "{}", graph.stderr);
    assert_eq!(graph.json()["incident"]["id"], "100004");
    assert_eq!(
        graph.json()["incident"]["alerts"].as_array().unwrap().len(),
        incident["alerts"].as_array().unwrap().len()
    );
}

#[test]
fn bad_input_exits_2_with_a_clear_message_and_sends_no_request() {
    let cases: [(&str, &[&str], &str); 13] = [
        (
            LIST,
            &["-p", "duration=0"],
            "parameter `duration` is 0, outside the allowed range 1..=1000000",
        ),
        (
            LIST,
            &["-p", "duration=-1"],
            "parameter `duration` is -1, outside the allowed range 1..=1000000",
        ),
        (
            LIST,
            &["-p", "duration=1.5"],
            "parameter `duration` must be an integer, not 1.5",
        ),
        (
            LIST,
            &["-p", "duration=abc"],
            "parameter `duration` must be an integer, not abc",
        ),
        (
            LIST,
            &["-p", "duration=1000000", "-p", "duration_type=days"],
            "duration 1000000 days reaches back before 1970; use a shorter window",
        ),
        (
            LIST,
            &["-p", "duration_type=weeks"],
            "parameter `duration_type` does not accept \"weeks\"; allowed values: minutes, hours, days",
        ),
        (
            DETECTIONS,
            &["-p", "time_field=closedTime"],
            "parameter `time_field` does not accept \"closedTime\"; allowed values: lastUpdateTime, createdTime",
        ),
        (
            LIST,
            &["-p", "start_time=2026-13-01T00:00:00Z"],
            "parameter `start_time` must be an RFC 3339 timestamp",
        ),
        (
            LIST,
            &[
                "-p",
                "start_time=2026-11-27T00:00:00Z",
                "-p",
                "end_time=2026-11-26T00:00:00Z",
            ],
            "start_time 2026-11-27T00:00:00Z is after end_time 2026-11-26T00:00:00Z",
        ),
        (
            GET,
            &["-p", "incident_id=abc"],
            "incident_id must be a positive integer on the Defender API, not \"abc\"",
        ),
        (
            LIST,
            &["-p", "status=Open"],
            "parameter `status` does not accept \"Open\"; allowed values: Active, InProgress, Resolved, Redirected",
        ),
        (
            DETECTIONS,
            &["-p", "assigned_to=x' or 1 eq 1 or 'y"],
            "\"x' or 1 eq 1 or 'y\" cannot be used in a filter",
        ),
        (
            DETECTIONS,
            &["-p", "page_size=101"],
            "parameter `page_size` is 101, outside the allowed range 1..=100",
        ),
    ];
    for (skill, params, expected) in cases {
        let sim = simulator(3, &[]);
        let mut args = vec![skill];
        args.extend_from_slice(params);
        let run = run_on(&sim, "defender", &args);
        assert_eq!(run.code, 2, "{params:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{params:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{params:?}");
        assert_eq!(
            (sim.stats().tokens(), sim.stats().calls()),
            (0, 0),
            "{params:?} sent a request"
        );
    }
}

#[test]
fn upstream_errors_carry_the_troubleshooting_guidance_and_exit_3() {
    let sim = simulator(3, &[]);
    let run = run_on(&sim, "defender", &[GET, "-p", "incident_id=999"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("not found: incident 999 was not found"),
        "{}",
        run.stderr
    );

    let no_roles = common::SimulatorConfig {
        incidents: 3,
        roles: vec![],
        ..common::SimulatorConfig::default()
    };
    let sim = common::Simulator::start(no_roles, "127.0.0.1:0").unwrap();
    let run = run_on(&sim, "graph", &[DETECTIONS]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "forbidden: the application lacks the SecurityIncident.Read.All permission (403)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("have an administrator grant admin consent"),
        "{}",
        run.stderr
    );

    let sim = simulator(3, &["deny-tokens"]);
    let run = run_on(&sim, "defender", &[DETECTIONS]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("unauthorized: the defender API rejected the token (401)"),
        "{}",
        run.stderr
    );

    let sim = simulator(3, &["error=always"]);
    let run = run_on(&sim, "defender", &[DETECTIONS]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("upstream error 500 InternalServerError"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("hint: the service had a problem; retry later"),
        "{}",
        run.stderr
    );
}

#[test]
fn truncated_pages_are_fetched_again() {
    let sim = simulator(12, &["truncate=2"]);
    let run = run_on(&sim, "defender", &[LIST]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["count"], 12);
    assert_eq!(sim.stats().calls(), 3);
}

/// Splits CSV text (RFC 4180) into records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

#[test]
fn ndjson_and_csv_round_trip_to_the_json_rows() {
    let sim = simulator(15, &[]);
    let (rows, _) = detections(&sim, "defender");

    let ndjson = run_on(&sim, "defender", &[DETECTIONS, "-o", "ndjson"]);
    assert_eq!(ndjson.code, 0, "{}", ndjson.stderr);
    let parsed: Vec<Value> = ndjson
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed, rows);
    let summary: Value = serde_json::from_str(ndjson.stderr.trim()).unwrap();
    assert_eq!(summary["rows"], json!(rows.len()));

    let csv = run_on(&sim, "defender", &[DETECTIONS, "-o", "csv"]);
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    let records = parse_csv(&csv.stdout);
    let columns: Vec<String> = rows[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(records[0], columns);
    assert_eq!(records.len(), rows.len() + 1);
    for (record, row) in records[1..].iter().zip(&rows) {
        let back: Map<String, Value> = columns
            .iter()
            .zip(record)
            .map(|(c, cell)| {
                let original = &row[c];
                let value = match original {
                    Value::Null => {
                        assert_eq!(cell, "");
                        Value::Null
                    }
                    Value::String(_) => Value::String(cell.clone()),
                    _ => serde_json::from_str(cell).unwrap(),
                };
                (c.clone(), value)
            })
            .collect();
        assert_eq!(&Value::Object(back), row);
    }
}

#[test]
fn the_demo_prints_the_detections_table() {
    let host = Host::defender(&[]);
    let run = host.run(&["demo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("incident_id  incident_name "),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("-----------  ----"), "{}", lines[1]);
    let summary: Value = serde_json::from_str(run.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(summary["incidents"], 12);
    assert_eq!(lines.len() as u64, 2 + summary["rows"].as_u64().unwrap());
}

async fn peak_memory(incidents: usize) -> usize {
    let config = common::SimulatorConfig {
        incidents,
        rate_limits: false,
        ..common::SimulatorConfig::default()
    };
    let sim = common::Simulator::start(config, "127.0.0.1:0").unwrap();
    let host = Host::defender(&[]);
    let unpaced = "[connections.sim.pacing]\nper_minute = 100000\nper_hour = 1000000";
    let connection = host.in_process_connection(&sim, "defender", unpaced);
    let in_process = host.in_process().await;
    let prepared = in_process
        .prepare(
            DETECTIONS,
            Map::new(),
            Some(connection),
            SandboxLimits::default(),
        )
        .unwrap();
    let rows = CollectRows::default();
    let done = in_process
        .invoke(prepared, Box::new(rows.clone()))
        .await
        .unwrap();
    assert_eq!(
        done.output.into_value().unwrap()["incidents"],
        json!(incidents)
    );
    done.peak_memory
}

#[tokio::test]
async fn detections_guest_memory_stays_flat_from_100_to_10000_incidents() {
    let small = peak_memory(100).await;
    let medium = peak_memory(1_000).await;
    let large = peak_memory(10_000).await;
    eprintln!("peak guest memory: 100 -> {small}, 1000 -> {medium}, 10000 -> {large}");
    assert!(
        large as f64 <= small as f64 * 1.2,
        "100 incidents: {small} bytes, 10,000: {large} bytes"
    );
}
