//! No skill can hurt the host through `http.send`: header floods, oversized or malformed
//! requests, method overrides and calls to the token endpoint are denied before any token is
//! fetched (exit 4), never retried, and audited within the invocation's caps; a flood of refused
//! requests is counted and ends quickly; a pacing wait past the deadline is reported as pacing.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Host, Run, Simulator, simulator};
use serde_json::Value;
use skillhost_contract::types::{HttpError, HttpRequest, Method};
use skillhost_upstream::audit::AuditLog;
use skillhost_upstream::outbound::{BoundConnection, CallLimits, Connector};

const SKILL: &str = "http-flood";
const DENIED: &str = "skillhost: skill `http-flood` was denied a capability: ";
const ALLOW_LIST: &str = "accept, accept-language, client-request-id, consistencylevel, \
                          content-type, if-match, if-none-match, prefer, return-client-request-id";
/// The default audit cap of one invocation.
const AUDIT_CAP: u64 = 16 * 1024 * 1024;
/// Generous bound on one audit record: four fields of at most 2 KiB plus their cut marks and the
/// fixed fields.
const ONE_RECORD: u64 = 9 * 1024;

/// A simulator, a host with `http-flood`, and its config.
struct Setup {
    sim: Simulator,
    host: Host,
    config: String,
}

fn setup(extra: &str) -> Setup {
    let sim = simulator(3, &[]);
    let host = Host::defender(&[SKILL]);
    let config = host.config(&sim, "defender", extra);
    Setup { sim, host, config }
}

impl Setup {
    /// Runs `http-flood` in `mode` with `params` (and the audit log at `audit`, if given).
    fn run(&self, mode: &str, params: &[&str], audit: Option<&Path>) -> Run {
        self.run_with(mode, params, audit, &[])
    }

    /// Like [`Setup::run`], with more arguments of `run` (such as `--timeout`).
    fn run_with(&self, mode: &str, params: &[&str], audit: Option<&Path>, more: &[&str]) -> Run {
        let mode = format!("mode={mode}");
        let mut args = vec![
            "--config",
            &self.config,
            "run",
            SKILL,
            "-c",
            "sim",
            "-p",
            &mode,
        ];
        args.extend(more);
        for param in params {
            args.extend(["-p", param]);
        }
        let audit_arg;
        if let Some(path) = audit {
            audit_arg = path.display().to_string();
            args.extend(["--audit-log", &audit_arg]);
        }
        self.host.run(&args)
    }

    fn audit_path(&self) -> std::path::PathBuf {
        self.host.cache_dir().join("audit.jsonl")
    }

    /// The simulator saw nothing at all: no token request, no API call.
    fn assert_untouched(&self) {
        assert_eq!(
            self.sim.stats().tokens(),
            0,
            "no token for a denied request"
        );
        assert_eq!(
            self.sim.stats().calls(),
            0,
            "no API call for a denied request"
        );
        assert!(
            self.sim.stats().seen().is_empty(),
            "{:?}",
            self.sim.stats().seen()
        );
    }
}

fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// Exit 4, and stderr's first line is the denial `why`.
fn assert_denied(run: &Run, why: &str) {
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{DENIED}{why}\n")),
        "expected {why:?} in:\n{}",
        run.stderr
    );
}

/// The one audit record of a denied request: denied, not retried, its reason the denial.
fn assert_one_denied_record(path: &Path, why: &str) -> Value {
    let records = audit_lines(path);
    assert_eq!(records.len(), 1, "one request, one record: {records:?}");
    let record = records[0].clone();
    assert_eq!(record["decision"], "denied");
    assert_eq!(record["retries"], 0);
    assert_eq!(record["reason"], why);
    record
}

#[test]
fn ten_thousand_headers_are_denied_by_count_before_any_token() {
    let s = setup("");
    let audit = s.audit_path();
    let run = s.run("many-headers", &[], Some(&audit));
    let why = "the request has 10000 headers, over the limit of 32 headers";
    assert_denied(&run, why);
    assert_one_denied_record(&audit, why);
    s.assert_untouched();
}

#[test]
fn a_one_megabyte_header_value_is_denied_by_size() {
    let s = setup("");
    let audit = s.audit_path();
    let run = s.run("huge-header", &[], Some(&audit));
    let why = "the request's headers are 1048582 bytes, over the limit of 16384 bytes";
    assert_denied(&run, why);
    assert_one_denied_record(&audit, why);
    s.assert_untouched();
}

