//! The registry and the compile cache under attack: components whose `describe()` spins or
//! floods, special and oversized files in the skills folder, and a cache folder or cache entries
//! that someone else planted. Each is refused once, with one line saying why, and the good skill
//! still runs as itself.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Host, TempDir, component};

const ECHO_LIST: &str =
    "ID    VERSION  DESCRIPTION\necho  0.1.0    Returns its input, transformed by `mode`.\n";

/// `skillhost: skipped <skills>/FILE: REASON`, as the registry reports a refused file.
fn skipped(host: &Host, file: &str, reason: &str) -> String {
    format!(
        "skillhost: skipped {}/{file}: {reason}",
        host.skills_dir().display()
    )
}

/// The files of the cache folder with extension `ext`, sorted.
fn cache_files(host: &Host, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(host.cache_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// The user these tests run as (the owner of a folder just made).
fn current_uid() -> u32 {
    let probe = TempDir::new("uid");
    std::fs::metadata(probe.path()).unwrap().uid()
}

#[test]
fn a_describe_that_spins_costs_its_timeout_once_and_later_commands_do_not_call_it() {
    let host = Host::with(&["echo", "describe-spin"]);
    // Two more copies of the same bytes: one component, so one timeout, not three.
    for copy in ["spin-copy-1.wasm", "spin-copy-2.wasm"] {
        std::fs::copy(component("describe-spin"), host.skills_dir().join(copy)).unwrap();
    }
    let reason = "describe() did not return within 10 s";
    let files = ["describe_spin.wasm", "spin-copy-1.wasm", "spin-copy-2.wasm"];

    let first = host.run(&["-v", "skills", "list"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.stdout, ECHO_LIST);
    for file in files {
        assert!(
            first.stderr.contains(&skipped(&host, file, reason)),
            "{file}: {}",
            first.stderr
        );
    }
    assert_eq!(
        first.stderr.matches("calling describe()").count(),
        2,
        "echo and describe_spin.wasm only; the copies are known by their digest: {}",
        first.stderr
    );
    assert_eq!(
        first.stderr.matches("refusal from compile cache").count(),
        2,
        "{}",
        first.stderr
    );
    // What is kept of it: the refusal, not its native code (only echo's artifact remains).
    assert_eq!(cache_files(&host, "refused").len(), 1);
    assert_eq!(cache_files(&host, "cwasm").len(), 1);

    let second = host.run(&["-v", "skills", "list"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.stdout, ECHO_LIST);
    for file in files {
        assert!(
            second.stderr.contains(&skipped(&host, file, reason)),
            "{file}: {}",
            second.stderr
        );
    }
    assert!(
        !second.stderr.contains("calling describe()"),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("cache miss"), "{}", second.stderr);
    assert!(
        !second.stderr.contains("reading component file"),
        "{}",
        second.stderr
    );
    assert_eq!(
        second.stderr.matches("refusal from compile cache").count(),
        3,
        "{}",
        second.stderr
    );
    // And the good skill runs, without waiting for the spinning one.
    let run = host.run(&["-v", "run", "echo", "-p", "message=ok"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("calling describe()"), "{}", run.stderr);
}

#[test]
fn a_describe_that_declares_150000_parameters_is_refused_naming_the_cap() {
    let host = Host::with(&["echo", "describe-flood"]);
    let line = skipped(
        &host,
        "describe_flood.wasm",
        "describe() declares 150000 parameters; at most 256 are allowed",
    );
    let started = Instant::now();
    let first = host.run(&["skills", "list"]);
    let elapsed = started.elapsed();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.stdout, ECHO_LIST);
    assert_eq!(first.stderr, format!("{line}\n"));
    // Not a speed target: the quadratic duplicate check this replaces cost 25 s on its own.
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");

    let second = host.run(&["-v", "skills", "list"]);
    assert!(second.stderr.contains(&line), "{}", second.stderr);
    assert!(
        second.stderr.contains("refusal from compile cache"),
        "{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("calling describe()"),
        "{}",
        second.stderr
    );
}

#[test]
fn a_refused_file_that_changes_is_tried_again() {
    let host = Host::with(&["describe-flood"]);
    let first = host.run(&["skills", "list"]);
    assert!(
        first
            .stderr
            .contains("describe_flood.wasm: describe() declares 150000 parameters")
    );
    std::fs::copy(
        component("noop"),
        host.skills_dir().join("describe_flood.wasm"),
    )
    .unwrap();
    let second = host.run(&["skills", "list"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        second.stdout,
        "ID    VERSION  DESCRIPTION\nnoop  0.1.0    Does nothing.\n"
    );
    assert_eq!(second.stderr, "");
}

#[test]
fn special_files_in_the_skills_folder_are_skipped_with_a_reason_and_echo_still_loads() {
    let host = Host::with(&["echo"]);
    let dir = host.skills_dir();
    std::os::unix::fs::symlink("/proc/self/pagemap", dir.join("pagemap.wasm")).unwrap();
    let fifo = dir.join("fifo.wasm");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink(&fifo, dir.join("link-to-fifo.wasm")).unwrap();
    std::fs::create_dir(dir.join("folder.wasm")).unwrap();

    let list = host.run(&["skills", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.stdout, ECHO_LIST);
    let expected = [
        skipped(
            &host,
            "fifo.wasm",
            "is a named pipe (FIFO), not a regular file",
        ),
        skipped(&host, "folder.wasm", "is a folder, not a regular file"),
        skipped(
            &host,
            "link-to-fifo.wasm",
            "is a named pipe (FIFO), not a regular file",
        ),
        skipped(
            &host,
            "pagemap.wasm",
            "reads as more than the 0 bytes its size says (as files of /proc and /sys do, or a \
             file still being written)",
        ),
    ];
    assert_eq!(list.stderr, format!("{}\n", expected.join("\n")));

    let run = host.run(&["run", "echo", "-p", "message=still here"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["echo"], "still here");
}

#[test]
fn a_file_over_the_size_cap_is_skipped_without_being_read() {
    let host = Host::with(&["echo"]);
    let big = host.skills_dir().join("big.wasm");
    // Sparse: 2 GiB announced, nothing on disk.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let list = host.run(&["-v", "skills", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.stdout, ECHO_LIST);
    let line = skipped(
        &host,
        "big.wasm",
        "is 2147483648 bytes, over the limit of 64 MiB for a component file",
    );
    assert!(list.stderr.contains(&line), "{}", list.stderr);
    // echo was read (first run), big.wasm never was.
    let reads: Vec<&str> = list
        .stderr
        .lines()
        .filter(|l| l.contains("reading component file"))
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert!(reads[0].contains("echo.wasm"), "{reads:?}");
}

#[test]
fn a_cache_folder_owned_by_another_user_is_refused_with_how_to_fix_it_and_the_skill_still_runs() {
    if current_uid() != 0 {
        eprintln!("skipped: only root can give the cache folder to another user");
        return;
    }
    let host = Host::with(&["echo"]);
    std::os::unix::fs::chown(host.cache_dir(), Some(65534), Some(65534)).unwrap();
    let run = host.run(&["run", "echo", "-p", "message=x"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["echo"], "x");
    let d = host.cache_dir().display();
    let warning = format!(
        "not using compile cache {d}: it is owned by uid 65534, not by this user (uid 0), and a \
         compile cache holds native code that skillhost runs; make it yours and private with \
         `chown 0 {d} && chmod 700 {d}`, or use a folder of your own; components will be \
         compiled on every run"
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
    // Nothing was written to it, nothing read from it.
    assert_eq!(std::fs::read_dir(host.cache_dir()).unwrap().count(), 0);
}

#[test]
fn a_cache_folder_writable_by_others_is_refused_and_the_skill_still_runs() {
    use std::os::unix::fs::PermissionsExt;
    let host = Host::with(&["echo"]);
    std::fs::set_permissions(host.cache_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = host.run(&["run", "echo", "-p", "message=x"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["echo"], "x");
    let d = host.cache_dir().display();
    assert!(
        run.stderr.contains(&format!(
            "not using compile cache {d}: it is writable by other users (mode 777), and a \
             compile cache holds native code that skillhost runs; make it private with \
             `chmod 700 {d}`; components will be compiled on every run"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(host.cache_dir()).unwrap().count(), 0);
}

#[test]
fn an_artifact_copied_over_another_components_artifact_is_rebuilt_and_the_right_skill_runs() {
    let host = Host::with(&["echo"]);
    let first = host.run(&["run", "echo", "-p", "message=x"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let echo_artifact = cache_files(&host, "cwasm").remove(0);
    std::fs::copy(component("noop"), host.skills_dir().join("noop.wasm")).unwrap();
    let noop = host.run(&["run", "noop"]);
    assert_eq!(noop.code, 0, "{}", noop.stderr);
    let noop_artifact = cache_files(&host, "cwasm")
        .into_iter()
        .find(|p| *p != echo_artifact)
        .unwrap();

    // Each file keeps a valid digest of its own bytes; only their names are swapped.
    let echo_bytes = std::fs::read(&echo_artifact).unwrap();
    let noop_bytes = std::fs::read(&noop_artifact).unwrap();
    std::fs::write(&echo_artifact, &noop_bytes).unwrap();
    std::fs::write(&noop_artifact, &echo_bytes).unwrap();

    let run = host.run(&["-v", "run", "echo", "-p", "message=swapped"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["echo"], "swapped", "echo ran, not noop");
    assert!(
        run.stderr.contains(&format!(
            "{} failed its integrity check; rebuilding it",
            echo_artifact.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("compiled (cache miss)"),
        "{}",
        run.stderr
    );

    let noop = host.run(&["run", "noop"]);
    assert_eq!(noop.code, 0, "{}", noop.stderr);
    assert_eq!(noop.json(), serde_json::json!({}));
    assert!(
        noop.stderr.contains(&format!(
            "{} failed its integrity check; rebuilding it",
            noop_artifact.display()
        )),
        "{}",
        noop.stderr
    );
    // Rebuilt, both load from the cache again.
    let again = host.run(&["-v", "run", "echo", "-p", "message=y"]);
    assert_eq!(again.json()["echo"], "y");
    assert!(
        again.stderr.contains("loaded from compile cache"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_cache_entry_owned_by_another_user_is_rebuilt_not_run() {
    if current_uid() != 0 {
        eprintln!("skipped: only root can give a file to another user");
        return;
    }
    let host = Host::with(&["echo"]);
    assert_eq!(host.run(&["run", "echo", "-p", "message=x"]).code, 0);
    let artifact = cache_files(&host, "cwasm").remove(0);
    std::os::unix::fs::chown(&artifact, Some(65534), Some(65534)).unwrap();
    let run = host.run(&["-v", "run", "echo", "-p", "message=y"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["echo"], "y");
    assert!(
        run.stderr.contains(&format!(
            "{} is owned by uid 65534, not by this user (uid 0); rebuilding it",
            artifact.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::metadata(&artifact).unwrap().uid(), 0);
}

#[test]
fn a_manifest_rewritten_in_the_cache_is_not_believed() {
    let host = Host::with(&["echo"]);
    assert_eq!(host.run(&["skills", "list"]).stdout, ECHO_LIST);
    let manifest = cache_files(&host, "json")
        .into_iter()
        .find(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("index-")
        })
        .unwrap();
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("echo"), "{text}");
    std::fs::write(&manifest, text.replace("echo", "evil")).unwrap();

    let list = host.run(&["skills", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.stdout, ECHO_LIST);
    assert!(
        list.stderr.contains(&format!(
            "{} failed its integrity check; rebuilding it",
            manifest.display()
        )),
        "{}",
        list.stderr
    );
}
