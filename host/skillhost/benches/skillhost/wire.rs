//! Detections at the speed of the wire: `skillhost run list_microsoft_defender_incidents_for_detections`
//! (a separate process, warm compile cache, rows to `/dev/null`) against one `curl` process that
//! downloads the same pages over one connection, alternated in the same run, against the same
//! simulator serving realistic incidents (`Detail::Realistic`) with the connection's pacing
//! raised so that the published rate limit does not dominate. `list_microsoft_defender_incidents`
//! over the same window (`-o json`, one result object) runs in the same rotation.
//!
//! The simulator answers as fast as it can build a page (about 2 ms for 100 realistic incidents
//! here), or, for the paced rows, every API answer [`PACED`] later: then a page costs about what
//! a page of the independent mock that issue 14 measured against cost (0.153 s for 27 pages).
//!
//! Wall and CPU (user + system, from `wait4`) are per child process; the simulator runs in the
//! bench process, so its time is in neither.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use skillhost_simulator::{Detail, Faults, SecretRef, Simulator, SimulatorConfig};
use skillhost_testkit::TempDir;

use super::{SECRET_VAR, UNPACED, median, skillhost};

/// How much later than it could every API answer of the paced rows comes.
pub const PACED: Duration = Duration::from_millis(3);

/// What the end-to-end row reports.
pub struct WireFigures {
    /// Pages of the window.
    pub pages: usize,
    /// Bytes of those pages (incident JSON).
    pub bytes: usize,
    /// Rows the skill wrote.
    pub rows: u64,
    /// The download floor: one curl process, median wall and CPU.
    pub curl: (Duration, Duration),
    /// The CLI run: median wall and CPU.
    pub cli: (Duration, Duration),
    /// The list skill's CLI run over the same window: median wall and CPU (when it was run).
    pub list: Option<(Duration, Duration)>,
}

/// Runs `cmd` with its output discarded; (wall, CPU of the child). Panics when it fails.
// The child is reaped by wait4, which also gives its resource usage; `Child::wait` cannot.
#[allow(clippy::zombie_processes)]
fn measured(cmd: &mut Command) -> (Duration, Duration) {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; the pid is our own child's.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed"
    );
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (wall, time(usage.ru_utime) + time(usage.ru_stime))
}

/// `curl` with `args`, its standard output as text.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-f"])
        .args(args)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {args:?} failed");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The page URLs from `first` on, following `@odata.nextLink`, and their bytes in all.
fn pages(first: String, bearer: &str) -> (Vec<String>, usize) {
    let (mut urls, mut bytes, mut next) = (Vec::new(), 0, Some(first));
    while let Some(url) = next {
        let page = curl(&["-H", bearer, &url]);
        bytes += page.len();
        let page: Value = serde_json::from_str(&page).expect("page JSON");
        next = page["@odata.nextLink"].as_str().map(str::to_string);
        urls.push(url);
    }
    (urls, bytes)
}

/// The end-to-end row over `incidents` realistic incidents, `runs` alternated runs of each, every
/// API answer `delay` later than the simulator could give it, the list skill in the rotation
/// if `with_list`; `None` when curl is not installed.
pub fn measure(
    incidents: usize,
    runs: usize,
    delay: Option<Duration>,
    with_list: bool,
) -> Option<WireFigures> {
    if !super::curl_available() {
        return None;
    }
    let sim = Simulator::start(
        SimulatorConfig {
            incidents,
            rate_limits: false,
            detail: Detail::Realistic,
            faults: Faults {
                slow: delay,
                ..Faults::default()
            },
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0",
    )
    .expect("sim");
    let dir = TempDir::new("bench-wire");
    let config = dir.path().join("skillhost.toml");
    let text = sim.connection_toml(
        "sim",
        "bench",
        "defender",
        SecretRef::Env(SECRET_VAR),
        UNPACED,
    );
    std::fs::write(&config, text).expect("config");
    let cli = || cli_command(&config, &dir.path().join("cache"), DETECTIONS);
    let list = || cli_command(&config, &dir.path().join("cache"), LIST);
    // Its first run compiles the list skill.
    if with_list {
        assert!(
            list().output().expect("skillhost").status.success(),
            "skillhost failed"
        );
    }

    // A first run compiles the skill, fills the simulator's page cache and gives the filter.
    let out = cli().output().expect("skillhost");
    assert!(out.status.success(), "skillhost failed");
    let rows = out.stdout.iter().filter(|b| **b == b'\n').count() as u64;
    let summary: Value = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|line| serde_json::from_str(line).ok())
        .expect("summary line");
    let filter = summary["filter"].as_str().expect("filter").to_string();

    let base = sim.base_url();
    let (token_url, form) = super::token_request(&sim);
    let token: Value =
        serde_json::from_str(&curl(&["-X", "POST", &token_url, "-d", &form])).expect("token JSON");
    let bearer = format!(
        "Authorization: Bearer {}",
        token["access_token"].as_str().expect("token")
    );
    let query: String = form_query(&filter);
    let (urls, bytes) = pages(format!("{base}/api/incidents?{query}"), &bearer);
    let download = || {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-f", "-H", &bearer]);
        for url in &urls {
            cmd.args(["-o", "/dev/null", url]);
        }
        cmd
    };

    let (mut curl_runs, mut cli_runs, mut list_runs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        curl_runs.push(measured(&mut download()));
        cli_runs.push(measured(&mut cli()));
        if with_list {
            list_runs.push(measured(&mut list()));
        }
    }
    let medians = |runs: &[(Duration, Duration)]| {
        (
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
        )
    };
    Some(WireFigures {
        pages: urls.len(),
        bytes,
        rows,
        curl: medians(&curl_runs),
        cli: medians(&cli_runs),
        list: with_list.then(|| medians(&list_runs)),
    })
}

const DETECTIONS: &str = "list_microsoft_defender_incidents_for_detections";
const LIST: &str = "list_microsoft_defender_incidents";

/// The CLI command of a row: the last two days, pages of 100; the detections' rows as NDJSON,
/// the list's result as (pretty) JSON.
fn cli_command(config: &Path, cache: &Path, skill: &str) -> Command {
    // Pacing (raised) and state in the bench's own store.
    let mut cmd = skillhost(config, cache);
    let format = if skill == LIST { "json" } else { "ndjson" };
    cmd.args([
        "run",
        skill,
        "-c",
        "sim",
        "-p",
        "duration=2",
        "-p",
        "page_size=100",
        "-o",
        format,
    ]);
    cmd
}

/// `$filter=FILTER&$top=100`, form-encoded as the skill sends it.
fn form_query(filter: &str) -> String {
    let mut query = String::from("%24filter=");
    for byte in filter.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                query.push(byte as char)
            }
            _ => query.push_str(&format!("%{byte:02X}")),
        }
    }
    query + "&%24top=100"
}
