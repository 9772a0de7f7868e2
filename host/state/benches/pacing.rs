//! The cost of one pacing acquisition ([`Store::admit`]) on each store: SQLite (a file in a
//! temporary folder) and Redis (a `redis-server` of its own on loopback, when installed).
//!
//! `cargo bench -p skillhost-state --bench pacing` (add `-- --quick` for one short pass, as CI
//! does so that the benchmark cannot rot). Each case reports the median, 99th percentile and mean
//! of single calls, timed one by one from the caller's side (a two-worker tokio runtime):
//!
//! - `admitted`: calls that fit, with the call log growing to the case's size (the published
//!   limit of 1,500 an hour makes 1,500 the largest log a real key has);
//! - `refused`: calls that do not fit (the answer is a wait; nothing is written);
//! - `4 tasks`: four tasks on one handle admitting at once, per call as each task sees it;
//! - `baseline`: the round trip every call pays before any work, measured the same way: for
//!   SQLite an empty task on tokio's blocking threads, for Redis a `PING` on its own connection.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use skillhost_state::{Admission, PacingWindows, Store};
use support::{Backend, RedisServer};

/// Calls made before timing: the connection, the script cache, the file's pages.
const WARM: usize = 20;

/// Limits no case reaches: every call is admitted and recorded.
const OPEN: PacingWindows = PacingWindows {
    minute: Duration::from_secs(60),
    per_minute: 1_000_000,
    hour: Duration::from_secs(3600),
    per_hour: 1_000_000,
};

/// A window that is full after one call.
const FULL: PacingWindows = PacingWindows {
    minute: Duration::from_secs(60),
    per_minute: 1,
    hour: Duration::from_secs(3600),
    per_hour: 1_000_000,
};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let calls = if quick { 100 } else { 1_500 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "pacing acquisition cost per store ({calls} calls per case{})",
        if quick { ", --quick" } else { "" }
    );

    runtime.block_on(bench("sqlite", &Backend::sqlite(), calls));

    match support::redis_binary() {
        Some(binary) => {
            let server = RedisServer::start(&binary).expect("start redis-server");
            let url = server.url();
            let redis = Backend::Redis { server, url };
            runtime.block_on(bench("redis", &redis, calls));
        }
        None if std::env::var_os("CI").is_some() => {
            panic!("CI is set, and neither redis-server nor valkey-server is on PATH")
        }
        None => println!("redis: skipped, neither redis-server nor valkey-server is on PATH"),
    }
}

async fn bench(name: &str, backend: &Backend, calls: usize) {
    let baseline = match backend {
        Backend::Sqlite { .. } => {
            let mut times = Vec::with_capacity(calls);
            for _ in 0..WARM + calls {
                let start = Instant::now();
                tokio::task::spawn_blocking(|| ())
                    .await
                    .expect("a blocking task");
                times.push(start.elapsed());
            }
            times.split_off(WARM)
        }
        Backend::Redis { url, .. } => {
            let client = redis::Client::open(url.to_string()).expect("a Redis client");
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("a Redis connection");
            let mut times = Vec::with_capacity(calls);
            for _ in 0..WARM + calls {
                let start = Instant::now();
                let _: String = redis::cmd("PING")
                    .query_async(&mut conn)
                    .await
                    .expect("PING");
                times.push(start.elapsed());
            }
            times.split_off(WARM)
        }
    };
    report(name, "baseline", &baseline);

    let store = backend.open().await;
    for _ in 0..WARM {
        store.admit("warm", &OPEN).await.expect("admit");
    }

    let admitted = time_each(&store, "admitted", calls, &OPEN).await;
    report(name, "admitted", &admitted);

    store.admit("full", &FULL).await.expect("admit");
    let refused = time_each(&store, "full", calls, &FULL).await;
    report(name, "refused", &refused);

    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            time_each(&store, "contended", calls / 4, &OPEN).await
        }));
    }
    let mut contended = Vec::new();
    for task in tasks {
        contended.extend(task.await.expect("a benchmark task"));
    }
    report(name, "4 tasks", &contended);
}

async fn time_each(
    store: &Store,
    key: &str,
    calls: usize,
    windows: &PacingWindows,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        let decision = store.admit(key, windows).await.expect("admit");
        times.push(start.elapsed());
        let expected_admitted = windows.per_minute > 1;
        assert_eq!(
            matches!(decision, Admission::Admitted),
            expected_admitted,
            "{decision:?}"
        );
    }
    times
}

fn report(store: &str, case: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let mean = sorted.iter().sum::<Duration>() / sorted.len() as u32;
    println!(
        "{store:>6} {case:<9} median {:>7.1} µs   p99 {:>7.1} µs   mean {:>7.1} µs",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
}
