//! The sandbox, seen from the CLI: limits stop runaway guests with the right exit code, and a
//! guest observes no environment, no files and no network.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::Host;
use serde_json::json;
use skillhost_runtime::capabilities::{Capabilities, CollectRows};
use skillhost_runtime::compile_cache::CompileCache;
use skillhost_runtime::limits::SandboxLimits;
use skillhost_runtime::registry::SkillRegistry;
use skillhost_runtime::sandbox::{Preemption, Runtime, RuntimeOptions};

#[test]
fn an_endless_loop_is_stopped_at_the_deadline_with_exit_4() {
    let host = Host::with(&["spin"]);
    let started = Instant::now();
    let run = host.run(&["run", "spin", "--timeout", "300ms"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        run.stderr
            .contains("skill `spin` did not finish within its deadline of 300 ms"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

/// `spin` computing 400 ms against a deadline of 300 ms, then doing `then` (and the run is
/// asserted to end as the deadline, exit 4, naming it).
fn spin_past_a_300_ms_deadline(then: &str, output: &str) -> common::Run {
    let host = Host::with(&["spin"]);
    let then = format!("then={then}");
    let run = host.run(&[
        "run",
        "spin",
        "-p",
        "ms=400",
        "-p",
        &then,
        "--timeout",
        "300ms",
        "-o",
        output,
    ]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("skill `spin` did not finish within its deadline of 300 ms"),
        "{}",
        run.stderr
    );
    run
}

#[test]
fn a_guest_that_computes_past_its_deadline_and_then_emits_delivers_nothing_with_exit_4() {
    assert_eq!(spin_past_a_300_ms_deadline("emit", "ndjson").stdout, "");
}

#[test]
fn a_guest_that_returns_a_little_past_its_deadline_fails_with_the_deadline() {
    assert_eq!(spin_past_a_300_ms_deadline("return", "json").stdout, "");
}

/// A runtime with `options`, and the registry of `host`'s skills folder.
async fn runtime_with(host: &Host, options: RuntimeOptions) -> (Runtime, SkillRegistry) {
    let runtime = Runtime::new(options).unwrap();
    let registry = SkillRegistry::scan(
        &runtime,
        CompileCache::disabled(),
        &[host.skills_dir().to_path_buf()],
    )
    .await;
    (runtime, registry)
}

#[tokio::test]
async fn after_a_guest_is_stopped_the_same_runtime_invokes_again() {
    let host = Host::with(&["spin", "echo"]);
    let limits = SandboxLimits {
        timeout: Duration::from_millis(200),
        ..SandboxLimits::default()
    };
    let (runtime, registry) = runtime_with(
        &host,
        RuntimeOptions {
            pooling: false,
            pool_instances: 0,
            limits,
            preemption: Preemption::Epoch,
        },
    )
    .await;
    let spin = registry.load(&runtime, "spin").unwrap();
    let stopped = runtime
        .invoke(
            &spin,
            &Default::default(),
            Capabilities::none(),
            Box::new(CollectRows::default()),
            limits,
        )
        .await
        .unwrap_err();
    assert_eq!(stopped.code, skillhost_contract::error::ExitCode::Sandbox);

    let echo = registry.load(&runtime, "echo").unwrap();
    let input = json!({"message": "still here", "repeat": 1, "mode": "lower"});
    let output = runtime
        .invoke(
            &echo,
            input.as_object().unwrap(),
            Capabilities::none(),
            Box::new(CollectRows::default()),
            limits,
        )
        .await
        .unwrap();
    assert_eq!(output.output.into_value().unwrap()["echo"], "still here");
}

/// What `residue` counted in one invocation: bytes not zero in its static, in its grown pages.
async fn residue_counts(
    runtime: &Runtime,
    skill: &skillhost_runtime::sandbox::LoadedSkill,
    input: serde_json::Value,
) -> serde_json::Value {
    runtime
        .invoke(
            skill,
            input.as_object().unwrap(),
            Capabilities::none(),
            Box::new(CollectRows::default()),
            SandboxLimits::default(),
        )
        .await
        .unwrap()
        .output
        .into_value()
        .unwrap()
}

#[tokio::test]
async fn a_pooled_slot_reaches_the_next_invocation_with_nothing_the_last_one_wrote() {
    let host = Host::with(&["residue"]);
    // One instance at a time: wasmtime hands the module the memory slot it had last (its
    // affinity), so each invocation runs in the memory of the one before, as in `serve`.
    let (runtime, registry) = runtime_with(
        &host,
        RuntimeOptions {
            pooling: true,
            pool_instances: 1,
            limits: SandboxLimits::default(),
            preemption: Preemption::Epoch,
        },
    )
    .await;
    let residue = registry.load(&runtime, "residue").unwrap();
    // The count sees what is written: 3 MiB of static and 16 pages of 64 KiB.
    assert_eq!(
        residue_counts(&runtime, &residue, json!({"write_first": true})).await,
        json!({"dirty_static": 3 << 20, "dirty_grown": 16 << 16})
    );
    for run in 0..3 {
        assert_eq!(
            residue_counts(&runtime, &residue, json!({})).await,
            json!({"dirty_static": 0, "dirty_grown": 0}),
            "run {run} found what the one before it wrote"
        );
    }
}

#[test]
fn growing_memory_past_the_cap_traps_with_exit_4_naming_the_limit() {
    let host = Host::with(&["memory-hog"]);
    let run = host.run(&["run", "memory-hog", "--max-memory", "32M"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("skill `memory-hog` exceeded its memory limit of 32 MiB"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_skill_holding_more_than_4096_stdout_streams_is_stopped_as_a_sandbox_violation() {
    let host = Host::with(&["handle-hoard"]);
    let run = host.run(&["run", "handle-hoard"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "skill `handle-hoard` held more than 4096 host handles (streams, pollables, bodies) \
             at once"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_skill_holding_more_than_4096_pollables_is_stopped_as_a_sandbox_violation() {
    let host = Host::with(&["handle-hoard"]);
    let run = host.run(&["run", "handle-hoard", "-p", "kind=pollable"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("skill `handle-hoard` held more than 4096 host handles"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_skill_holding_a_thousand_handles_runs() {
    let host = Host::with(&["handle-hoard"]);
    let run = host.run(&["run", "handle-hoard", "-p", "count=1000", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json(), json!({ "held": 1000 }));
}

#[test]
fn a_stack_overflow_is_a_clean_sandbox_error() {
    let host = Host::with(&["stack-overflow"]);
    let run = host.run(&["run", "stack-overflow"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim(),
        "skillhost: skill `stack-overflow` exhausted its stack (runaway recursion)"
    );
}

#[test]
fn a_guest_panic_is_a_clean_skill_error_quoting_the_panic() {
    let host = Host::with(&["guest-panic"]);
    let run = host.run(&["run", "guest-panic"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "skill `guest-panic` crashed: wasm trap: wasm `unreachable` instruction executed"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the skill's last words: guest-panic was asked to panic"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_guest_sees_no_environment_variables_arguments_or_working_folder() {
    let host = Host::with(&["env-probe"]).env("SKILLHOST_TEST_CANARY", "canary-4f1d");
    let run = host.run(&["run", "env-probe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json(), json!({"vars": [], "args": [], "cwd": "/"}));
    assert!(!run.stdout.contains("canary-4f1d"));
}

#[test]
fn a_guest_can_neither_read_nor_list_nor_write_files() {
    let host = Host::with(&["fs-probe"]);
    let run = host.run(&["run", "fs-probe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let denied = "error: No such file or directory (os error 44)";
    assert_eq!(
        run.json(),
        json!({
            "read_etc_passwd": denied,
            "read_relative": denied,
            "list_root": denied,
            "list_cwd": denied,
            "write_tmp": denied,
        })
    );
}

#[test]
fn a_guest_cannot_connect_to_a_loopback_listener_or_resolve_names() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let host = Host::with(&["tcp-probe"]);
    let run = host.run(&["run", "tcp-probe", "--param", &format!("addr={addr}")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    assert!(
        out["connect"]
            .as_str()
            .unwrap()
            .starts_with("error: Permission denied"),
        "{out}"
    );
    assert!(
        out["lookup"].as_str().unwrap().starts_with("error:"),
        "{out}"
    );
    // Nothing ever reached the listener.
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}

#[test]
fn a_guest_blocked_in_a_slow_host_call_is_stopped_at_the_deadline() {
    let sim = common::simulator(1, &["slow=30000"]);
    let host = Host::defender(&["slow-call"]);
    let config = host.config(&sim, "defender", "");
    let started = Instant::now();
    let run = host.run(&[
        "--config",
        &config,
        "run",
        "slow-call",
        "-c",
        "sim",
        "--timeout",
        "700ms",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("skill `slow-call` did not finish within its deadline of 700 ms"),
        "{}",
        run.stderr
    );
}

#[test]
fn output_past_the_cap_is_a_sandbox_violation_with_exit_4() {
    let host = Host::with(&["echo"]);
    let run = host.run(&["run", "echo", "-p", "message=hello", "--max-output", "20"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("skill `echo` produced more than its output limit of 20 bytes"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}
