//! Shared helpers of the end-to-end tests: run the real `skillhost` binary in isolated folders.

#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use skillhost_testkit::{TempDir, component};

/// The result of one CLI run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A skills folder and a private cache folder, and a way to run the CLI against them.
pub struct Host {
    pub skills: TempDir,
    pub cache: TempDir,
    pub envs: Vec<(String, String)>,
}

impl Host {
    /// A host whose skills folder holds the named test components.
    pub fn with(components: &[&str]) -> Self {
        Host {
            skills: TempDir::new("skills").with_components(components),
            cache: TempDir::new("cache"),
            envs: Vec::new(),
        }
    }

    /// Sets an environment variable of the skillhost process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    pub fn skills_dir(&self) -> &Path {
        self.skills.path()
    }

    pub fn cache_dir(&self) -> &Path {
        self.cache.path()
    }

    /// Runs `skillhost --skills-dir <skills> --cache-dir <cache> ARGS...`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run skillhost"))
    }

    /// The command `run` runs, for a test that spawns it itself: stdin closed, the skillhost
    /// variables of this process removed, the host's own set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skillhost"));
        cmd.arg("--skills-dir")
            .arg(self.skills.path())
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args)
            .stdin(Stdio::null())
            .env_remove("SKILLHOST_CONFIG")
            .env_remove("SKILLHOST_SKILLS")
            .env_remove("SKILLHOST_LOG")
            .env_remove("SKILLHOST_CACHE_DIR")
            // Pacing and state in a store of the host's own, never the user's.
            .env(
                "SKILLHOST_STATE",
                format!("sqlite:{}", self.cache.path().join("state.db").display()),
            );
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }
}

/// Path of a file in `dir`.
pub fn file_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

pub use skillhost_simulator::{Detail, Faults, SecretRef, Simulator, SimulatorConfig};

/// The environment variable test connections read their secret from.
pub const SECRET_VAR: &str = "SKILLHOST_TEST_SECRET";

impl Host {
    /// A host with the three Defender skills this checkout built, plus `components`.
    pub fn defender(components: &[&str]) -> Self {
        let host = Host::with(components);
        for entry in std::fs::read_dir(env!("SKILLHOST_BUILT_SKILLS")).expect("built skills") {
            let path = entry.expect("entry").path();
            std::fs::copy(
                &path,
                host.skills.path().join(path.file_name().expect("name")),
            )
            .expect("copy skill");
        }
        host.env(SECRET_VAR, skillhost_simulator::DEFAULT_CLIENT_SECRET)
    }

    /// Writes a config with one connection `sim` to `sim` speaking `api`, plus `extra` TOML
    /// lines inside the connection's table; returns its path as a string for `--config`.
    pub fn config(&self, sim: &Simulator, api: &str, extra: &str) -> String {
        let path = self.cache.path().join("skillhost.toml");
        let text = sim.connection_toml("sim", "acme", api, SecretRef::Env(SECRET_VAR), extra);
        std::fs::write(&path, text).expect("write config");
        path.display().to_string()
    }

    /// The connection `sim` for in-process tests: its secret is read from a private file in the
    /// host's folder rather than from this process's environment, which tests share.
    pub fn in_process_connection(
        &self,
        sim: &Simulator,
        api: &str,
        extra: &str,
    ) -> skillhost_upstream::connections::Connection {
        let secret = self.cache.path().join("client-secret");
        std::fs::write(&secret, skillhost_simulator::DEFAULT_CLIENT_SECRET).expect("write secret");
        let text = sim.connection_toml("sim", "acme", api, SecretRef::File(&secret), extra);
        let config = skillhost_upstream::connections::Config::parse(&text).expect("config");
        config.connection("sim").expect("connection").clone()
    }

