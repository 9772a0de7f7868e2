//! `skillhost serve` end to end: the real binary over loopback HTTP, its skills in a throwaway
//! folder, the built-in simulator upstream. Callers and keys (401), tenant isolation (404 with
//! nothing sent upstream), one pacing budget for concurrent invocations (every row, no 429),
//! hostile guests beside normal ones, drop-in components, draining on SIGTERM, request
//! validation, metrics, the audit log, and the refusal of plain HTTP off loopback.
//!
//! Every wait is a failure timeout ([`common::PATIENCE`]), never a measurement: the tests assert
//! what happened, not how fast. (The one pause is a slow client's reading pace.)

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{
    Faults, Host, PATIENCE, Response, SECRET_VAR, SecretRef, Serve, Simulator, SimulatorConfig,
    SlowReader,
};
use serde_json::{Value, json};

const DETECTIONS: &str = "list_microsoft_defender_incidents_for_detections";
const GET: &str = "get_microsoft_defender_incident";

/// Caller `soc`: tenant `acme`, its key in a file.
const SOC_KEY: &str = "soc-key-3f9a1c7e5b2d48a6c0e2";
/// Caller `mssp`: tenant `globex`, its key in an environment variable.
const MSSP_KEY: &str = "mssp-key-8e2b4d6f0a1c3e5b7d9f";
const MSSP_KEY_VAR: &str = "SKILLHOST_TEST_MSSP_KEY";

/// A host with the Defender skills and `components`, the connections' secret and `mssp`'s key
/// in its environment.
fn defender_host(components: &[&str]) -> Host {
    Host::defender(components).env(MSSP_KEY_VAR, MSSP_KEY)
}

/// A host with only `components`.
fn host_with(components: &[&str]) -> Host {
    Host::with(components).env(MSSP_KEY_VAR, MSSP_KEY)
}

/// `[connections.NAME]` of tenant `tenant` on `sim` (Defender API), `extra` inside its table.
fn connection(sim: &Simulator, name: &str, tenant: &str, extra: &str) -> String {
    sim.connection_toml(name, tenant, "defender", SecretRef::Env(SECRET_VAR), extra)
}

/// Writes `NAME.toml` in the host's cache folder: callers `soc` (acme) and `mssp` (globex),
/// then `connections`; returns its path for `--config`.
fn write_config(host: &Host, name: &str, connections: &[String]) -> String {
    let key_file = host.cache_dir().join("soc.key");
    std::fs::write(&key_file, SOC_KEY).expect("write key");
    let mut text = format!(
        "[callers.soc]\nkey = {{ file = {:?} }}\ntenants = [\"acme\"]\n\n\
         [callers.mssp]\nkey = {{ env = \"{MSSP_KEY_VAR}\" }}\ntenants = [\"globex\"]\n\n",
        key_file.display().to_string()
    );
    for c in connections {
        text.push_str(c);
        text.push('\n');
    }
    let path = host.cache_dir().join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

/// A simulator with `incidents`, the published rate limits at `time_scale` (or none), data
/// generated back from `anchor`, and `faults`.
fn sim(
    incidents: usize,
    rate_limits: bool,
    time_scale: f64,
    anchor: jiff::Timestamp,
    faults: &[&str],
) -> Simulator {
    let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
    Simulator::start(
        SimulatorConfig {
            incidents,
            rate_limits,
            time_scale,
            anchor: Some(anchor),
            faults: Faults::parse(&faults).expect("faults"),
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0",
    )
    .expect("simulator")
}

/// What `echo` answers to `{"message": message}`, byte for byte.
fn echo_body(message: &str) -> String {
    format!(
        "{{\"echo\":\"{}\",\"input\":{{\"message\":\"{message}\",\"repeat\":1,\"mode\":\"lower\"}}}}\n",
        message.to_lowercase()
    )
}

/// Asserts an error answer: its status, `error.code`, and the JSON content type.
fn assert_error(response: &Response, status: u16, code: &str, context: &str) {
    assert_eq!(response.status, status, "{context}: {}", response.text());
    assert_eq!(
        response.error_code(),
        code,
        "{context}: {}",
        response.text()
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{context}"
    );
}

/// The rows and the summary of a complete NDJSON answer; panics unless it is a 200 NDJSON
/// answer whose last line is `{"summary": ...}` and whose summary counts exactly its rows.
fn rows_and_summary(response: &Response, context: &str) -> (Vec<Value>, Value) {
    assert_eq!(response.status, 200, "{context}: {}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/x-ndjson"),
        "{context}"
    );
    let mut lines = response.ndjson();
    let last = lines.pop().unwrap_or_else(|| panic!("{context}: empty"));
    let summary = last
        .get("summary")
        .unwrap_or_else(|| panic!("{context}: the last line is not a summary: {last}"))
        .clone();
    assert_eq!(
        summary["rows"].as_u64(),
        Some(lines.len() as u64),
        "{context}: {summary}"
    );
    (lines, summary)
}

/// Polls `probe` until it returns `Some`, up to [`PATIENCE`]; panics with `what` otherwise.
fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Raises its flag when dropped, so that worker threads stop even when the test fails first.
struct RaiseOnDrop<'a>(&'a AtomicBool);

impl Drop for RaiseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The `/metrics` text.
fn metrics(serve: &Serve) -> String {
    let response = serve.get("/metrics", Some(SOC_KEY));
    assert_eq!(response.status, 200, "{}", response.text());
    response.text()
}

/// Puts `bytes` in `dir` as `file` the way an operator should: a temporary name, then one
/// rename, so a scan never sees half a file.
fn drop_in(dir: &std::path::Path, file: &str, bytes: &[u8]) {
    let temp = dir.join(format!(".{file}.partial"));
    std::fs::write(&temp, bytes).expect("write drop-in");
    std::fs::rename(&temp, dir.join(file)).expect("rename drop-in");
}

