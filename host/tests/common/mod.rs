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
        Run::from(cmd.output().expect("run skillhost"))
    }
}

/// Path of a file in `dir`.
pub fn file_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