    /// An in-process host over this host's skills folder, with no compile cache.
    pub async fn in_process(&self) -> skillhost_runtime::host::SkillHost {
        skillhost_runtime::host::SkillHost::open(
            skillhost_runtime::sandbox::RuntimeOptions::default(),
            skillhost_runtime::compile_cache::CompileCache::disabled(),
            vec![self.skills_dir().to_path_buf().into()],
            skillhost_upstream::outbound::Connector::new(None),
        )
        .await
        .expect("host")
    }
}

/// A simulator with `incidents` incidents and `faults`, on a free loopback port.
pub fn simulator(incidents: usize, faults: &[&str]) -> Simulator {
    let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
    let config = SimulatorConfig {
        incidents,
        faults: Faults::parse(&faults).expect("faults"),
        ..SimulatorConfig::default()
    };
    Simulator::start(config, "127.0.0.1:0").expect("start simulator")
}

/// Decodes a percent-encoded query value.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf8")
}

/// The decoded `$filter` of every list request the simulator saw.
pub fn filters_seen(sim: &Simulator) -> Vec<String> {
    sim.stats()
        .seen()
        .iter()
        .filter_map(|r| {
            let query = r.path_and_query.split_once('?')?.1;
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("$filter="))
                .map(decode)
        })
        .collect()
}

// `skillhost serve` end to end: the server spawned and watched, and a small blocking HTTP/1.1
// client over loopback (no HTTP crate among the dev-dependencies).

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for what should happen: a failure timeout, never a measurement.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} body is not JSON ({e}): {}", self.status, self.text()))
    }

    /// The body parsed as NDJSON: one document a line.
    pub fn ndjson(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("NDJSON line is not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// `error.code` of an error document.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{} not an error document: {}", self.status, self.text()))
            .to_string()
    }
}

/// Sends one request (`Connection: close`) to `127.0.0.1:port` and reads the whole answer:
/// a body of `content-length` bytes, a chunked body up to its last chunk, or else up to the
/// end of the stream. `Err` says what went wrong, quoting the end of what arrived: a refused
/// connection, or an answer cut short (a chunked body without its last chunk, say).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    exchange(port, method, path, headers, body, None, &mut || {})
}

/// How a slow client reads an answer: a small receive buffer, then `bytes` at a time with a
/// `pause` before each read, so that the server's side of the connection stays full.
#[derive(Debug, Clone, Copy)]
pub struct SlowReader {
    /// `SO_RCVBUF` of the client's socket.
    pub receive_buffer: usize,
    /// The most one read takes.
    pub bytes: usize,
    /// The pause before each read.
    pub pause: Duration,
}

/// Like [`http`], reading the answer as `slow` says; `after_head` runs once the status line
/// and headers arrived, before any of the body is read.
pub fn http_slow(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    slow: SlowReader,
    after_head: &mut dyn FnMut(),
) -> Result<Response, String> {
    exchange(port, method, path, headers, body, Some(slow), after_head)
}

/// A socket read as a slow network would deliver it.
struct Paced {
    stream: TcpStream,
    slow: Option<SlowReader>,
}

impl std::io::Read for Paced {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.slow {
            None => self.stream.read(buf),
            Some(slow) => {
                std::thread::sleep(slow.pause);
                let n = buf.len().min(slow.bytes);
                self.stream.read(&mut buf[..n])
            }
        }
    }
}

fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    slow: Option<SlowReader>,
    after_head: &mut dyn FnMut(),
) -> Result<Response, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("{method} {path}: cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(PATIENCE))
        .and_then(|()| stream.set_write_timeout(Some(PATIENCE)))
        .map_err(|e| e.to_string())?;
    if let Some(slow) = slow {
        set_receive_buffer(&stream, slow.receive_buffer);
    }
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body.unwrap_or_default());
    stream
        .write_all(&request)
        .map_err(|e| format!("{method} {path}: cannot send: {e}"))?;
    let capacity = slow.map_or(8 * 1024, |s| s.bytes.max(1));
    let mut reader = BufReader::with_capacity(capacity, Paced { stream, slow });
    let mut response = read_head(&mut reader).map_err(|e| format!("{method} {path}: {e}"))?;
    after_head();
    read_body(&mut reader, &mut response).map_err(|e| format!("{method} {path}: {e}"))?;
    Ok(response)
}