fn skills_listing(serve: &Serve) -> Value {
    let response = serve.get("/v1/skills", Some(SOC_KEY));
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

fn ids(listing: &Value) -> Vec<String> {
    listing["skills"]
        .as_array()
        .expect("skills")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn a_request_without_a_key_or_with_a_wrong_key_is_401_unauthenticated() {
    let host = host_with(&["echo"]);
    let config = write_config(&host, "serve", &[]);
    let serve = host.serve(&["--config", &config]);
    let invoke_body = json!({"input": {"message": "Hi"}}).to_string();
    let wrong = "soc-key-3f9a1c7e5b2d48a6c0e3";
    let cases: [(&str, &str, Option<String>); 5] = [
        ("GET", "/v1/skills", None),
        ("POST", "/v1/skills/echo/invoke", None),
        ("GET", "/v1/skills", Some(format!("Bearer {wrong}"))),
        (
            "POST",
            "/v1/skills/echo/invoke",
            Some(format!("Bearer {wrong}")),
        ),
        // The right key, but not as a bearer token.
        ("GET", "/metrics", Some(format!("Basic {SOC_KEY}"))),
    ];
    for (method, path, authorization) in cases {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &authorization {
            headers.push(("Authorization", a.as_str()));
        }
        let body = (method == "POST").then_some(invoke_body.as_bytes());
        let response = common::http(serve.port, method, path, &headers, body).expect("answer");
        let context = format!("{method} {path} with {authorization:?}");
        assert_error(&response, 401, "unauthenticated", &context);
        assert_eq!(
            response.header("www-authenticate"),
            Some("Bearer realm=\"skillhost\""),
            "{context}"
        );
    }
    // The right key opens the same doors.
    assert_eq!(serve.get("/v1/skills", Some(SOC_KEY)).status, 200);
    let echoed = serve.invoke("echo", SOC_KEY, &json!({"input": {"message": "Hi"}}));
    assert_eq!(echoed.status, 200, "{}", echoed.text());
    assert_eq!(echoed.text(), echo_body("Hi"));
}

#[test]
fn a_client_that_pipelines_requests_and_never_reads_is_disconnected_after_the_stall_timeout() {
    use std::io::{Read, Write};
    let host = host_with(&["echo"]);
    let config = write_config(&host, "serve", &[]);
    let serve = host.serve(&["--config", &config, "--stall-timeout", "1s"]);
    // 200,000 requests without a key: their 401 answers (tens of MB) are far more than the two
    // sockets' buffers hold, so the server's writes find no room while nobody reads.
    const REQUESTS: usize = 200_000;
    let stream = std::net::TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
    let mut writer = stream.try_clone().expect("clone");
    let sending = std::thread::spawn(move || {
        let request = b"GET /v1/skills HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
        for _ in 0..REQUESTS / 1000 {
            // The server stops reading once its answers are stuck, then closes the connection.
            if writer.write_all(&request).is_err() {
                break;
            }
        }
    });
    // Nobody reads for four times the stall timeout.
    std::thread::sleep(Duration::from_secs(4));
    let mut reader = stream;
    reader.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut answers = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answers.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection neither ended nor went on: {e}"),
        }
    }
    sending.join().expect("sender");
    let statuses = answers
        .windows(12)
        .filter(|w| *w == b"HTTP/1.1 401")
        .count();
    assert!(
        statuses < REQUESTS,
        "all {REQUESTS} requests were answered: the stalled connection was kept"
    );
    // The server is well and serves others.
    assert_eq!(serve.get("/v1/skills", Some(SOC_KEY)).status, 200);
}

#[test]
fn a_skills_log_line_in_serve_says_which_callers_run_wrote_it_and_stays_escaped() {
    let host = host_with(&["log-flood"]);
    let config = write_config(&host, "serve", &[]);
    let serve = host.serve(&["--config", &config]);
    let answer = serve.invoke("log-flood", SOC_KEY, &json!({"input": {"mode": "forge"}}));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let line = serve.wait_for_stderr("the skill's log line", |l| l.contains("fine\\n"));
    assert!(
        line.contains("invocation{tenant=caller:soc caller=soc}"),
        "{line}"
    );
    assert!(
        line.contains("fine\\nskillhost: connection `prod` is ready\\r\\e[2J"),
        "{line}"
    );
}

#[test]
fn a_caller_naming_another_tenants_connection_is_404_like_a_missing_one_and_that_upstream_gets_no_request()
 {
    let anchor = jiff::Timestamp::now();
    let acme = sim(12, true, 1.0, anchor, &[]);
    let globex = sim(12, true, 1.0, anchor, &[]);
    let host = defender_host(&[]);
    let config = write_config(
        &host,
        "serve",
        &[
            connection(&acme, "acme-sim", "acme", ""),
            connection(&globex, "globex-sim", "globex", ""),
        ],
    );
    let serve = host.serve(&["--config", &config]);
    let cases = [
        (
            SOC_KEY,
            "soc",
            "globex-sim",
            GET,
            json!({"incident_id": "100003"}),
        ),
        (
            SOC_KEY,
            "soc",
            "globex-sim",
            DETECTIONS,
            json!({"duration": 30}),
        ),
        (
            MSSP_KEY,
            "mssp",
            "acme-sim",
            GET,
            json!({"incident_id": "100003"}),
        ),
    ];
    for (key, caller, connection, skill, input) in cases {
        let response = serve.invoke(
            skill,
            key,
            &json!({"connection": connection, "input": input}),
        );
        let context = format!("{caller} → {connection} ({skill})");
        assert_error(&response, 404, "not_found", &context);
        assert_eq!(
            response.json()["error"]["message"],
            format!("caller `{caller}` has no connection named `{connection}`"),
            "{context}"
        );
    }
    for (name, upstream) in [("acme", &acme), ("globex", &globex)] {
        let stats = upstream.stats();
        assert_eq!(stats.tokens(), 0, "{name}: token requests");
        assert_eq!(stats.calls(), 0, "{name}: API calls");
        assert!(stats.seen().is_empty(), "{name}: {:?}", stats.seen());
    }
    // The same connection works for its own tenant's caller, and the counters see that.
    let own = serve.invoke(
        GET,
        MSSP_KEY,
        &json!({"connection": "globex-sim", "input": {"incident_id": "100003"}}),
    );
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(own.json()["incident"]["incidentId"], 100003);
    assert_eq!(globex.stats().calls(), 1);
    assert_eq!(acme.stats().calls(), 0);
}