#[test]
fn cr_lf_in_a_header_value_is_denied_once_and_not_retried() {
    let s = setup("");
    let audit = s.audit_path();
    let run = s.run("crlf", &[], Some(&audit));
    let why = "the value of header `Accept` has byte 0x0d at offset 16; a header value must be \
               printable ASCII, spaces and tabs (no CR, LF, NUL or other control characters)";
    assert_denied(&run, why);
    assert_one_denied_record(&audit, why);
    s.assert_untouched();
}

#[test]
fn a_method_override_header_is_denied_and_never_reaches_the_service() {
    let s = setup("");
    let audit = s.audit_path();
    let run = s.run("method-override", &[], Some(&audit));
    let why = format!(
        "header `X-HTTP-Method-Override` may not be set by a skill (allowed: {ALLOW_LIST})"
    );
    assert_denied(&run, &why);
    assert_one_denied_record(&audit, &why);
    s.assert_untouched();
}

#[test]
fn a_one_megabyte_path_is_denied_once_and_its_record_is_cut() {
    let s = setup("");
    let audit = s.audit_path();
    let run = s.run("long-path", &[], Some(&audit));
    let length = "/api/incidents?$filter=".len() + 1024 * 1024;
    let why =
        format!("the request's path and query is {length} bytes, over the limit of 8192 bytes");
    assert_denied(&run, &why);
    let record = assert_one_denied_record(&audit, &why);
    let path = record["path"].as_str().unwrap();
    assert!(
        path.starts_with("/api/incidents?$filter=aaaa")
            && path.ends_with(&format!("…[{} more bytes cut]", length - 2048)),
        "{}",
        &path[path.len().saturating_sub(80)..]
    );
    assert!(std::fs::metadata(&audit).unwrap().len() < 3 * 1024);
    s.assert_untouched();
}

#[test]
fn a_post_to_the_token_endpoint_on_the_shared_origin_is_denied() {
    let s = setup("");
    let audit = s.audit_path();
    let target = format!(
        "/{}/oauth2/v2.0/token",
        skillhost_simulator::DEFAULT_TENANT_ID
    );
    let run = s.run(
        "token-endpoint",
        &[&format!("target={target}")],
        Some(&audit),
    );
    let why = format!(
        "{target:?} on service `defender` resolves to the OAuth endpoints of the connection's \
         login service ({}); a skill may not call the token endpoint",
        s.sim.base_url()
    );
    assert_denied(&run, &why);
    assert_one_denied_record(&audit, &why);
    assert!(
        s.sim.stats().seen().iter().all(|r| r.method != "POST"),
        "the skill's POST never reached the token endpoint"
    );
    s.assert_untouched();
}

#[test]
fn a_flood_of_refused_megabyte_paths_is_counted_audited_within_the_cap_and_ends_quickly() {
    let s = setup("");
    let audit = s.audit_path();
    let run = s.run("flood", &["count=1000"], Some(&audit));
    let why = "the request's path and query is 1048576 bytes, over the limit of 8192 bytes";
    assert_denied(&run, why);
    let size = std::fs::metadata(&audit).unwrap().len();
    assert!(size <= AUDIT_CAP + ONE_RECORD, "{size}");
    let records = audit_lines(&audit);
    assert_eq!(
        records.len(),
        1000,
        "every refused request is audited, once"
    );
    for record in &records {
        assert_eq!(record["decision"], "denied");
        assert_eq!(record["retries"], 0);
        assert!(record["path"].as_str().unwrap().len() <= 2048 + 40);
    }
    s.assert_untouched();
}

#[test]
fn a_flood_past_the_audit_cap_stops_writing_and_says_once_what_it_dropped() {
    let s = setup("");
    let audit = s.audit_path();
    let started = Instant::now();
    // 10,000 paths of 9,000 bytes: each refused and recorded with its path cut to 2 KiB, about
    // 2.3 KiB a record, so the 16 MiB cap is reached after about 7,000 of them.
    let run = s.run("flood", &["count=10000", "path_bytes=9000"], Some(&audit));
    let elapsed = started.elapsed();
    assert_denied(
        &run,
        "the request's path and query is 9000 bytes, over the limit of 8192 bytes",
    );
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    let size = std::fs::metadata(&audit).unwrap().len();
    assert!(size <= AUDIT_CAP + ONE_RECORD, "{size}");
    let records = audit_lines(&audit);
    let (last, denied) = records.split_last().unwrap();
    assert!(denied.iter().all(|r| r["decision"] == "denied"));
    assert!(
        denied.len() > 6000 && denied.len() < 10_000,
        "{}",
        denied.len()
    );
    assert_eq!(last["decision"], "truncated");
    assert_eq!(last["skill"], SKILL);
    let reason = last["reason"].as_str().unwrap();
    let dropped = 10_000 - denied.len();
    assert!(
        reason.starts_with("audit truncated: ")
            && reason.ends_with(&format!(
                " bytes in {dropped} records dropped after the invocation's cap of 16777216 bytes"
            )),
        "{reason}"
    );
    s.assert_untouched();
}

