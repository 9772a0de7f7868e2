//! The authenticated HTTP capability against the simulator over loopback: tokens, Entra ID
//! errors, retries, pacing, the egress policy, secrecy, and the remote agent.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Host, SECRET_VAR, simulator};
use serde_json::{Value, json};
use skillhost_runtime::capabilities::CollectRows;
use skillhost_runtime::host::SkillHost;
use skillhost_runtime::limits::SandboxLimits;

const LIST: &str = "list_microsoft_defender_incidents";
const GET: &str = "get_microsoft_defender_incident";

fn audit_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

#[test]
fn one_token_request_serves_every_call_of_a_run() {
    let sim = simulator(30, &[]);
    let host = Host::defender(&[]);
    let config = host.config(&sim, "defender", "");
    let run = host.run(&[
        "--config",
        &config,
        "run",
        LIST,
        "-c",
        "sim",
        "-p",
        "page_size=5",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["count"], 30);
    assert_eq!(sim.stats().calls(), 7, "six full pages and an empty one");
    assert_eq!(sim.stats().tokens(), 1);
}

#[test]
fn each_page_asked_for_ahead_is_taken_and_audited_once() {
    let sim = simulator(30, &[]);
    let host = Host::defender(&[]);
    let config = host.config(&sim, "defender", "");
    let audit = host.cache_dir().join("audit.jsonl");
    let run = host.run(&[
        "--config",
        &config,
        "run",
        "list_microsoft_defender_incidents_for_detections",
        "-c",
        "sim",
        "-p",
        "page_size=5",
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sim.stats().calls(), 7, "six full pages and an empty one");
    let records = audit_lines(&audit);
    let outcomes: Vec<(Value, Value)> = records
        .iter()
        .map(|r| (r["status"].clone(), r["reason"].clone()))
        .collect();
    assert_eq!(outcomes, vec![(Value::from(200), Value::Null); 7]);
}

#[test]
fn a_run_that_stops_within_its_first_page_asks_for_no_other() {
    let sim = simulator(30, &[]);
    let host = Host::defender(&[]);
    let config = host.config(&sim, "defender", "");
    let run = host.run(&[
        "--config",
        &config,
        "run",
        LIST,
        "-c",
        "sim",
        "-p",
        "page_size=5",
        "-p",
        "limit=3",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["count"], 3);
    assert_eq!(sim.stats().calls(), 1);
}

#[test]
fn a_page_asked_for_ahead_that_the_skill_never_takes_is_audited_as_such() {
    // The skill follows the first page's link, so the second page's link is asked for as the
    // skill reads that page (5 small incidents, read whole before they are parsed); the skill
    // stops at its limit and never asks for the third page.
    let sim = simulator(30, &[]);
    let host = Host::defender(&[]);
    let config = host.config(&sim, "defender", "");
    let audit = host.cache_dir().join("audit.jsonl");
    let run = host.run(&[
        "--config",
        &config,
        "run",
        LIST,
        "-c",
        "sim",
        "-p",
        "page_size=5",
        "-p",
        "limit=7",
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["count"], 7);
    let records = audit_lines(&audit);
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(
        (&records[0]["status"], &records[1]["status"]),
        (&json!(200), &json!(200))
    );
    let reason = records[2]["reason"].as_str().unwrap_or_default();
    assert!(
        [
            "asked for ahead of the skill; the skill did not ask for it",
            "asked for ahead of the skill; the skill did not ask for it (cancelled before it settled; it may not have been sent)"
        ]
        .contains(&reason),
        "{records:?}"
    );
    assert!(
        records[2]["path"]
            .as_str()
            .is_some_and(|p| p.contains("skip=10")),
        "{records:?}"
    );
}

/// An in-process host: one runtime, one connector, the Defender skills.
struct InProcess {
    host: SkillHost,
    connection: skillhost_upstream::connections::Connection,
    _host: Host,
}

impl InProcess {
    async fn new(sim: &common::Simulator, extra: &str) -> Self {
        let files = Host::defender(&[]);
        let connection = files.in_process_connection(sim, "defender", extra);
        InProcess {
            host: files.in_process().await,
            connection,
            _host: files,
        }
    }

    async fn get(&self, id: &str) -> Result<Value, skillhost_contract::error::Failure> {
        let input = json!({"incident_id": id});
        let prepared = self.host.prepare(
            GET,
            input.as_object().unwrap().clone(),
            Some(self.connection.clone()),
            SandboxLimits::default(),
        )?;
        self.host
            .invoke(prepared, Box::new(CollectRows::default()))
            .await
            .map(|i| i.output.into_value().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_invocations_make_one_token_request() {
    let sim = simulator(5, &[]);
    let host = Arc::new(InProcess::new(&sim, "").await);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let host = host.clone();
        tasks.push(tokio::spawn(async move { host.get("100003").await }));
    }
    for task in tasks {
        let output = task.await.unwrap().unwrap();
        assert_eq!(output["incident"]["incidentId"], 100003);
    }
    assert_eq!(sim.stats().tokens(), 1);
    assert_eq!(sim.stats().calls(), 50);
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_before_it_is_used() {
    let config = common::SimulatorConfig {
        incidents: 5,
        token_lifetime: Duration::from_secs(4),
        ..common::SimulatorConfig::default()
    };
    let sim = common::Simulator::start(config, "127.0.0.1:0").unwrap();
    let host = InProcess::new(&sim, "").await;
    host.get("100001").await.unwrap();
    host.get("100002").await.unwrap();
    assert_eq!(sim.stats().tokens(), 1);
    // A 4 s token is refreshed a quarter of its life early: after 3 s.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    host.get("100003").await.unwrap();
    assert_eq!(sim.stats().tokens(), 2);
    assert!(sim.stats().seen().iter().all(|r| r.status == 200));
}

#[test]
fn a_401_refreshes_the_token_once_and_the_run_succeeds() {
    let sim = simulator(12, &["revoke-after=1"]);
    let host = Host::defender(&[]);
    let config = host.config(&sim, "defender", "");
    let run = host.run(&[
        "--config",
        &config,
        "run",
        LIST,
        "-c",
        "sim",
        "-p",
        "page_size=5",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["count"], 12);
    assert_eq!(sim.stats().tokens(), 2);
    let statuses: Vec<u16> = sim
        .stats()
        .seen()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![200, 401, 200, 200]);
}

#[test]
fn a_token_the_api_keeps_refusing_gives_credential_guidance_and_exit_3() {
    let sim = simulator(3, &["deny-tokens"]);
    let host = Host::defender(&[]);
    let config = host.config(&sim, "defender", "");
    let run = host.run(&["--config", &config, "run", LIST, "-c", "sim"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("unauthorized: the defender API rejected the token (401)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("hint: check the connection's tenant_id, client_id and client secret"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.stats().tokens(), 2, "one refresh, then give up");
}

fn entra_failure(edit: impl Fn(&str) -> String, secret: &str) -> common::Run {
    let sim = simulator(3, &[]);
    let host = Host::defender(&[]).env(SECRET_VAR, secret);
    let config = host.config(&sim, "defender", "");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, edit(&text)).unwrap();
    let run = host.run(&["--config", &config, "run", LIST, "-c", "sim"]);
    assert_eq!(sim.stats().calls(), 0, "no API call without a token");
    run
}

#[test]
fn a_wrong_secret_says_to_create_a_new_one_and_exits_3() {
    let run = entra_failure(|t| t.to_string(), "not-the-secret");
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains(&format!(
        "Entra ID rejected the client secret (AADSTS7000215: wrong or expired). Create a new client secret for application {} in Entra ID > App registrations > Certificates & secrets, then put its value in the environment variable {SECRET_VAR}",
        skillhost_simulator::DEFAULT_CLIENT_ID
    )), "{}", run.stderr);
}

#[test]
fn an_unknown_app_says_to_check_the_client_id_and_exits_3() {
    let run = entra_failure(
        |t| {
            t.replace(
                skillhost_simulator::DEFAULT_CLIENT_ID,
                "99999999-0000-0000-0000-000000000000",
            )
        },
        skillhost_simulator::DEFAULT_CLIENT_SECRET,
    );
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains(&format!(
        "application 99999999-0000-0000-0000-000000000000 was not found in tenant {} (AADSTS700016). Check client_id",
        skillhost_simulator::DEFAULT_TENANT_ID
    )), "{}", run.stderr);
}

#[test]
fn an_unknown_tenant_says_to_check_the_tenant_id_and_exits_3() {
    let run = entra_failure(
        |t| {
            t.replace(
                skillhost_simulator::DEFAULT_TENANT_ID,
                "88888888-0000-0000-0000-000000000000",
            )
        },
        skillhost_simulator::DEFAULT_CLIENT_SECRET,
    );
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("tenant 88888888-0000-0000-0000-000000000000 was not found (AADSTS90002). Check tenant_id"), "{}", run.stderr);
}

#[test]
fn a_burst_of_429s_is_waited_out_and_every_incident_arrives() {
    let sim = simulator(12, &["throttle=3", "retry-after=0.3"]);
    let host = Host::defender(&[]);
    let config = host.config(&sim, "defender", "");
    let audit = host.cache_dir().join("audit.jsonl");
    let started = Instant::now();
    let run = host.run(&[
        "--config",
        &config,
        "run",
        LIST,
        "-c",
        "sim",
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "three Retry-After waits of 0.3 s"
    );
    assert_eq!(run.json()["count"], 12);
    assert_eq!(sim.stats().throttled.load(Ordering::SeqCst), 3);
    let records = audit_lines(&audit);
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0]["status"].clone(), records[0]["retries"].clone()),
        (json!(200), json!(3))
    );
}

#[test]
fn three_500s_then_success_completes_the_run() {
    let sim = simulator(4, &["error=3"]);
    let host = Host::defender(&[]);
    let config = host.config(
        &sim,
        "defender",
        "[connections.sim.retry]\nbase_backoff_ms = 20",
    );
    let run = host.run(&["--config", &config, "run", LIST, "-c", "sim"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["count"], 4);
    assert_eq!(sim.stats().calls(), 4);
}

#[test]
fn a_persistent_500_is_a_clear_error_after_the_retries() {
    let sim = simulator(4, &["error=always"]);
    let host = Host::defender(&[]);
    let config = host.config(
        &sim,
        "defender",
        "[connections.sim.retry]\nbase_backoff_ms = 20",
    );
    let run = host.run(&["--config", &config, "run", LIST, "-c", "sim"]);
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
    assert_eq!(sim.stats().calls(), 5, "the first attempt and four retries");
}

#[test]
fn the_secret_appears_in_no_output_log_audit_record_or_guest_view() {
    let canary = "canary-secret-7d0c1b2a";
    let config = common::SimulatorConfig {
        incidents: 3,
        client_secret: canary.into(),
        ..common::SimulatorConfig::default()
    };
    let sim = common::Simulator::start(config, "127.0.0.1:0").unwrap();
    let host = Host::defender(&["connection-probe"]).env(SECRET_VAR, canary);
    let config = host.config(&sim, "defender", "");
    let audit = host.cache_dir().join("audit.jsonl");
    let run = host.run(&[
        "-vv",
        "--config",
        &config,
        "run",
        "connection-probe",
        "-c",
        "sim",
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let view = run.json();
    assert_eq!(
        view["connection"],
        json!({"name": "sim", "tenant": "acme", "cloud": "commercial", "api": "defender", "services": ["defender"]})
    );
    assert_eq!(view["env"], json!([]));
    assert_eq!(view["answer"]["status"], 200);
    let tokens: Vec<String> = sim
        .stats()
        .seen()
        .iter()
        .filter_map(|r| r.authorization.clone())
        .collect();
    assert_eq!(tokens.len(), 1);
    let token = tokens[0].trim_start_matches("Bearer ");
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    for (place, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("audit log", &audit_text),
    ] {
        assert!(!text.contains(canary), "the secret leaked into {place}");
        assert!(!text.contains(token), "the token leaked into {place}");
    }
    assert!(run.stderr.contains("TRACE"), "trace logging was on");
}

#[test]
fn a_guest_authorization_header_never_reaches_the_server() {
    let sim = simulator(3, &[]);
    let host = Host::defender(&["header-smuggler"]);
    let config = host.config(&sim, "defender", "");
    let run = host.run(&["--config", &config, "run", "header-smuggler", "-c", "sim"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json(), json!({"status": 200}));
    let seen = sim.stats().seen();
    let api_call = seen.iter().find(|r| r.method == "GET").unwrap();
    let auth = api_call.authorization.as_deref().unwrap();
    assert!(
        auth.starts_with("Bearer ") && !auth.contains("guest-canary"),
        "{auth}"
    );
}

#[test]
fn a_next_link_to_another_origin_is_denied_with_exit_4() {
    let sim = simulator(3, &[]);
    let host = Host::defender(&["egress-probe"]);
    let config = host.config(&sim, "defender", "");
    let audit = host.cache_dir().join("audit.jsonl");
    let run = host.run(&[
        "--config",
        &config,
        "run",
        "egress-probe",
        "-c",
        "sim",
        "-p",
        "target=http://127.0.0.2:9/api/incidents?$skip=100",
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "leaves the origin of service `defender` ({})",
            sim.base_url()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        sim.stats().tokens(),
        0,
        "no token is fetched for a denied request"
    );
    let records = audit_lines(&audit);
    assert_eq!(records[0]["decision"], "denied");
}

#[test]
fn a_path_escaping_the_api_root_is_denied_with_exit_4() {
    let sim = simulator(3, &[]);
    let host = Host::defender(&["egress-probe"]);
    let config = host.config(&sim, "defender", "");
    for target in ["/api/%2e%2e/%2e%2e/admin", "//evil.example/x"] {
        let run = host.run(&[
            "--config",
            &config,
            "run",
            "egress-probe",
            "-c",
            "sim",
            "-p",
            &format!("target={target}"),
        ]);
        assert_eq!(run.code, 4, "{target}: {}", run.stderr);
        assert!(
            run.stderr.contains("was denied a capability"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(sim.stats().calls(), 0);
}

/// A forward proxy for plain-HTTP requests in absolute form, counting what it relays.
fn forward_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let relayed = Arc::new(AtomicUsize::new(0));
    let count = relayed.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || relay(client, &count));
        }
    });
    (format!("http://{addr}"), relayed)
}

fn relay(mut client: TcpStream, count: &AtomicUsize) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let Some(rest) = target.strip_prefix("http://") else {
        return;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut length = 0;
    let mut headers = String::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") && !lower.starts_with("proxy-") {
            headers.push_str(line);
            headers.push_str("\r\n");
        }
    }
    let mut body = vec![0u8; length];
    if client.read_exact(&mut body).is_err() {
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(authority) else {
        return;
    };
    count.fetch_add(1, Ordering::SeqCst);
    let _ = write!(
        upstream,
        "{method} {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n"
    );
    let _ = upstream.write_all(&body);
    let mut answer = Vec::new();
    let _ = upstream.read_to_end(&mut answer);
    let _ = client.write_all(&answer);
}

#[test]
fn a_remote_agent_carries_all_of_the_connections_traffic() {
    let sim = simulator(12, &[]);
    let (proxy, relayed) = forward_proxy();
    let host = Host::defender(&[]);
    let config = host.config(&sim, "defender", &format!("remote_agent = \"{proxy}\""));
    let run = host.run(&[
        "--config",
        &config,
        "run",
        LIST,
        "-c",
        "sim",
        "-p",
        "page_size=5",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["count"], 12);
    let total = (sim.stats().tokens() + sim.stats().calls()) as usize;
    assert_eq!(total, 4, "one token request and three pages");
    assert_eq!(
        relayed.load(Ordering::SeqCst),
        total,
        "everything went through the agent"
    );
}

#[test]
fn pacing_holds_the_configured_rate_without_a_429() {
    let sim = simulator(12, &[]);
    let host = Host::defender(&[]);
    // Five calls per "minute" of one second.
    let config = host.config(
        &sim,
        "defender",
        "[connections.sim.pacing]\nper_minute = 5\ntime_scale = 60.0",
    );
    let started = Instant::now();
    let run = host.run(&[
        "--config",
        &config,
        "run",
        LIST,
        "-c",
        "sim",
        "-p",
        "page_size=1",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["count"], 12);
    assert_eq!(sim.stats().calls(), 13);
    // 13 calls at 5 per second: the 6th waits for the 2nd second and the 11th for the 3rd.
    assert!(
        started.elapsed() >= Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sim.stats().throttled.load(Ordering::SeqCst), 0);
}

#[test]
fn connections_test_passes_against_the_simulator_and_explains_a_wrong_secret() {
    let sim = simulator(3, &[]);
    let host = Host::defender(&[]);
    let config = host.config(&sim, "defender", "");
    let good = host.run(&["--config", &config, "connections", "test", "sim"]);
    assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
    assert!(good.stdout.contains("ok   permission: the token carries the Incident.Read.All role\nok   probe: GET /api/incidents?$top=1 answered 200\nconnection `sim` is ready\n"), "{}", good.stdout);

    let bad = Host::defender(&[]).env(SECRET_VAR, "wrong");
    let config = bad.config(&sim, "defender", "");
    let run = bad.run(&["--config", &config, "connections", "test", "sim"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stdout.contains(
            "FAIL token: connection `sim`: Entra ID rejected the client secret (AADSTS7000215"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn connections_test_gives_up_on_a_login_endpoint_that_never_answers_within_its_timeout() {
    // Takes connections and holds them open without a byte of answer.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let sim = simulator(3, &[]);
    let host = Host::defender(&[]);
    let config = host.config(&sim, "defender", "");
    let text = std::fs::read_to_string(&config).unwrap();
    let login = format!("login = \"{}\"", sim.base_url());
    assert!(text.contains(&login), "{text}");
    std::fs::write(
        &config,
        text.replace(&login, &format!("login = \"http://{silent_addr}\"")),
    )
    .unwrap();
    let run = host.run(&[
        "--config",
        &config,
        "connections",
        "test",
        "sim",
        "--timeout",
        "1s",
    ]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "FAIL token: http://{silent_addr} did not answer within 1 s"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("give it longer with --timeout"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.stats().calls(), 0);
}

#[test]
fn connections_test_names_a_missing_permission_and_how_to_grant_it() {
    let config = common::SimulatorConfig {
        incidents: 3,
        roles: vec!["User.Read.All".into()],
        ..common::SimulatorConfig::default()
    };
    let sim = common::Simulator::start(config, "127.0.0.1:0").unwrap();
    let host = Host::defender(&[]);
    let config = host.config(&sim, "graph", "");
    let run = host.run(&["--config", &config, "connections", "test", "sim"]);
    assert_eq!(run.code, 3);
    assert!(run.stdout.contains("FAIL permission: the token's roles are [User.Read.All], without SecurityIncident.Read.All."), "{}", run.stdout);
    assert!(run.stdout.contains("add Microsoft Graph > Application permissions > SecurityIncident.Read.All, then select \"Grant admin consent\""), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("FAIL probe: GET /v1.0/security/incidents?$top=1 answered 403"),
        "{}",
        run.stdout
    );
}

#[test]
fn connections_list_shows_everything_but_the_secret() {
    let sim = simulator(1, &[]);
    let host = Host::defender(&[]).env(SECRET_VAR, "canary-list-secret");
    let config = host.config(&sim, "graph", "");
    let run = host.run(&["--config", &config, "connections", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list = run.json();
    assert_eq!(list[0]["client_secret"], json!({"env": SECRET_VAR}));
    assert_eq!(list[0]["permission"], "SecurityIncident.Read.All");
    assert!(!run.stdout.contains("canary-list-secret"));
}

#[test]
fn a_response_larger_than_the_cap_is_refused_and_audited() {
    let sim = simulator(12, &[]);
    let host = Host::defender(&[]);
    let config = host.config(&sim, "defender", "max_response_bytes = 4096");
    let audit = host.cache_dir().join("audit.jsonl");
    let run = host.run(&[
        "--config",
        &config,
        "run",
        LIST,
        "-c",
        "sim",
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "upstream error 200 ResponseTooLarge: the answer exceeded the host's cap of 4096 bytes"
        ),
        "{}",
        run.stderr
    );
    let records = audit_lines(&audit);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["reason"], "response too large");
    // The simulator announces the length, so the answer is refused before any of it is read.
    assert_eq!(records[0]["bytes"], 0);
}
