//! The `serve` figures of BENCHMARKS.md, each against a baseline measured in the same run:
//! no-op invocations per second over HTTP at concurrency 64 (vs one CLI process per
//! invocation), a warm `get` through `serve` (vs the same upstream GET made directly with a
//! cached token), and resident memory per in-flight detections invocation.
//!
//! Requests are sent by a small keep-alive HTTP/1.1 client over raw sockets, the same for the
//! server and for the baseline, so neither side pays for a client the other does not.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use skillhost_simulator::{self as simulator, SecretRef, Simulator, SimulatorConfig};
use skillhost_testkit::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET_VAR: &str = "SKILLHOST_BENCH_SECRET";
const KEY: &str = "bench-api-key-0123456789abcdef";

/// How much each measure does.
pub struct ServeSizes {
    /// Duration of the no-op load.
    pub load: Duration,
    /// Sequential requests of the warm `get` comparison (each side).
    pub gets: usize,
    /// CLI no-op runs (the per-process baseline).
    pub cli_runs: usize,
    /// Detections invocations held in flight for the memory figure.
    pub in_flight: usize,
}

/// What was measured.
pub struct ServeFigures {
    /// No-op invocations per second at concurrency 64, and their p50 and p99 latency.
    pub noop_per_second: f64,
    /// Median latency.
    pub noop_p50: Duration,
    /// 99th percentile latency.
    pub noop_p99: Duration,
    /// CLI no-op invocations per second, one process each, one at a time.
    pub cli_per_second: f64,
    /// Median warm `get` through serve.
    pub get_serve: Duration,
    /// Median of the same upstream GET made directly.
    pub get_native: Duration,
    /// Resident memory added per in-flight detections invocation, bytes.
    pub rss_per_invocation: f64,
    /// The server's resident memory before those invocations, bytes.
    pub rss_idle: u64,
}

/// A running `skillhost serve`.
struct Served {
    child: Child,
    port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_serve(config: &Path, cache: &Path, extra_skills: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skillhost"))
        .arg("--config")
        .arg(config)
        .arg("--cache-dir")
        .arg(cache)
        .args(["serve", "--listen", "127.0.0.1:0", "--max-running", "64"])
        .env("SKILLHOST_SKILLS", extra_skills)
        .env(
            "SKILLHOST_STATE",
            format!("sqlite:{}", cache.join("state.db").display()),
        )
        .env(SECRET_VAR, simulator::DEFAULT_CLIENT_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .expect("stderr");
        if let Some(at) = line.strip_prefix("skillhost: serving ") {
            let port = at.rsplit(':').next().expect("port");
            break port.trim().parse().expect("port number");
        }
    };
    // Keep draining stderr so the server never blocks on it; what it says is shown.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("serve: {line}");
        }
    });
    Served { child, port }
}

