//! What the conformance tests and the pacing benchmark need around a store: a temporary folder
//! for SQLite files, and a `redis-server` (or `valkey-server`) of their own on a free loopback
//! port, killed when dropped.

#![allow(dead_code)]

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use skillhost_state::{Store, StoreUrl};

/// A folder removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "skillhost-state-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary folder");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Redis-compatible server binary on PATH, if any.
pub fn redis_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["redis-server", "valkey-server"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// A server of our own, without persistence, on a loopback port.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts one, or says why it cannot.
    pub fn start(binary: &Path) -> Result<RedisServer, String> {
        Self::start_with(binary, &[])
    }

    /// Starts one with `extra` arguments (such as `--requirepass PW`).
    pub fn start_with(binary: &Path, extra: &[&str]) -> Result<RedisServer, String> {
        // The port is found free and then handed over: another process may take it meanwhile,
        // so a server that exits at once is started again on another port.
        for _ in 0..5 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free loopback port: {e}"))?
                .port();
            if let Ok(server) = Self::start_on_with(binary, port, extra) {
                return Ok(server);
            }
        }
        Err(format!("{} did not start listening", binary.display()))
    }

    /// Starts one on `port` (for a restart on the port a stopped one had).
    pub fn start_on(binary: &Path, port: u16) -> Result<RedisServer, String> {
        Self::start_on_with(binary, port, &[])
    }

    fn start_on_with(binary: &Path, port: u16, extra: &[&str]) -> Result<RedisServer, String> {
        let mut child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(RedisServer {
                    child: Some(child),
                    port,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "{} did not start listening on port {port}",
            binary.display()
        ))
    }

    pub fn url(&self) -> StoreUrl {
        StoreUrl::Redis {
            host: "127.0.0.1".into(),
            port: self.port,
            db: 0,
        }
    }

    /// Kills the server now (the store becomes unreachable).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One store under test, and what keeps it alive.
pub enum Backend {
    Sqlite { dir: TempDir, url: StoreUrl },
    Redis { server: RedisServer, url: StoreUrl },
}

impl Backend {
    pub fn sqlite() -> Backend {
        let dir = TempDir::new("sqlite");
        let url = StoreUrl::Sqlite {
            path: dir.path().join("state.db"),
        };
        Backend::Sqlite { dir, url }
    }

    /// A Redis backend, or `None` (after saying so) when no server is installed. With `CI`
    /// set, a missing server fails the test instead: CI never skips these.
    pub fn redis(test: &str) -> Option<Backend> {
        let Some(binary) = redis_binary() else {
            let why = "neither redis-server nor valkey-server is on PATH \
                       (install one, e.g. `apt-get install redis-server`)";
            if std::env::var_os("CI").is_some() {
                panic!("{test}: CI is set, and the Redis tests may not be skipped: {why}");
            }
            // Once per test binary, and past libtest's capture (which holds `eprintln!` of passing
            // tests), so that a plain `cargo test` shows it.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\nskipped the Redis tests (they pass without running; CI never skips them): \
                     {why}"
                );
            });
            return None;
        };
        let server = RedisServer::start(&binary).unwrap_or_else(|e| panic!("{test}: {e}"));
        let url = server.url();
        Some(Backend::Redis { server, url })
    }

    pub fn url(&self) -> &StoreUrl {
        match self {
            Backend::Sqlite { url, .. } | Backend::Redis { url, .. } => url,
        }
    }

    /// A new handle on the store (new connections; for SQLite as another process would open
    /// the file).
    pub async fn open(&self) -> Store {
        Store::open(self.url()).await.expect("open the store")
    }
}
