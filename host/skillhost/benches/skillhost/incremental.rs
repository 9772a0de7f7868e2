//! The cost of an incremental detections run that finds nothing new, against a plain run of the
//! same parameters (which re-delivers every row of the window), in the same run, through the
//! CLI against one simulator. The cursor's overlap is set to the whole window, so the
//! incremental run pages exactly what the plain run pages and drops every version as already
//! delivered: the difference is the cursor's own cost (lock, reads, the commit) and the rows not
//! written. A third figure is the steady state of a pipeline: the default 5-minute overlap,
//! which pages only the last minutes.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use skillhost_simulator::{Simulator, SimulatorConfig};
use skillhost_testkit::TempDir;

use crate::{UNPACED, median, skillhost, write_config};

const DETECTIONS: &str = "list_microsoft_defender_incidents_for_detections";

/// What one row of the table needs.
pub struct Figures {
    /// Plain run, same parameters: median wall time, and the rows it printed.
    pub plain: (Duration, usize),
    /// Incremental run finding nothing new, overlap = the whole window.
    pub nothing_new: Duration,
    /// Incremental run finding nothing new, the default overlap.
    pub steady: Duration,
}

/// Runs the CLI with `params`; returns its wall time and the rows it printed.
fn run(config: &str, cache: &Path, params: &[&str]) -> (Duration, usize) {
    let mut cmd = skillhost(config, cache);
    cmd.args([
        "run",
        DETECTIONS,
        "-c",
        "sim",
        "-o",
        "ndjson",
        "-p",
        "duration=1",
    ]);
    for param in params {
        cmd.args(["-p", param]);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let out = cmd.output().expect("spawn skillhost");
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (elapsed, out.stdout.iter().filter(|b| **b == b'\n').count())
}

/// Measures `incidents` (all inside the one-day window), `runs` runs of each kind.
pub fn measure(incidents: usize, runs: usize) -> Figures {
    let sim = Simulator::start(
        SimulatorConfig {
            incidents,
            rate_limits: false,
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0",
    )
    .expect("simulator");
    let dir = TempDir::new("bench-incremental");
    let config = write_config(dir.path(), &sim, UNPACED);
    let cache = dir.path().join("cache");
    let whole = ["incremental=true", "overlap_seconds=86400", "cursor=whole"];
    let steady = ["incremental=true", "cursor=steady"];
    // Warms the compile cache, and makes each cursor deliver the window once.
    let (_, rows) = run(&config, &cache, &[]);
    assert_eq!(
        run(&config, &cache, &whole).1,
        rows,
        "the first run delivers all"
    );
    run(&config, &cache, &steady);

    let mut plain = Vec::new();
    let mut nothing_new = Vec::new();
    let mut steady_runs = Vec::new();
    // Interleaved, so that a disturbance of the machine touches each kind alike.
    for _ in 0..runs {
        let (time, printed) = run(&config, &cache, &[]);
        assert_eq!(printed, rows, "a plain run delivers the whole window again");
        plain.push(time);
        let (time, printed) = run(&config, &cache, &whole);
        assert_eq!(printed, 0, "nothing new");
        nothing_new.push(time);
        let (time, printed) = run(&config, &cache, &steady);
        assert_eq!(printed, 0, "nothing new");
        steady_runs.push(time);
    }
    Figures {
        plain: (median(plain), rows),
        nothing_new: median(nothing_new),
        steady: median(steady_runs),
    }
}
