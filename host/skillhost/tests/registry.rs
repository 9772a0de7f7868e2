//! Loading skills from folders: what is listed, described and invoked, what is refused and why,
//! and the compile cache.

mod common;

use common::Host;
use serde_json::json;

#[test]
fn a_component_in_the_folder_is_listed_described_and_invoked_by_id() {
    let host = Host::with(&["echo"]);
    let list = host.run(&["skills", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(
        list.stdout,
        "ID    VERSION  DESCRIPTION\necho  0.1.0    Returns its input, transformed by `mode`.\n"
    );

    let describe = host.run(&["skills", "describe", "echo"]);
    assert_eq!(describe.code, 0, "{}", describe.stderr);
    let doc = describe.json();
    assert_eq!(doc["id"], "echo");
    assert_eq!(doc["output"], "object");
    assert_eq!(
        doc["parameters"][1],
        json!({"name": "repeat", "description": "How many times.", "kind": "integer",
               "required": false, "default": 1, "minimum": 1, "maximum": 10})
    );
    assert_eq!(
        doc["parameters"][2]["allowed_values"],
        json!(["upper", "lower"])
    );

    let run = host.run(&[
        "run",
        "echo",
        "--param",
        "message=Hi",
        "-p",
        "repeat=2",
        "-p",
        "mode=upper",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.json(),
        json!({"echo": "HIHI", "input": {"message": "Hi", "repeat": 2, "mode": "upper"}})
    );
}

#[test]
fn input_json_and_params_merge_and_defaults_apply() {
    let host = Host::with(&["echo"]);
    let run = host.run(&[
        "run",
        "echo",
        "--input",
        r#"{"message": "a", "loud": true}"#,
        "-p",
        "message=b",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.json()["input"],
        json!({"message": "b", "loud": true, "repeat": 1, "mode": "lower"})
    );
}

#[test]
fn an_unknown_id_exits_2_naming_the_known_ids() {
    let host = Host::with(&["echo", "spin"]);
    let run = host.run(&["run", "ech0"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("skillhost: no skill with id `ech0`; known skills: echo, spin\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_parameters_exit_2_naming_the_parameter_and_the_skill_is_never_instantiated() {
    let host = Host::with(&["echo"]);
    // Warm the manifest cache, so that the runs below have no reason to instantiate at all.
    assert_eq!(host.run(&["skills", "list"]).code, 0);
    let cases: [(&[&str], &str); 5] = [
        (
            &[],
            "missing required parameter `message` (a string): pass --param message=<value>",
        ),
        (
            &["-p", "message=x", "-p", "repeat=two"],
            "parameter `repeat` must be an integer, not two (allowed range 1..=10)",
        ),
        (
            &["-p", "message=x", "-p", "mode=shout"],
            "parameter `mode` does not accept \"shout\"; allowed values: upper, lower",
        ),
        (
            &["-p", "message=x", "-p", "volume=11"],
            "skill `echo` has no parameter `volume`; its parameters are: message, repeat, mode, loud, since",
        ),
        (
            &["-p", "message=x", "-p", "since=yesterday"],
            "parameter `since` must be an RFC 3339 timestamp such as 2026-11-26T08:00:00Z, not yesterday",
        ),
    ];
    for (params, expected) in cases {
        let mut args = vec!["-v", "run", "echo"];
        args.extend_from_slice(params);
        let run = host.run(&args);
        assert_eq!(run.code, 2, "{params:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("skillhost: {expected}\n")),
            "{params:?}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("instantiating"),
            "{params:?} instantiated: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "");
    }
}

#[test]
fn refused_components_are_reported_one_line_each_and_the_others_still_load() {
    let host = Host::with(&[
        "echo",
        "wasi-http-import",
        "unknown-import",
        "future-version",
        "describe-panic",
    ]);
    std::fs::write(host.skills_dir().join("garbage.wasm"), b"this is not wasm").unwrap();
    std::fs::write(host.skills_dir().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let run = host.run(&["skills", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("\necho  "), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    let dir = host.skills_dir().display().to_string();
    let expected = [
        format!(
            "skipped {dir}/core.wasm: is a core WebAssembly module, not a component; build it for wasm32-wasip2"
        ),
        format!(
            "skipped {dir}/describe_panic.wasm: describe() failed: wasm trap: wasm `unreachable` instruction executed (describe-panic cannot describe itself)"
        ),
        format!(
            "skipped {dir}/future_version.wasm: uses skillhost:skill/guest@9.0.0, but this host supports skillhost:skill@0.1.x and skillhost:skill@0.2.x"
        ),
        format!("skipped {dir}/garbage.wasm: is not a WebAssembly component (bad magic header)"),
        format!(
            "skipped {dir}/unknown_import.wasm: imports acme:evil/backdoor@1.0.0, which this host does not provide"
        ),
        format!(
            "skipped {dir}/wasi_http_import.wasm: imports wasi:http/outgoing-handler@0.3.0: a skill may not open its own HTTP connections"
        ),
    ];
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{}", run.stderr);
    for (line, want) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(&format!("skillhost: {want}")),
            "{line}\nwanted: {want}"
        );
    }
    // And the good one still runs.
    assert_eq!(host.run(&["run", "echo", "-p", "message=ok"]).code, 0);
}

#[test]
fn duplicate_ids_are_refused_naming_both_files() {
    let host = Host::with(&["echo"]);
    std::fs::copy(
        common::component("echo"),
        host.skills_dir().join("echo-copy.wasm"),
    )
    .unwrap();
    let dir = host.skills_dir().display().to_string();
    let message = format!(
        "skill id `echo` is declared by more than one file: {dir}/echo-copy.wasm and {dir}/echo.wasm"
    );
    let list = host.run(&["skills", "list"]);
    assert_eq!(list.stdout, "ID  VERSION  DESCRIPTION\n");
    assert!(list.stderr.contains(&message), "{}", list.stderr);
    let run = host.run(&["run", "echo", "-p", "message=x"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains(&message), "{}", run.stderr);
}

fn cache_files(host: &Host, ext: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(host.cache_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

#[test]
fn a_second_run_uses_the_compile_cache() {
    let host = Host::with(&["echo"]);
    let first = host.run(&["-v", "run", "echo", "-p", "message=x"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("compiled (cache miss)"),
        "{}",
        first.stderr
    );
    assert_eq!(cache_files(&host, "cwasm").len(), 1);
    let json = cache_files(&host, "json");
    let names: Vec<String> = json
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "a manifest and the file index: {names:?}");
    assert_eq!(
        names.iter().filter(|n| n.starts_with("index-")).count(),
        1,
        "{names:?}"
    );

    let second = host.run(&["-v", "run", "echo", "-p", "message=x"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("manifest from compile cache"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("loaded from compile cache"),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("cache miss"), "{}", second.stderr);
}

#[test]
fn a_corrupted_cache_entry_is_rebuilt_and_the_run_succeeds() {
    let host = Host::with(&["echo"]);
    assert_eq!(host.run(&["run", "echo", "-p", "message=x"]).code, 0);
    let artifact = cache_files(&host, "cwasm").remove(0);
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&artifact, &bytes).unwrap();

    let run = host.run(&["-v", "run", "echo", "-p", "message=after corruption"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["echo"], "after corruption");
    assert!(
        run.stderr
            .contains("failed its integrity check; rebuilding it"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("compiled (cache miss)"),
        "{}",
        run.stderr
    );
    // The rebuilt entry is whole again.
    let rebuilt = std::fs::read(&artifact).unwrap();
    assert_ne!(rebuilt, bytes);
    let again = host.run(&["-v", "run", "echo", "-p", "message=x"]);
    assert!(
        again.stderr.contains("loaded from compile cache"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_replaced_component_file_is_read_again_not_served_from_the_index() {
    let host = Host::with(&["echo"]);
    assert!(host.run(&["skills", "list"]).stdout.contains("\necho "));
    std::fs::copy(
        common::component("noop"),
        host.skills_dir().join("echo.wasm"),
    )
    .unwrap();
    let list = host.run(&["skills", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(
        list.stdout,
        "ID    VERSION  DESCRIPTION\nnoop  0.1.0    Does nothing.\n"
    );
}