#[test]
fn six_concurrent_detection_runs_share_one_pacing_budget_and_each_gets_every_row_without_a_429() {
    const INCIDENTS: usize = 1500;
    const RUNS: usize = 6;
    let anchor = jiff::Timestamp::now();
    // The published limits, a minute lasting one second; the connection paces at the same scale.
    let limited = sim(INCIDENTS, true, 60.0, anchor, &[]);
    // The same data without limits, for the reference run of the CLI.
    let twin = sim(INCIDENTS, false, 1.0, anchor, &[]);
    let host = defender_host(&[]);
    let input = json!({"page_size": 10, "duration": 30});

    let reference_config = write_config(
        &host,
        "reference",
        &[connection(
            &twin,
            "sim",
            "acme",
            "[connections.sim.pacing]\nper_minute = 100000\nper_hour = 1000000",
        )],
    );
    let reference = host.run(&[
        "--config",
        &reference_config,
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
    assert_eq!(reference.code, 0, "{}", reference.stderr);
    let mut expected: Vec<String> = reference
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("row").to_string())
        .collect();
    expected.sort();
    assert!(expected.len() > INCIDENTS, "{} rows", expected.len());
    let calls_per_run = twin.stats().calls();

    let config = write_config(
        &host,
        "serve",
        &[connection(
            &limited,
            "sim",
            "acme",
            "[connections.sim.pacing]\ntime_scale = 60",
        )],
    );
    let serve = host.serve(&["--config", &config]);
    let answers: Vec<Response> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..RUNS)
            .map(|_| {
                s.spawn(|| {
                    serve.invoke(
                        DETECTIONS,
                        SOC_KEY,
                        &json!({"connection": "sim", "input": input}),
                    )
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("run")).collect()
    });
    for (i, answer) in answers.iter().enumerate() {
        let (rows, summary) = rows_and_summary(answer, &format!("run {i}"));
        assert_eq!(summary["incidents"], INCIDENTS, "run {i}: {summary}");
        let mut rows: Vec<String> = rows.iter().map(Value::to_string).collect();
        rows.sort();
        assert_eq!(rows.len(), expected.len(), "run {i}");
        assert!(rows == expected, "run {i}: the rows differ from the CLI's");
    }
    let stats = limited.stats();
    let throttled = stats.throttled.load(Ordering::SeqCst);
    // One token for all six, and every page fetched once (plus one retry per 429, if any).
    assert_eq!(stats.tokens(), 1, "token requests");
    assert_eq!(
        stats.calls() - throttled,
        RUNS as u64 * calls_per_run,
        "API calls"
    );
    let seen = stats.seen();
    let at: Vec<usize> = (0..seen.len()).filter(|&i| seen[i].status == 429).collect();
    assert_eq!(
        throttled,
        0,
        "the simulator answered 429 to requests number {at:?} of {}",
        seen.len()
    );
}

#[test]
fn hostile_invocations_get_their_error_codes_while_concurrent_normal_ones_succeed_and_the_server_stays_healthy()
 {
    let host = host_with(&["echo", "noop", "spin", "memory-hog", "output-flood"]);
    let config = write_config(&host, "serve", &[]);
    let serve = host.serve(&["--config", &config, "--max-running-per-tenant", "16"]);
    let hostile_done = AtomicBool::new(false);
    let normal_ok = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let _done = RaiseOnDrop(&hostile_done);
        let normal: Vec<_> = (0..3)
            .map(|worker| {
                let serve = &serve;
                let hostile_done = &hostile_done;
                let normal_ok = &normal_ok;
                s.spawn(move || {
                    let mut n = 0;
                    // At least a few rounds, and on until every hostile invocation answered.
                    while n < 5 || !hostile_done.load(Ordering::SeqCst) {
                        let message = format!("Hello {worker} {n}");
                        let echoed =
                            serve.invoke("echo", SOC_KEY, &json!({"input": {"message": message}}));
                        assert_eq!(echoed.status, 200, "{}", echoed.text());
                        assert_eq!(echoed.text(), echo_body(&message));
                        let noop = serve.invoke("noop", SOC_KEY, &json!({}));
                        assert_eq!(noop.status, 200, "{}", noop.text());
                        assert_eq!(noop.text(), "{}\n");
                        normal_ok.fetch_add(2, Ordering::SeqCst);
                        n += 1;
                    }
                })
            })
            .collect();
        let hostile: Vec<_> = [
            ("spin", json!({"limits": {"timeout": "1s"}})),
            ("spin", json!({"limits": {"timeout": "1s"}})),
            ("memory-hog", json!({"limits": {"max_memory": "16M"}})),
            ("memory-hog", json!({"limits": {"max_memory": "16M"}})),
            (
                "output-flood",
                json!({"input": {"mode": "result", "count": 1_000_000}, "limits": {"max_output": "1M"}}),
            ),
            (
                "output-flood",
                json!({"input": {"mode": "rows", "count": 1_000_000}, "limits": {"max_output": "1M"}}),
            ),
        ]
        .into_iter()
        .map(|(skill, body)| {
            let serve = &serve;
            s.spawn(move || (skill, body.clone(), serve.invoke(skill, SOC_KEY, &body)))
        })
        .collect();
        let answers: Vec<_> = hostile
            .into_iter()
            .map(|h| h.join().expect("hostile"))
            .collect();
        hostile_done.store(true, Ordering::SeqCst);
        for (skill, body, answer) in &answers {
            let context = format!("{skill} {body}");
            match (*skill, body["input"]["mode"].as_str()) {
                ("spin", _) => {
                    assert_error(answer, 504, "timeout", &context);
                    assert_eq!(
                        answer.json()["error"]["message"],
                        "skill `spin` did not finish within its deadline of 1 s"
                    );
                }
                ("memory-hog", _) => {
                    assert_error(answer, 422, "sandbox", &context);
                    assert!(
                        answer.json()["error"]["message"]
                            .as_str()
                            .unwrap()
                            .starts_with("skill `memory-hog` exceeded its memory limit of 16 MiB"),
                        "{}",
                        answer.text()
                    );
                }
                ("output-flood", Some("result")) => {
                    assert_error(answer, 422, "sandbox", &context);
                    assert_eq!(
                        answer.json()["error"]["message"],
                        "skill `output-flood` produced more than its output limit of 1 MiB"
                    );
                }
                _ => {
                    // Rows went out before the cap: a 200 stream whose last line is the error.
                    assert_eq!(answer.status, 200, "{context}: {}", answer.text());
                    let mut lines = answer.ndjson();
                    let last = lines.pop().expect("a last line");
                    assert_eq!(last["error"]["code"], "sandbox", "{context}: {last}");
                    assert_eq!(
                        last["error"]["message"],
                        "skill `output-flood` produced more than its output limit of 1 MiB"
                    );
                    assert!(!lines.is_empty(), "{context}: no row before the cap");
                    assert!(lines.iter().all(|l| *l == json!({})), "{context}");
                }
            }
        }
        for worker in normal {
            worker.join().expect("normal invocations");
        }
    });
    assert!(normal_ok.load(Ordering::SeqCst) >= 30);
    let health = serve.get("/healthz", None);
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let ready = serve.get("/readyz", None);
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["status"], "ready");
    let echoed = serve.invoke("echo", SOC_KEY, &json!({"input": {"message": "After"}}));
    assert_eq!(echoed.text(), echo_body("After"));
}