#[test]
fn requests_past_the_request_cap_are_denied_naming_the_cap() {
    let s = setup("");
    let audit = s.audit_path();
    let started = Instant::now();
    let run = s.run("past-cap", &["count=10050"], Some(&audit));
    assert_denied(
        &run,
        "the invocation reached its limit of 10000 requests through connection `sim` (denied \
         requests count too); request 10050 was refused",
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let records = audit_lines(&audit);
    assert_eq!(records.len(), 10_050);
    let capped = records
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .unwrap()
                .starts_with("the invocation reached its limit of 10000 requests")
        })
        .count();
    assert_eq!(capped, 50);
    s.assert_untouched();
}

#[test]
fn a_pacing_wait_past_the_deadline_is_reported_as_pacing_not_as_the_deadline() {
    let s = setup("[connections.sim.pacing]\nper_minute = 1");
    let run = s.run_with("repeat", &["count=2"], None, &["--timeout", "2s"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let prefix = "skillhost: skill `http-flood` was stopped by its connection's pacing: the next \
                  call of connection `sim` would wait 6";
    assert!(run.stderr.contains(prefix), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            " s for its pacing window (1 call per minute), past the invocation's deadline in "
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(" s; raise --timeout or the connection's pacing\n"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("did not finish within its deadline"),
        "{}",
        run.stderr
    );
    assert_eq!(
        s.sim.stats().calls(),
        1,
        "the first call went, the second was paced"
    );
}

/// A GET of one incident.
fn get_incident() -> HttpRequest {
    HttpRequest {
        service: "defender".to_string(),
        method: Method::Get,
        path_and_query: "/api/incidents?$top=1".to_string(),
        headers: vec![("Accept".to_string(), "application/json".to_string())],
        body: None,
    }
}

/// [`get_incident`] of the `@odata.nextLink` that the page `body` closes with.
fn follow(body: &[u8]) -> HttpRequest {
    let page: Value = serde_json::from_slice(body).unwrap();
    HttpRequest {
        path_and_query: page["@odata.nextLink"].as_str().unwrap().to_string(),
        ..get_incident()
    }
}

/// Waits (10 s at most) until `sim` has answered `calls` API calls.
async fn wait_for_calls(sim: &Simulator, calls: u64) {
    let until = Instant::now() + Duration::from_secs(10);
    while sim.stats().calls() < calls && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A binding of `sim`'s connection, its `[connections.sim.pacing]` table holding `pacing`.
fn paced(sim: &Simulator, files: &Host, pacing: &str) -> Arc<BoundConnection> {
    let extra = format!("[connections.sim.pacing]\n{pacing}");
    let connection = files.in_process_connection(sim, "defender", &extra);
    Connector::new(None)
        .bind(connection, Instant::now() + Duration::from_secs(30))
        .unwrap()
}

/// A binding of `sim`'s connection that may make `max_requests` requests.
fn capped(sim: &Simulator, files: &Host, max_requests: u64) -> Arc<BoundConnection> {
    let connection = files.in_process_connection(sim, "defender", "");
    let limits = CallLimits {
        max_requests,
        ..CallLimits::default()
    };
    Connector::new(None)
        .bind_with_limits(connection, Instant::now() + Duration::from_secs(30), limits)
        .unwrap()
}

#[tokio::test]
async fn a_binding_with_a_request_cap_of_three_sends_three_and_denies_the_rest() {
    let sim = simulator(3, &[]);
    let files = Host::defender(&[]);
    let bound = capped(&sim, &files, 3);
    for _ in 0..3 {
        assert_eq!(bound.send("t", get_incident()).await.unwrap().status, 200);
    }
    for n in [4, 5] {
        assert_eq!(
            bound.send("t", get_incident()).await.unwrap_err(),
            HttpError::Denied(format!(
                "the invocation reached its limit of 3 requests through connection `sim` (denied \
                 requests count too); request {n} was refused"
            ))
        );
    }
    assert_eq!(sim.stats().calls(), 3);
    assert_eq!(bound.requests_made(), 5);
    assert_eq!(bound.requests_sent(), 3);
}

#[tokio::test]
async fn a_send_whose_body_passes_the_invocations_limit_is_refused_as_too_large() {
    let sim = simulator(3, &[]);
    let files = Host::defender(&[]);
    let bound = capped(&sim, &files, 10);
    let whole = bound.send("t", get_incident()).await.unwrap().body.len() as u64;
    assert!(whole > 100, "a page of one incident is {whole} bytes");
    // Held to its own length, the page is delivered; one byte less, and it is refused.
    let same = bound.send_within("t", get_incident(), whole).await.unwrap();
    assert_eq!(same.body.len() as u64, whole);
    assert_eq!(
        bound
            .send_within("t", get_incident(), whole - 1)
            .await
            .unwrap_err(),
        HttpError::TooLarge(whole - 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_page_asked_for_ahead_and_not_taken_counts_against_no_request_cap() {
    let sim = simulator(30, &[]);
    let files = Host::defender(&[]);
    let bound = capped(&sim, &files, 3);
    let first = bound.send("t", get_incident()).await.unwrap();
    // Following the first page's link: the third page is asked for as the second is read.
    let second = bound.send("t", follow(&first.body)).await.unwrap();
    assert_eq!(second.status, 200);
    wait_for_calls(&sim, 3).await;
    assert_eq!(sim.stats().calls(), 3, "the third page was asked for ahead");
    // The skill then asks for something else: its third request, within the cap of three.
    let third = bound.send("t", get_incident()).await.unwrap();
    assert_eq!(third.status, 200);
    assert_eq!(bound.requests_made(), 3);
    assert_eq!(sim.stats().calls(), 4);
    bound.abandon_prefetch();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn after_one_page_asked_for_ahead_went_untaken_nothing_more_is_asked_for_ahead() {
    let sim = simulator(30, &[]);
    let files = Host::defender(&[]);
    let bound = capped(&sim, &files, 100);
    let first = bound.send("t", get_incident()).await.unwrap();
    bound.send("t", follow(&first.body)).await.unwrap();
    // Asked for as the body was read, before `send` returned.
    assert!(bound.asking_ahead(), "the third page is asked for ahead");
    wait_for_calls(&sim, 3).await;
    assert_eq!(sim.stats().calls(), 3, "the third page was asked for ahead");
    // Something else: the third page goes untaken. Then a chain is followed again.
    let other = bound.send("t", get_incident()).await.unwrap();
    let followed = bound.send("t", follow(&other.body)).await.unwrap();
    assert_eq!(followed.status, 200);
    assert!(!bound.asking_ahead(), "nothing more is asked for ahead");
    assert_eq!(sim.stats().calls(), 5, "one page asked for ahead in all");
    assert_eq!(bound.requests_made(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_page_asked_for_ahead_whose_retry_pacing_refused_is_taken_as_pacing() {
    // Three calls a minute; the tokens are revoked after two calls, so the page asked for ahead
    // (the third) is refused with 401, and its retry with a fresh token waits for pacing.
    let sim = simulator(30, &["revoke-after=2"]);
    let files = Host::defender(&[]);
    let bound = paced(&sim, &files, "per_minute = 3");
    let first = bound.send("t", get_incident()).await.unwrap();
    let second = bound.send("t", follow(&first.body)).await.unwrap();
    wait_for_calls(&sim, 3).await;
    assert_eq!(sim.stats().calls(), 3, "the third page was asked for ahead");
    let third = bound.send("t", follow(&second.body)).await.unwrap_err();
    assert_eq!(third, HttpError::Timeout);
    let why = bound.take_pacing_refusal().unwrap_or_default();
    assert!(
        why.starts_with("the next call of connection `sim` would wait "),
        "{why:?}"
    );
    assert_eq!(sim.stats().calls(), 3, "the retry was not sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_skill_taking_a_page_that_pacing_kept_unsent_still_has_the_next_asked_for_ahead() {
    // Two calls a (one-second) minute: the third page, asked for ahead at once, finds no room
    // and is not sent; the skill's own request for it waits for the window.
    let sim = simulator(30, &[]);
    let files = Host::defender(&[]);
    let bound = paced(&sim, &files, "per_minute = 2\ntime_scale = 60");
    let first = bound.send("t", get_incident()).await.unwrap();
    let second = bound.send("t", follow(&first.body)).await.unwrap();
    assert!(bound.asking_ahead(), "the third page is asked for ahead");
    let third = bound.send("t", follow(&second.body)).await.unwrap();
    assert_eq!(third.status, 200);
    assert_eq!(bound.requests_made(), 3);
    assert!(bound.asking_ahead(), "the fourth page is asked for ahead");
    bound.abandon_prefetch();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_page_asked_for_ahead_counts_once_when_taken() {
    let sim = simulator(30, &[]);
    let files = Host::defender(&[]);
    let connection = files.in_process_connection(&sim, "defender", "");
    let bound = Connector::new(None)
        .bind(connection, Instant::now() + Duration::from_secs(30))
        .unwrap();
    let first = bound.send("t", get_incident()).await.unwrap();
    let second = bound.send("t", follow(&first.body)).await.unwrap();
    wait_for_calls(&sim, 3).await;
    assert_eq!(bound.requests_made(), 2);
    let third = bound.send("t", follow(&second.body)).await.unwrap();
    assert_eq!(third.status, 200);
    assert_eq!(bound.requests_made(), 3);
    // Sent once (the fourth page may be under way already: the skill follows links).
    let seen: Vec<String> = sim
        .stats()
        .seen()
        .iter()
        .map(|r| r.path_and_query.clone())
        .filter(|p| p.starts_with("/api/"))
        .collect();
    assert_eq!(seen.iter().filter(|p| p.ends_with("skip=2")).count(), 1);
    assert_eq!(
        seen[..3],
        [
            "/api/incidents?$top=1",
            "/api/incidents?%24top=1&%24skip=1",
            "/api/incidents?%24top=1&%24skip=2"
        ]
    );
    bound.abandon_prefetch();
}

#[tokio::test]
async fn a_binding_with_a_small_audit_cap_ends_with_one_truncated_record() {
    let sim = simulator(3, &[]);
    let files = Host::defender(&[]);
    let connection = files.in_process_connection(&sim, "defender", "");
    let path = files.cache_dir().join("audit.jsonl");
    let connector = Connector::new(Some(AuditLog::open(&path).unwrap()));
    let limits = CallLimits {
        max_audit_bytes: 4096,
        ..CallLimits::default()
    };
    let bound = connector
        .bind_with_limits(connection, Instant::now() + Duration::from_secs(30), limits)
        .unwrap();
    let mut overriding = get_incident();
    overriding
        .headers
        .push(("X-HTTP-Method-Override".to_string(), "DELETE".to_string()));
    for _ in 0..50 {
        assert!(matches!(
            bound.send("t", overriding.clone()).await,
            Err(HttpError::Denied(_))
        ));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("truncated"),
        "said once, when the invocation ends"
    );
    drop(bound);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (last, kept) = lines.split_last().unwrap();
    let kept_bytes: usize = kept.iter().map(|l| l.len() + 1).sum();
    assert!(kept_bytes <= 4096, "{kept_bytes}");
    let last: Value = serde_json::from_str(last).unwrap();
    assert_eq!(last["decision"], "truncated");
    assert_eq!(last["connection"], "sim");
    assert!(
        last["reason"].as_str().unwrap().ends_with(&format!(
            " bytes in {} records dropped after the invocation's cap of 4096 bytes",
            50 - kept.len()
        )),
        "{last}"
    );
    assert_eq!(sim.stats().calls(), 0);
}

#[test]
fn calls_whose_bodies_were_never_read_are_audited_when_the_skill_is_stopped_computing() {
    let s = setup("");
    let audit = s.audit_path();
    let run = s.run_with(
        "open-and-spin",
        &["count=3"],
        Some(&audit),
        &["--timeout", "1s"],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("skill `http-flood` did not finish within its deadline of 1 s"),
        "{}",
        run.stderr
    );
    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        assert_eq!(line["path"], "/api/incidents?$top=1");
        assert_eq!(line["decision"], "allowed");
        assert_eq!(line["status"], 200);
        assert_eq!(
            line["reason"],
            "body not read to the end; the process ended: the skill ran past its deadline"
        );
    }
}
