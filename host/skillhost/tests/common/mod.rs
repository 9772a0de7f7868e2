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
            .env_remove("SKILLHOST_CACHE_DIR");
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

pub use skillhost_simulator::{Faults, SecretRef, Simulator, SimulatorConfig};

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