#[test]
fn a_row_stream_stops_at_max_output_bytes_like_the_clis_ndjson() {
    let host = host_with(&["output-flood"]);
    // `{}` rows: two bytes each as the skill emits them, three as NDJSON lines.
    let cli = host.run(&[
        "run",
        "output-flood",
        "-p",
        "mode=rows",
        "-p",
        "count=1000000",
        "-o",
        "ndjson",
        "--max-output",
        "1M",
    ]);
    assert_eq!(cli.code, 4, "{}", cli.stderr);
    assert!(cli.stdout.len() <= 1 << 20, "{} bytes", cli.stdout.len());
    let cli_rows = cli.stdout.lines().filter(|l| *l == "{}").count();
    let config = write_config(&host, "serve", &[]);
    let serve = host.serve(&["--config", &config, "--max-output", "1M"]);
    let answer = serve.invoke(
        "output-flood",
        SOC_KEY,
        &json!({"input": {"mode": "rows", "count": 1_000_000}}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    let (rows, last) = text
        .trim_end_matches('\n')
        .rsplit_once('\n')
        .expect("rows, then a last line");
    let last: Value = serde_json::from_str(last).expect("last line");
    assert_eq!(last["error"]["code"], "sandbox", "{last}");
    assert_eq!(
        last["error"]["message"],
        "skill `output-flood` produced more than its output limit of 1 MiB",
        "{last}"
    );
    assert!(rows.lines().all(|l| l == "{}"), "a row cut in the middle");
    let rows_bytes = rows.len() + 1;
    assert!(
        rows_bytes <= 1 << 20,
        "{rows_bytes} bytes of rows ({} rows) sent under --max-output 1M; the CLI printed {} \
         bytes ({cli_rows} whole rows)",
        rows.lines().count(),
        cli.stdout.len(),
    );
    // Every whole row that fits: three bytes a line. (The CLI's printer stops at a buffer's
    // granularity, a few rows short of that at most.)
    assert_eq!(rows.lines().count(), (1 << 20) / 3);
    assert!(cli_rows <= (1 << 20) / 3, "{cli_rows}");
}

#[test]
fn a_component_dropped_in_while_invocations_run_is_served_without_a_failed_request() {
    let host = host_with(&["echo"]);
    let config = write_config(&host, "serve", &[]);
    let serve = host.serve(&["--config", &config, "--rescan-interval", "200ms"]);
    assert_eq!(ids(&skills_listing(&serve)), ["echo"]);
    let stop = AtomicBool::new(false);
    let answered = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        let _stop = RaiseOnDrop(&stop);
        for worker in 0..3 {
            let (serve, stop, answered, failures) = (&serve, &stop, &answered, &failures);
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let message = format!("Drop {worker} {n}");
                    let body = json!({"input": {"message": message}}).to_string();
                    match serve.try_request(
                        "POST",
                        "/v1/skills/echo/invoke",
                        Some(SOC_KEY),
                        Some(body.as_bytes()),
                    ) {
                        Ok(r) if r.status == 200 && r.text() == echo_body(&message) => {}
                        Ok(r) => {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("{}: {}", r.status, r.text()))
                        }
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                    n += 1;
                }
            });
        }
        eventually("the first answers", || {
            (answered.load(Ordering::SeqCst) >= 6).then_some(())
        });
        let noop = std::fs::read(common::component("noop")).expect("noop component");
        drop_in(host.skills_dir(), "noop.wasm", &noop);
        let listing = eventually("noop in GET /v1/skills", || {
            let listing = skills_listing(&serve);
            ids(&listing)
                .contains(&"noop".to_string())
                .then_some(listing)
        });
        assert_eq!(ids(&listing), ["echo", "noop"]);
        assert_eq!(listing["refused"], json!([]));
        let invoked = serve.invoke("noop", SOC_KEY, &json!({}));
        assert_eq!((invoked.status, invoked.text().as_str()), (200, "{}\n"));
        // Invocations keep running past the swap.
        let seen = answered.load(Ordering::SeqCst);
        eventually("answers after the swap", || {
            (answered.load(Ordering::SeqCst) >= seen + 6).then_some(())
        });
        stop.store(true, Ordering::SeqCst);
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );
}