/// Sets `SO_RCVBUF` of `stream`.
fn set_receive_buffer(stream: &TcpStream, bytes: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).expect("buffer size");
    // SAFETY: setsockopt(2) on a socket this function's caller owns, with a c_int option value
    // and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_RCVBUF)");
}

/// One line ending in `\n`, without its line end.
fn read_line(reader: &mut BufReader<Paced>, what: &str) -> Result<String, String> {
    let mut line = Vec::new();
    reader
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("reading the {what}: {e}"))?;
    if !line.ends_with(b"\n") {
        return Err(format!(
            "the stream ended in the {what} ({:?})",
            String::from_utf8_lossy(&line)
        ));
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// The status line and the headers.
fn read_head(reader: &mut BufReader<Paced>) -> Result<Response, String> {
    let status_line = read_line(reader, "status line")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let header = read_line(reader, "headers")?;
        if header.is_empty() {
            break;
        }
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("not a header: {header:?}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Response {
        status,
        headers,
        body: Vec::new(),
    })
}

/// The body of `response`, de-chunked.
fn read_body(reader: &mut BufReader<Paced>, response: &mut Response) -> Result<(), String> {
    let status = response.status;
    let cut = |body: &[u8], why: String| {
        let tail = String::from_utf8_lossy(&body[body.len().saturating_sub(300)..]).into_owned();
        format!(
            "answer {status} cut short after {} body bytes ({why}); it ended with: {tail:?}",
            body.len()
        )
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length = response
        .header("content-length")
        .map(|v| {
            v.parse::<usize>()
                .map_err(|e| format!("content-length {v:?}: {e}"))
        })
        .transpose()?;
    if chunked {
        loop {
            let size_line = read_line(reader, "chunk size").map_err(|e| cut(&response.body, e))?;
            let hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| cut(&response.body, format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                // Trailers, then the empty line.
                while !read_line(reader, "trailers")
                    .map_err(|e| cut(&response.body, e))?
                    .is_empty()
                {}
                break;
            }
            let start = response.body.len();
            response.body.resize(start + size, 0);
            reader
                .read_exact(&mut response.body[start..])
                .map_err(|e| cut(&response.body[..start], e.to_string()))?;
            let mut crlf = [0u8; 2];
            reader
                .read_exact(&mut crlf)
                .map_err(|e| cut(&response.body, e.to_string()))?;
        }
    } else if let Some(length) = length {
        response.body.resize(length, 0);
        reader
            .read_exact(&mut response.body)
            .map_err(|e| cut(&[], format!("{length} bytes announced: {e}")))?;
    } else {
        reader
            .read_to_end(&mut response.body)
            .map_err(|e| cut(&response.body, e.to_string()))?;
    }
    Ok(())
}

/// What a spawned server wrote to stderr so far, and whether the pipe closed.
#[derive(Default)]
struct StderrLog {
    lines: Vec<String>,
    closed: bool,
}

/// A running `skillhost serve`, killed when dropped.
pub struct Serve {
    child: std::process::Child,
    /// The port it listens on (it was started with `--listen 127.0.0.1:0`).
    pub port: u16,
    stderr: Arc<(Mutex<StderrLog>, Condvar)>,
    exited: Option<std::process::ExitStatus>,
}

impl Host {
    /// Spawns `skillhost serve --listen 127.0.0.1:0 ARGS...` and waits for its line
    /// `skillhost: serving N skill(s) on http://127.0.0.1:PORT` (or `https://`).
    pub fn serve(&self, args: &[&str]) -> Serve {
        let mut full = vec!["serve", "--listen", "127.0.0.1:0"];
        full.extend_from_slice(args);
        let mut child = self
            .command(&full)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn skillhost serve");
        let pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new((Mutex::new(StderrLog::default()), Condvar::new()));
        let log = stderr.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            loop {
                let mut line = Vec::new();
                let n = reader.read_until(b'\n', &mut line).unwrap_or(0);
                let (lock, changed) = &*log;
                let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
                if n == 0 {
                    state.closed = true;
                    changed.notify_all();
                    return;
                }
                let text = String::from_utf8_lossy(&line);
                state
                    .lines
                    .push(text.trim_end_matches(['\r', '\n']).to_string());
                changed.notify_all();
            }
        });
        let mut serve = Serve {
            child,
            port: 0,
            stderr,
            exited: None,
        };
        let line = serve.wait_for_stderr("the line `skillhost: serving ...`", |l| {
            l.starts_with("skillhost: serving ") && l.contains("://127.0.0.1:")
        });
        serve.port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        serve
    }
}