/// One keep-alive HTTP/1.1 connection.
struct Client {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Client {
    async fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buffer: Vec::with_capacity(64 << 10),
        }
    }

    /// Sends `request` (complete bytes) and reads the answer; returns the status and body.
    async fn call(&mut self, request: &[u8]) -> (u16, Vec<u8>) {
        self.stream.write_all(request).await.expect("write");
        self.buffer.clear();
        let mut chunk = [0u8; 16 << 10];
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at + 4;
            }
            let n = self.stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed mid-answer");
            self.buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).to_ascii_lowercase();
        let status: u16 = head[9..12].parse().expect("status");
        let chunked = head.contains("transfer-encoding: chunked");
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse::<usize>().expect("length"));
        let mut body = self.buffer[head_end..].to_vec();
        if let Some(length) = length {
            while body.len() < length {
                let n = self.stream.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed mid-body");
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(length);
        } else if chunked {
            while !body.ends_with(b"0\r\n\r\n") {
                let n = self.stream.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed mid-body");
                body.extend_from_slice(&chunk[..n]);
            }
        }
        (status, body)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `connections` connections sending `request` back to back for `duration`; every answer must
/// have status 200. Returns the answers per second and every latency.
async fn load(
    port: u16,
    request: Vec<u8>,
    connections: usize,
    duration: Duration,
) -> (f64, Vec<Duration>) {
    let request = std::sync::Arc::new(request);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(port).await;
            let mut latencies = Vec::new();
            while started.elapsed() < duration {
                let sent = Instant::now();
                let (status, body) = client.call(&request).await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("load task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    (all.len() as f64 / elapsed, all)
}

fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next().map(str::to_string))
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn write_setup(dir: &Path, sim: &Simulator) -> (PathBuf, PathBuf) {
    let key = dir.join("bench.key");
    std::fs::write(&key, KEY).expect("key");
    // Pacing raised so that the published rate limit does not decide the figures.
    let paced = "[connections.sim.pacing]\nper_minute = 1000000\nper_hour = 100000000";
    let mut text = sim.connection_toml(
        "sim",
        "bench",
        "defender",
        SecretRef::Env(SECRET_VAR),
        paced,
    );
    text.push_str(&format!(
        "\n[callers.bench]\nkey = {{ file = {:?} }}\ntenants = [\"bench\"]\n",
        key.display().to_string()
    ));
    let config = dir.join("skillhost.toml");
    std::fs::write(&config, text).expect("config");
    (config, dir.join("cache"))
}

/// Every `serve` figure.
pub async fn measure(sizes: &ServeSizes) -> ServeFigures {
    let sim = Simulator::start(
        SimulatorConfig {
            rate_limits: false,
            incidents: 400,
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0",
    )
    .expect("sim");
    let dir = TempDir::new("bench-serve").with_components(&["noop"]);
    let (config, cache) = write_setup(dir.path(), &sim);
    let served = start_serve(&config, &cache, dir.path());
    let port = served.port;

    // No-op invocations at concurrency 64.
    let noop = post("/v1/skills/noop/invoke", "{}");
    let _ = load(port, noop.clone(), 4, Duration::from_millis(200)).await;
    let (noop_per_second, latencies) = load(port, noop, 64, sizes.load).await;
    let noop_p50 = super::median(latencies.clone());
    let noop_p99 = super::percentile(latencies, 0.99);

    // One CLI process per invocation.
    let cli = || {
        let started = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_skillhost"))
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--skills-dir")
            .arg(dir.path())
            .args(["run", "noop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("cli");
        assert!(status.success());
        started.elapsed()
    };
    cli();
    let cli_times: Vec<Duration> = (0..sizes.cli_runs).map(|_| cli()).collect();
    let cli_per_second = 1.0 / super::median(cli_times).as_secs_f64();

    // A warm `get` through serve, against the same GET sent directly with a cached token.
    let get = post(
        "/v1/skills/get_microsoft_defender_incident/invoke",
        r#"{"connection":"sim","input":{"incident_id":"100003"}}"#,
    );
    let mut client = Client::connect(port).await;
    for _ in 0..3 {
        let (status, body) = client.call(&get).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let mut serve_times = Vec::new();
    for _ in 0..sizes.gets {
        let sent = Instant::now();
        let (status, _) = client.call(&get).await;
        serve_times.push(sent.elapsed());
        assert_eq!(status, 200);
    }
    let sim_port: u16 = sim
        .base_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("simulator port");
    let mut upstream = Client::connect(sim_port).await;
    let form = format!(
        "client_id={}&client_secret={}&scope=https%3A%2F%2Fapi.security.microsoft.com%2F.default&grant_type=client_credentials",
        simulator::DEFAULT_CLIENT_ID,
        simulator::DEFAULT_CLIENT_SECRET
    );
    let token_request = format!(
        "POST /{}/oauth2/v2.0/token HTTP/1.1\r\nHost: sim\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        simulator::DEFAULT_TENANT_ID,
        form.len()
    );
    let (status, body) = upstream.call(token_request.as_bytes()).await;
    assert_eq!(status, 200);
    let token: Value = serde_json::from_slice(&body).expect("token");
    let direct = format!(
        "GET /api/incidents/100003 HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer {}\r\n\r\n",
        token["access_token"].as_str().expect("token")
    );
    for _ in 0..3 {
        let (status, _) = upstream.call(direct.as_bytes()).await;
        assert_eq!(status, 200);
    }
    let mut native_times = Vec::new();
    for _ in 0..sizes.gets {
        let sent = Instant::now();
        let (status, _) = upstream.call(direct.as_bytes()).await;
        native_times.push(sent.elapsed());
        assert_eq!(status, 200);
    }
    let get_serve = super::median(serve_times);
    let get_native = super::median(native_times);
    drop(served);

    let (rss_idle, rss_per_invocation) = in_flight_memory(sizes).await;
    ServeFigures {
        noop_per_second,
        noop_p50,
        noop_p99,
        cli_per_second,
        get_serve,
        get_native,
        rss_per_invocation,
        rss_idle,
    }
}

/// Resident memory of a server before and while `sizes.in_flight` detections invocations run
/// against a slow simulator (each page 20 ms late): (idle, added per invocation).
async fn in_flight_memory(sizes: &ServeSizes) -> (u64, f64) {
    let sim = Simulator::start(
        SimulatorConfig {
            rate_limits: false,
            incidents: 600,
            faults: skillhost_simulator::Faults {
                slow: Some(Duration::from_millis(20)),
                ..skillhost_simulator::Faults::default()
            },
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0",
    )
    .expect("sim");
    let dir = TempDir::new("bench-serve-rss");
    let (config, cache) = write_setup(dir.path(), &sim);
    let served = start_serve(&config, &cache, dir.path());
    let pid = served.child.id();
    let detections = post(
        "/v1/skills/list_microsoft_defender_incidents_for_detections/invoke",
        r#"{"connection":"sim","input":{"page_size":20}}"#,
    );
    // One run first, so that code, caches and the token are in place before the baseline.
    let mut warm = Client::connect(served.port).await;
    let (status, _) = warm.call(&detections).await;
    assert_eq!(status, 200);
    let idle = rss_of(pid);
    let mut tasks = Vec::new();
    for _ in 0..sizes.in_flight {
        let request = detections.clone();
        let port = served.port;
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(port).await;
            let (status, _) = client.call(&request).await;
            assert_eq!(status, 200);
        }));
    }
    let mut peak = idle;
    while tasks.iter().any(|t| !t.is_finished()) {
        peak = peak.max(rss_of(pid));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for task in tasks {
        task.await.expect("detections task");
    }
    let added = peak.saturating_sub(idle) as f64 / sizes.in_flight.max(1) as f64;
    (idle, added)
}