#[test]
fn a_broken_drop_in_is_listed_as_refused_with_its_reason_and_never_replaces_the_working_version() {
    let host = host_with(&["echo"]);
    let config = write_config(&host, "serve", &[]);
    let serve = host.serve(&["--config", &config, "--rescan-interval", "200ms"]);
    let before = serve.get("/v1/skills/echo", Some(SOC_KEY)).json();
    let digest = before["digest"].as_str().expect("digest").to_string();
    let garbage = b"this is not a component";
    // Over the working version, under a new name, and a component that bombs its vetting.
    drop_in(host.skills_dir(), "echo.wasm", garbage);
    drop_in(host.skills_dir(), "garbage.wasm", garbage);
    let bomb = std::fs::read(common::component("memory-bomb")).expect("memory-bomb component");
    drop_in(host.skills_dir(), "memory_bomb.wasm", &bomb);
    let listing = eventually("three refused files in GET /v1/skills", || {
        let listing = skills_listing(&serve);
        (listing["refused"].as_array().map_or(0, Vec::len) == 3).then_some(listing)
    });
    let refused: BTreeMap<String, String> = listing["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file"].as_str().expect("file").to_string(),
                r["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect();
    let path = |f: &str| host.skills_dir().join(f).display().to_string();
    let not_a_component =
        "is not a WebAssembly component (bad magic header); skills are built for wasm32-wasip2";
    assert_eq!(
        refused.get(&path("echo.wasm")).map(String::as_str),
        Some(not_a_component),
        "{refused:#?}"
    );
    assert_eq!(
        refused.get(&path("garbage.wasm")).map(String::as_str),
        Some(not_a_component),
        "{refused:#?}"
    );
    let bomb_reason = refused
        .get(&path("memory_bomb.wasm"))
        .unwrap_or_else(|| panic!("{refused:#?}"));
    assert!(
        bomb_reason.contains("41 Wasm linear memories"),
        "{bomb_reason}"
    );
    // The working version stays in service, unchanged, and answers.
    assert_eq!(ids(&listing), ["echo"]);
    let after = serve.get("/v1/skills/echo", Some(SOC_KEY)).json();
    assert_eq!(after["digest"], digest.as_str());
    let echoed = serve.invoke("echo", SOC_KEY, &json!({"input": {"message": "Still"}}));
    assert_eq!(echoed.status, 200, "{}", echoed.text());
    assert_eq!(echoed.text(), echo_body("Still"));
    let ready = serve.get("/readyz", None);
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.json(),
        json!({"status": "ready", "skills": 1, "refused": 3})
    );
}

/// Starts `n` detections invocations on connection `sim`, whose simulator answers slowly
/// (a `slow=MS` fault), and returns once all `n` reached it: they are running, in flight on the
/// server, until the simulator answers.
fn start_slow_detections<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    serve: &'s Serve,
    upstream: &'s Simulator,
    n: usize,
) -> Vec<std::thread::ScopedJoinHandle<'s, Result<Response, String>>> {
    let body = json!({"connection": "sim", "input": {"duration": 30}}).to_string();
    let handles = (0..n)
        .map(|_| {
            let body = body.clone();
            scope.spawn(move || {
                serve.try_request(
                    "POST",
                    &format!("/v1/skills/{DETECTIONS}/invoke"),
                    Some(SOC_KEY),
                    Some(body.as_bytes()),
                )
            })
        })
        .collect();
    eventually("every invocation at the simulator", || {
        (upstream.stats().calls() == n as u64).then_some(())
    });
    handles
}