impl Serve {
    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        let (lock, _) = &*self.stderr;
        let state = lock.lock().unwrap_or_else(|p| p.into_inner());
        state.lines.join("\n")
    }

    /// The first stderr line matching `want`, waiting for it up to [`PATIENCE`]; panics
    /// (showing stderr) when stderr closes or the time passes without one.
    pub fn wait_for_stderr(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let (lock, changed) = &*self.stderr;
        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(line) = state.lines.iter().find(|l| want(l)) {
                return line.clone();
            }
            let now = Instant::now();
            if state.closed || now >= deadline {
                let text = state.lines.join("\n");
                panic!("skillhost serve never wrote {what}; its stderr:\n{text}");
            }
            state = changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Sends `signal` (such as `libc::SIGTERM`) to the server.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped yet.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// The server's exit status, waiting for it to end by itself up to [`PATIENCE`]; panics
    /// (after killing it) when it does not.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                self.exited = Some(status);
                // The reader thread sees the pipe close once the process is gone.
                let (lock, changed) = &*self.stderr;
                let state = lock.lock().unwrap_or_else(|p| p.into_inner());
                let _ = changed.wait_timeout_while(state, Duration::from_secs(10), |s| !s.closed);
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "skillhost serve did not exit within {PATIENCE:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a request with `key` as its bearer key (if any); see [`http`].
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Response, String> {
        let bearer = key.map(|k| format!("Bearer {k}"));
        let mut headers = Vec::new();
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer.as_str()));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        http(self.port, method, path, &headers, body)
    }

    /// Like [`Serve::try_request`], panicking (with the server's stderr) on a transport error.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&[u8]>,
    ) -> Response {
        self.try_request(method, path, key, body)
            .unwrap_or_else(|e| panic!("{e}\nserver stderr:\n{}", self.stderr()))
    }

    /// `GET path` with `key`.
    pub fn get(&self, path: &str, key: Option<&str>) -> Response {
        self.request("GET", path, key, None)
    }

    /// `POST /v1/skills/{skill}/invoke` with `key` and the JSON `body`.
    pub fn invoke(&self, skill: &str, key: &str, body: &serde_json::Value) -> Response {
        let body = body.to_string();
        self.request(
            "POST",
            &format!("/v1/skills/{skill}/invoke"),
            Some(key),
            Some(body.as_bytes()),
        )
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The key of caller `soc` ([`add_caller`]).
pub const SOC_KEY: &str = "soc-key-3f9a1c7e5b2d48a6c0e2";

/// Puts caller `soc` (tenant `acme`, key in a file) in front of the config at `config`.
pub fn add_caller(host: &Host, config: &str) {
    let key_file = host.cache_dir().join("soc.key");
    std::fs::write(&key_file, SOC_KEY).expect("key");
    let text = std::fs::read_to_string(config).expect("config");
    std::fs::write(
        config,
        format!(
            "[callers.soc]\nkey = {{ file = {:?} }}\ntenants = [\"acme\"]\n\n{text}",
            key_file.display().to_string()
        ),
    )
    .expect("config");
}