/// Asserts that every answer of the detections invocations of [`start_slow_detections`] came
/// whole (12 incidents, every row, the summary last), listing every one that did not.
fn assert_complete(answers: &[Result<Response, String>], serve: &Serve) {
    let problems: Vec<String> = answers
        .iter()
        .enumerate()
        .filter_map(|(i, answer)| {
            let why = match answer {
                Err(e) => e.clone(),
                Ok(r) if r.status != 200 => format!("{}: {}", r.status, r.text()),
                Ok(r) => {
                    let last = r.text().lines().last().unwrap_or("").to_string();
                    let summary: Value = serde_json::from_str(&last).unwrap_or(Value::Null);
                    let rows = r.text().lines().count() - 1;
                    if summary["summary"]["incidents"] == 12 && summary["summary"]["rows"] == rows {
                        return None;
                    }
                    format!("200 without its summary: its last line is {last}")
                }
            };
            Some(format!("invocation {i}: {why}"))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{} of {} answers incomplete:\n{}\nserver stderr:\n{}",
        problems.len(),
        answers.len(),
        problems.join("\n"),
        serve.stderr()
    );
}

#[test]
fn sigterm_lets_every_in_flight_invocation_finish_with_its_whole_answer_and_exits_0() {
    const IN_FLIGHT: usize = 16;
    let upstream = sim(12, true, 1.0, jiff::Timestamp::now(), &["slow=8000"]);
    let host = defender_host(&[]);
    let config = write_config(&host, "serve", &[connection(&upstream, "sim", "acme", "")]);
    let mut serve = host.serve(&["--config", &config, "--max-running-per-tenant", "32"]);
    let answers: Vec<Result<Response, String>> = std::thread::scope(|s| {
        let running = start_slow_detections(s, &serve, &upstream, IN_FLIGHT);
        serve.signal(libc::SIGTERM);
        serve.wait_for_stderr("the draining line", |l| {
            l.starts_with("skillhost: draining")
        });
        running
            .into_iter()
            .map(|r| r.join().expect("invocation"))
            .collect()
    });
    let status = serve.wait_exit();
    assert_complete(&answers, &serve);
    let stderr = serve.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "skillhost: draining ({IN_FLIGHT} invocation(s) running, 0 queued)"
        )),
        "{stderr}"
    );
    assert!(stderr.ends_with("skillhost: stopped"), "{stderr}");
    assert!(!stderr.contains("drain timeout passed"), "{stderr}");
}

#[test]
fn sigterm_waits_for_the_whole_answer_of_a_client_that_reads_slowly() {
    // A million rows of `{}`: 8 MB on the wire (chunked), more than the connection's buffers
    // hold, so the answer is still on its way, held back by its reader, when SIGTERM comes.
    const ROWS: usize = 1_000_000;
    let host = host_with(&["output-flood"]);
    let config = write_config(&host, "serve", &[]);
    let mut serve = host.serve(&["--config", &config, "--drain-timeout", "100s"]);
    let body = json!({"input": {"mode": "rows", "count": ROWS}}).to_string();
    let bearer = format!("Bearer {SOC_KEY}");
    // A reader slower than the skill writes (about 1.6 MB/s): whatever the skill has written
    // and the client has not read yet waits in the server when the skill ends.
    let slow = SlowReader {
        receive_buffer: 16 * 1024,
        bytes: 16 * 1024,
        pause: Duration::from_millis(10),
    };
    let answer = common::http_slow(
        serve.port,
        "POST",
        "/v1/skills/output-flood/invoke",
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
        slow,
        &mut || {
            serve.signal(libc::SIGTERM);
            serve.wait_for_stderr("the draining line", |l| {
                l == "skillhost: draining (1 invocation(s) running, 0 queued)"
            });
        },
    );
    let status = serve.wait_exit();
    let stderr = serve.stderr();
    let answer = answer.unwrap_or_else(|e| panic!("{e}\nserver stderr:\n{stderr}"));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    let (rows, last) = text
        .trim_end_matches('\n')
        .rsplit_once('\n')
        .expect("rows, then a last line");
    assert_eq!(last, "{\"summary\":{\"refused\":0}}");
    assert_eq!(rows.len(), ROWS * 3 - 1);
    assert!(rows.lines().all(|l| l == "{}"));
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn a_request_arriving_while_the_server_drains_is_503_unavailable_and_readyz_says_draining() {
    let upstream = sim(12, true, 1.0, jiff::Timestamp::now(), &["slow=8000"]);
    let host = defender_host(&["echo"]);
    let config = write_config(&host, "serve", &[connection(&upstream, "sim", "acme", "")]);
    let mut serve = host.serve(&["--config", &config]);
    std::thread::scope(|s| {
        let running = start_slow_detections(s, &serve, &upstream, 1);
        serve.signal(libc::SIGTERM);
        serve.wait_for_stderr("the draining line", |l| {
            l == "skillhost: draining (1 invocation(s) running, 0 queued)"
        });
        let refused = serve.invoke("echo", SOC_KEY, &json!({"input": {"message": "Late"}}));
        assert_error(
            &refused,
            503,
            "unavailable",
            "a new invocation while draining",
        );
        assert_eq!(refused.header("retry-after"), Some("1"));
        let listing = serve.get("/v1/skills", Some(SOC_KEY));
        assert_error(&listing, 503, "unavailable", "a listing while draining");
        let ready = serve.get("/readyz", None);
        assert_eq!(ready.status, 503, "{}", ready.text());
        assert_eq!(ready.json()["status"], "draining");
        let health = serve.get("/healthz", None);
        assert_eq!(health.status, 200);
        // (Whether the one in flight ends whole is the test above's business.)
        for r in running {
            let _ = r.join().expect("invocation");
        }
    });
    assert_eq!(serve.wait_exit().code(), Some(0), "{}", serve.stderr());
    // The refused requests sent nothing upstream.
    assert_eq!(upstream.stats().calls(), 1);
}

#[test]
fn an_invocation_still_queued_at_sigterm_is_drained_like_a_running_one() {
    let upstream = sim(12, true, 1.0, jiff::Timestamp::now(), &["slow=3000"]);
    let host = defender_host(&[]);
    let config = write_config(&host, "serve", &[connection(&upstream, "sim", "acme", "")]);
    let mut serve = host.serve(&[
        "--config",
        &config,
        "--max-running-per-tenant",
        "1",
        "--drain-timeout",
        "100s",
    ]);
    let answers: Vec<Result<Response, String>> = std::thread::scope(|s| {
        let running = start_slow_detections(s, &serve, &upstream, 1);
        let body = json!({"connection": "sim", "input": {"duration": 30}}).to_string();
        let queued: Vec<_> = (0..2)
            .map(|_| {
                let (serve, body) = (&serve, body.clone());
                s.spawn(move || {
                    serve.try_request(
                        "POST",
                        &format!("/v1/skills/{DETECTIONS}/invoke"),
                        Some(SOC_KEY),
                        Some(body.as_bytes()),
                    )
                })
            })
            .collect();
        eventually("two invocations queued", || {
            metrics(&serve)
                .contains("\nskillhost_queue_depth 2\n")
                .then_some(())
        });
        serve.signal(libc::SIGTERM);
        running
            .into_iter()
            .chain(queued)
            .map(|r| r.join().expect("invocation"))
            .collect()
    });
    let status = serve.wait_exit();
    assert_complete(&answers, &serve);
    assert_eq!(status.code(), Some(0), "{}", serve.stderr());
    assert_eq!(upstream.stats().calls(), 3);
}

#[test]
fn malformed_invocations_are_refused_with_400_or_404_before_anything_runs() {
    let upstream = sim(12, true, 1.0, jiff::Timestamp::now(), &[]);
    let host = defender_host(&["echo"]);
    let config = write_config(&host, "serve", &[connection(&upstream, "sim", "acme", "")]);
    let serve = host.serve(&[
        "--config",
        &config,
        "--timeout",
        "60s",
        "--max-memory",
        "64M",
        "--max-body",
        "4K",
    ]);
    let big = format!(
        "{{\"input\": {{\"message\": \"{}\"}}}}",
        "a".repeat(8 * 1024)
    );
    let cases: Vec<(&str, &str, String, u16, &str, &str)> = vec![
        (
            "an unknown parameter",
            "echo",
            json!({"input": {"message": "Hi", "colour": "red"}}).to_string(),
            400,
            "invalid_input",
            "skill `echo` has no parameter `colour`; its parameters are: message, repeat, mode, loud, since",
        ),
        (
            "a parameter of the wrong JSON type",
            "echo",
            json!({"input": {"message": "Hi", "repeat": "2"}}).to_string(),
            400,
            "invalid_input",
            "",
        ),
        (
            "a missing required parameter",
            "echo",
            json!({"input": {}}).to_string(),
            400,
            "invalid_input",
            "",
        ),
        (
            "a body that is not JSON",
            "echo",
            "message=Hi".to_string(),
            400,
            "invalid_input",
            "",
        ),
        (
            "an unknown field of the request",
            "echo",
            json!({"input": {"message": "Hi"}, "tenant": "globex"}).to_string(),
            400,
            "invalid_input",
            "",
        ),
        (
            "a body over --max-body",
            "echo",
            big,
            400,
            "invalid_input",
            "the request body is larger than the server takes (4.0 KiB)",
        ),
        (
            "a skill that calls a service, without a connection",
            GET,
            json!({"input": {"incident_id": "100003"}}).to_string(),
            400,
            "invalid_input",
            "skill `get_microsoft_defender_incident` calls defender, graph and needs a connection",
        ),
        (
            "an unknown skill",
            "nope",
            json!({"input": {}}).to_string(),
            404,
            "not_found",
            "",
        ),
        (
            "an unknown connection",
            GET,
            json!({"connection": "nope", "input": {"incident_id": "100003"}}).to_string(),
            404,
            "not_found",
            "caller `soc` has no connection named `nope`",
        ),
        (
            "a timeout above the server's",
            "echo",
            json!({"input": {"message": "Hi"}, "limits": {"timeout": "2m"}}).to_string(),
            400,
            "invalid_input",
            "limits.timeout: 120 s is not between 1 ms and the server's 60 s",
        ),
        (
            "a memory limit above the server's",
            "echo",
            json!({"input": {"message": "Hi"}, "limits": {"max_memory": "1G"}}).to_string(),
            400,
            "invalid_input",
            "limits.max_memory: 1024 MiB is more than the server allows (64 MiB)",
        ),
        (
            "a parameter outside its range",
            DETECTIONS,
            json!({"connection": "sim", "input": {"page_size": 101}}).to_string(),
            400,
            "invalid_input",
            "parameter `page_size` is 101, outside the allowed range 1..=100",
        ),
    ];
    for (what, skill, body, status, code, message) in &cases {
        let response = serve.request(
            "POST",
            &format!("/v1/skills/{skill}/invoke"),
            Some(SOC_KEY),
            Some(body.as_bytes()),
        );
        assert_error(&response, *status, code, what);
        if !message.is_empty() {
            assert_eq!(response.json()["error"]["message"], *message, "{what}");
        }
    }
    // Nothing ran, and nothing went upstream.
    let text = metrics(&serve);
    assert!(!text.contains("skillhost_invocations_total{"), "{text}");
    assert_eq!(upstream.stats().tokens(), 0);
    assert_eq!(upstream.stats().calls(), 0);
}

#[test]
fn metrics_count_one_successful_invocation_by_skill_tenant_and_outcome() {
    let upstream = sim(12, true, 1.0, jiff::Timestamp::now(), &[]);
    let host = defender_host(&[]);
    let config = write_config(&host, "serve", &[connection(&upstream, "sim", "acme", "")]);
    let serve = host.serve(&["--config", &config]);
    let got = serve.invoke(
        GET,
        SOC_KEY,
        &json!({"connection": "sim", "input": {"incident_id": "100003"}}),
    );
    assert_eq!(got.status, 200, "{}", got.text());
    let line = format!(
        "skillhost_invocations_total{{skill=\"{GET}\",tenant=\"acme\",outcome=\"ok\"}} 1\n"
    );
    // The count is written as the invocation ends, which may be just after its answer left.
    let text = eventually("the invocation counted", || {
        let text = metrics(&serve);
        text.contains(&line).then_some(text)
    });
    let counted: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("skillhost_invocations_total{"))
        .collect();
    assert_eq!(counted, [line.trim_end()], "{text}");
    assert!(
        text.contains("skillhost_upstream_throttled_total{tenant=\"acme\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "skillhost_invocation_duration_seconds_count{{skill=\"{GET}\"}} 1\n"
        )),
        "{text}"
    );
}

/// A server with an audit log that ran: `soc` echo (ok), `soc` get on acme (ok), `soc` spin
/// (timeout), `mssp` get on globex (ok); and was refused: a wrong key, a forbidden connection.
/// Returns the host (its folders hold the log), the audit text, the server's whole stderr, and
/// the digests of the skills.
fn audited_session() -> (Host, String, String, BTreeMap<String, String>) {
    let anchor = jiff::Timestamp::now();
    let acme = sim(12, true, 1.0, anchor, &[]);
    let globex = sim(12, true, 1.0, anchor, &[]);
    let host = defender_host(&["echo", "spin"]);
    let config = write_config(
        &host,
        "serve",
        &[
            connection(&acme, "acme-sim", "acme", ""),
            connection(&globex, "globex-sim", "globex", ""),
        ],
    );
    let audit = host.cache_dir().join("audit.jsonl");
    let mut serve = host.serve(&[
        "--config",
        &config,
        "--audit-log",
        &audit.display().to_string(),
        "-v",
    ]);
    let digests: BTreeMap<String, String> = skills_listing(&serve)["skills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let get =
        |connection: &str| json!({"connection": connection, "input": {"incident_id": "100003"}});
    assert_eq!(
        serve
            .invoke("echo", SOC_KEY, &json!({"input": {"message": "Hi"}}))
            .status,
        200
    );
    assert_eq!(serve.invoke(GET, SOC_KEY, &get("acme-sim")).status, 200);
    assert_eq!(
        serve
            .invoke("spin", SOC_KEY, &json!({"limits": {"timeout": "300ms"}}))
            .status,
        504
    );
    assert_eq!(serve.invoke(GET, MSSP_KEY, &get("globex-sim")).status, 200);
    assert_eq!(
        serve
            .invoke(GET, "wrong-key-presented-0123456789", &get("acme-sim"))
            .status,
        401
    );
    assert_eq!(serve.invoke(GET, SOC_KEY, &get("globex-sim")).status, 404);
    // Draining writes every record before the process ends.
    serve.signal(libc::SIGTERM);
    assert_eq!(serve.wait_exit().code(), Some(0), "{}", serve.stderr());
    let text = std::fs::read_to_string(&audit).expect("audit log");
    let stderr = serve.stderr();
    drop(serve);
    (host, text, stderr, digests)
}

#[test]
fn the_audit_log_has_one_invocation_line_per_invocation_with_caller_tenant_skill_digest_and_outcome()
 {
    let (_host, text, _, digests) = audited_session();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let invocations: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "invocation")
        .collect();
    let mut seen: Vec<(String, Value, Value, String, String)> = invocations
        .iter()
        .map(|r| {
            let skill = r["skill"].as_str().expect("skill").to_string();
            assert_eq!(
                r["digest"].as_str(),
                digests.get(&skill).map(String::as_str),
                "{r}"
            );
            for field in [
                "duration_ms",
                "bytes_out",
                "peak_memory",
                "upstream_requests",
            ] {
                assert!(r[field].is_u64(), "{field}: {r}");
            }
            assert!(r["time"].is_string(), "{r}");
            (
                r["caller"].as_str().expect("caller").to_string(),
                r["tenant"].clone(),
                r["connection"].clone(),
                skill,
                r["outcome"].as_str().expect("outcome").to_string(),
            )
        })
        .collect();
    seen.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    let row = |caller: &str, tenant: Value, connection: Value, skill: &str, outcome: &str| {
        (
            caller.to_string(),
            tenant,
            connection,
            skill.to_string(),
            outcome.to_string(),
        )
    };
    let mut expected = vec![
        row("soc", Value::Null, Value::Null, "echo", "ok"),
        row("soc", json!("acme"), json!("acme-sim"), GET, "ok"),
        row("soc", Value::Null, Value::Null, "spin", "timeout"),
        row("mssp", json!("globex"), json!("globex-sim"), GET, "ok"),
    ];
    expected.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(seen, expected, "{text}");
    // Besides them, one record per HTTP call of a skill.
    assert!(
        records
            .iter()
            .any(|r| r["kind"].is_null() && r["skill"] == GET),
        "{text}"
    );
}

#[test]
fn no_api_key_or_client_secret_appears_in_the_audit_log_or_on_stderr() {
    let (_host, audit, stderr, _) = audited_session();
    assert!(audit.lines().count() >= 4, "{audit}");
    assert!(stderr.contains("skillhost: stopped"), "{stderr}");
    for secret in [
        SOC_KEY,
        MSSP_KEY,
        "wrong-key-presented-0123456789",
        skillhost_simulator::DEFAULT_CLIENT_SECRET,
    ] {
        assert!(
            !audit.contains(secret),
            "{secret} in the audit log:\n{audit}"
        );
        assert!(!stderr.contains(secret), "{secret} on stderr:\n{stderr}");
    }
}

#[test]
fn listening_off_loopback_without_tls_is_refused_with_exit_2_naming_tls_cert_and_insecure_http() {
    let host = host_with(&["echo"]);
    let config = write_config(&host, "serve", &[]);
    let mut child = host
        .command(&["serve", "--config", &config, "--listen", "0.0.0.0:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("skillhost serve --listen 0.0.0.0:0 kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "skillhost: 0.0.0.0:0 is not a loopback address: serving it in plain HTTP would send API keys in clear"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--tls-cert"), "{stderr}");
    assert!(stderr.contains("--insecure-http"), "{stderr}");
    assert!(!stderr.contains("skillhost: serving"), "{stderr}");
}
