//! The skill kit end to end: what `docs/WRITING_SKILLS.md` tells a skill author to do, done with
//! the real binary in fresh folders outside the checkout: `skillhost new`, one build command,
//! `skillhost skills check`, drop-in, and `skillhost run` against `skillhost simulate`.
//!
//! The commands are read from the page itself and run verbatim by `sh`, with `skillhost` on the
//! `PATH`. Two things differ from a person's shell: the simulator listens on a free port (the
//! project's `skillhost.toml` is pointed at it) instead of 8400, and a Rust project's `target`
//! folder is a link into this build's guest target folder, so the SDK's dependencies are compiled
//! once for every run of the test rather than once per run.
//!
//! The Python path needs componentize-py 0.25.1: without it, the test says so and passes, unless
//! `CI` is set, where `.ci/run` installs it and its absence fails the test. The JavaScript path
//! needs node and npm (npm fetches componentize-js) and is skipped, with the reason, without
//! them.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, TempDir, component};

/// The guide the tests follow.
const GUIDE: &str = include_str!("../../../docs/WRITING_SKILLS.md");

/// The code block that follows the line `heading` in the guide.
fn guide_block(heading: &str) -> String {
    let start = GUIDE
        .find(heading)
        .unwrap_or_else(|| panic!("WRITING_SKILLS.md has no `{heading}`"));
    let rest = &GUIDE[start..];
    let open = rest.find("```sh\n").expect("a code block") + "```sh\n".len();
    let close = rest[open..].find("```").expect("the block's end");
    rest[open..open + close].to_string()
}

/// The cargo target folder of this build (the parent of the built skills' folder).
fn outer_target() -> PathBuf {
    Path::new(env!("SKILLHOST_BUILT_SKILLS"))
        .parent()
        .expect("target folder")
        .to_path_buf()
}

/// A skill author's machine: a work folder, `skillhost` on the `PATH`, a private compile cache.
struct Author {
    work: TempDir,
    bin: TempDir,
    cache: TempDir,
}

impl Author {
    fn new() -> Self {
        let bin = TempDir::new("kit-bin");
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_skillhost"),
            bin.path().join("skillhost"),
        )
        .expect("link skillhost");
        let author = Author {
            work: TempDir::new("kit-work"),
            bin,
            cache: TempDir::new("kit-cache"),
        };
        assert!(
            !author
                .work
                .path()
                .starts_with(env!("CARGO_MANIFEST_DIR").trim_end_matches("/host/skillhost")),
            "the work folder must be outside the checkout"
        );
        author
    }

    /// `sh -c script` in `dir`, as the author's shell would run it.
    fn sh(&self, dir: &Path, script: &str) -> Run {
        let path = format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-ec")
            .arg(script)
            .current_dir(dir)
            .stdin(Stdio::null())
            .env("PATH", path)
            .env("SKILLHOST_CACHE_DIR", self.cache.path());
        // This process's cargo and skillhost settings are not the author's.
        for var in [
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC_WRAPPER",
            "CARGO_BUILD_RUSTC_WRAPPER",
            "SKILLHOST_CONFIG",
            "SKILLHOST_SKILLS",
            "SKILLHOST_LOG",
        ] {
            cmd.env_remove(var);
        }
        let output = cmd.output().expect("run sh");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs `script`, failing the test with its output unless it exits 0.
    fn sh_ok(&self, dir: &Path, script: &str) -> Run {
        let run = self.sh(dir, script);
        assert_eq!(
            run.code, 0,
            "`{script}` failed\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run
    }

    /// `skillhost ARGS...` in `dir`.
    fn skillhost(&self, dir: &Path, args: &[&str]) -> Run {
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        self.sh(dir, &format!("skillhost {}", quoted.join(" ")))
    }
}

/// `skillhost simulate` on a free loopback port, stopped when dropped.
struct Simulate {
    child: Child,
    port: u16,
}

impl Simulate {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_skillhost"))
            .args(["simulate", "--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start skillhost simulate");
        let deadline = Instant::now() + common::PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "skillhost simulate did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Simulate { child, port }
    }

    /// Points the project's `skillhost.toml` (written for 127.0.0.1:8400) at this simulator.
    fn point(&self, project: &Path) {
        let path = project.join("skillhost.toml");
        let text = std::fs::read_to_string(&path).expect("skillhost.toml");
        assert!(text.contains("http://127.0.0.1:8400"), "{text}");
        let text = text.replace("127.0.0.1:8400", &format!("127.0.0.1:{}", self.port));
        std::fs::write(&path, text).expect("write skillhost.toml");
    }
}

impl Drop for Simulate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The guide's run block for the skill `id`: `skillhost simulate &` is left out (the test runs
/// its own on a free port), and the guide's example ID is replaced by `id`.
fn run_block(id: &str) -> String {
    guide_block("Then, in the project folder, run it")
        .lines()
        .filter(|line| !line.starts_with("skillhost simulate"))
        .map(|line| line.replace("run count_incidents ", &format!("run {id} ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Follows the guide for one language: its block (new, cd, build, check, drop-in), then the run
/// against the simulator. Returns the run's JSON.
fn follow_the_guide(author: &Author, heading: &str, id: &str) -> serde_json::Value {
    let block = guide_block(heading);
    let mut lines = block.lines();
    let new = lines.next().expect("the new command");
    assert!(new.starts_with(&format!("skillhost new {id} ")), "{new}");
    author.sh_ok(author.work.path(), new);
    let project = author.work.path().join(id);
    if heading == "**Rust:**" {
        let shared = outer_target().join("guests");
        std::fs::create_dir_all(&shared).expect("guest target folder");
        std::os::unix::fs::symlink(&shared, project.join("target")).expect("link target");
    }
    // The project's README opens with the build command the guide uses.
    let readme = std::fs::read_to_string(project.join("README.md")).expect("README.md");
    let first_block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a code block in README.md");
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest[0], format!("cd {id}"));
    assert_eq!(
        first_block.trim(),
        rest[1],
        "README's first block is the build"
    );
    // cd, build, check, drop-in: verbatim, in one shell, as the author types them.
    let run = author.sh_ok(author.work.path(), &rest.join("\n"));
    assert!(
        run.stdout.contains(": the host would load it\n")
            && run.stdout.contains(&format!("\n  id          {id}\n")),
        "skills check said: {}",
        run.stdout
    );
    assert!(project.join("skills").join(format!("{id}.wasm")).is_file());

    let simulator = Simulate::start();
    simulator.point(&project);
    let run = author.sh_ok(&project, &run_block(id));
    run.json()
}

fn assert_first_page(result: &serde_json::Value) {
    assert_eq!(result["connection"], "sim");
    assert_eq!(result["incidents"], 10);
    assert_eq!(result["ids"].as_array().map(Vec::len), Some(10));
}

/// Whether `tool --version` runs; otherwise the test is skipped with the reason.
fn tool_runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether componentize-py is there; without it the test is skipped with the reason, unless
/// `CI` is set, where `.ci/run` installs it and its absence fails the test.
fn componentize_py_present() -> bool {
    if tool_runs("componentize-py") {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "componentize-py is missing under CI; .ci/run installs it (pip install componentize-py==0.25.1)"
    );
    eprintln!("skipped: componentize-py is not installed (pip install componentize-py==0.25.1)");
    false
}

/// Whether node and npm are there and npm reaches its registry (it fetches componentize-js);
/// skipped with the reason if not. (CI installs Debian, Python and Rust packages; the npm
/// registry is not among what it is promised to reach.)
fn node_present() -> bool {
    if !(tool_runs("node") && tool_runs("npm")) {
        eprintln!(
            "skipped: node and npm are not installed (JavaScript skills are built with them)"
        );
        return false;
    }
    let reached = Command::new("npm")
        .args(["ping", "--fetch-timeout=10000", "--fetch-retries=0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !reached {
        eprintln!(
            "skipped: npm cannot reach its registry (`npm ping` failed), so componentize-js cannot be installed"
        );
    }
    reached
}

#[test]
fn a_rust_skill_made_by_following_the_guide_runs_against_the_simulator() {
    let author = Author::new();
    let result = follow_the_guide(&author, "**Rust:**", "count_incidents");
    assert_first_page(&result);
}

#[test]
fn a_python_skill_made_by_following_the_guide_runs_against_the_simulator() {
    if !componentize_py_present() {
        return;
    }
    let author = Author::new();
    let result = follow_the_guide(&author, "**Python:**", "count_incidents_py");
    assert_first_page(&result);
}

#[test]
fn the_vendored_sdk_is_the_sdk_and_binds_the_contract() {
    let author = Author::new();
    author.sh_ok(author.work.path(), "skillhost new vendored --lang rust");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../skills/guest");
    let vendored = author.work.path().join("vendored/vendor/skillhost-guest");
    let files = |root: &Path| {
        let mut found = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let relative = path.strip_prefix(root).expect("under root").to_path_buf();
                    found.push((relative, std::fs::read(&path).expect("read")));
                }
            }
        }
        found.sort();
        found
    };
    assert_eq!(files(&vendored), files(&sdk));
    for version in ["0.1.0", "0.2.0"] {
        let wit = format!("wit/skill@{version}/skill.wit");
        assert_eq!(
            std::fs::read(sdk.join(&wit)).expect("SDK's WIT"),
            std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .join(&wit)
            )
            .expect("contract WIT"),
            "the SDK's copy of {wit} is the contract's"
        );
    }
}

#[test]
fn new_refuses_a_folder_that_is_not_empty() {
    let author = Author::new();
    std::fs::create_dir_all(author.work.path().join("taken")).expect("mkdir");
    std::fs::write(author.work.path().join("taken/keep.txt"), "mine").expect("write");
    let run = author.skillhost(author.work.path(), &["new", "taken"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("skillhost: taken exists and is not empty\n  hint: pick another folder"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(author.work.path().join("taken/keep.txt")).expect("read"),
        "mine"
    );
}

#[test]
fn a_refused_component_is_compiled_once_across_two_commands() {
    let author = Author::new();
    let file = author.work.path().join("describe_panic.wasm");
    std::fs::copy(component("describe-panic"), &file).expect("copy component");
    let check = author.skillhost(
        author.work.path(),
        &["-v", "skills", "check", "describe_panic.wasm"],
    );
    assert_eq!(check.code, 2, "{}", check.stderr);
    assert!(
        check.stderr.contains(
            "skillhost: describe_panic.wasm would be refused: describe() failed: wasm trap: wasm \
             `unreachable` instruction executed (describe-panic cannot describe itself)"
        ),
        "{}",
        check.stderr
    );
    let list = author.skillhost(
        author.work.path(),
        &["-v", "--skills-dir", ".", "skills", "list"],
    );
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stderr.contains("refusal from compile cache"),
        "{}",
        list.stderr
    );
    let compiles = check.stderr.matches("compiled (cache miss)").count()
        + list.stderr.matches("compiled (cache miss)").count();
    assert_eq!(compiles, 1, "{}\n{}", check.stderr, list.stderr);
}

/// The repository's folder `path`.
fn in_checkout(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// Builds the example Python skill into `dest` with the command of its README.
fn build_python_example(dest: &Path) -> PathBuf {
    let example = in_checkout("examples/python/sample_incidents");
    let readme = std::fs::read_to_string(example.join("README.md")).expect("README.md");
    let build = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the build command")
        .trim()
        .replace(
            "-o sample_incidents_py.wasm",
            &format!("-o {}/sample_incidents_py.wasm", dest.display()),
        );
    // The interpreter's bytecode cache stays out of the checkout.
    let output = Command::new("sh")
        .args(["-ec", &build])
        .current_dir(&example)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run componentize-py");
    assert!(
        output.status.success(),
        "{build}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dest.join("sample_incidents_py.wasm")
}

#[test]
fn the_python_example_and_its_rust_twin_give_the_same_result() {
    if !componentize_py_present() {
        return;
    }
    let host = common::Host::with(&["sample-incidents"]).env(
        common::SECRET_VAR,
        skillhost_simulator::DEFAULT_CLIENT_SECRET,
    );
    build_python_example(host.skills_dir());
    let sim = common::simulator(30, &[]);
    let config = host.config(&sim, "defender", "");
    let run = |id: &str| {
        let run = host.run(&[
            "--config", &config, "run", id, "-c", "sim", "-p", "limit=18",
        ]);
        assert_eq!(run.code, 0, "{id}: {}", run.stderr);
        run.json()
    };
    let python = run("sample_incidents_py");
    let rust = run("sample_incidents_rs");
    assert_eq!(python, rust);
    assert_eq!(
        (python["incidents"].as_u64(), python["pages"].as_u64()),
        (Some(18), Some(4))
    );
    assert_eq!(
        python["by_severity"]
            .as_object()
            .map(|m| m.values().filter_map(|v| v.as_u64()).sum::<u64>()),
        Some(18)
    );
}

#[test]
fn a_python_exception_reaches_the_user_without_verbose() {
    if !componentize_py_present() {
        return;
    }
    let author = Author::new();
    author.sh_ok(author.work.path(), "skillhost new boom_py --lang python");
    let project = author.work.path().join("boom_py");
    let app = std::fs::read_to_string(project.join("app.py")).expect("app.py");
    let app = app
        .replace(
            "        params = sk.read_input(input)\n",
            "        params = sk.read_input(input)\n        check_range(params[\"top\"])\n",
        )
        .replace(
            "class Guest(exports.Guest):",
            "def check_range(top):\n    raise ValueError(f\"top {top} is out of range\")\n\n\nclass Guest(exports.Guest):",
        );
    std::fs::write(project.join("app.py"), app).expect("write app.py");
    author.sh_ok(
        &project,
        "componentize-py -d wit/skill@0.1.0 -w skill componentize app -o boom_py.wasm",
    );
    let host = common::Host::with(&[]).env(
        common::SECRET_VAR,
        skillhost_simulator::DEFAULT_CLIENT_SECRET,
    );
    std::fs::copy(
        project.join("boom_py.wasm"),
        host.skills_dir().join("boom_py.wasm"),
    )
    .expect("drop in");
    let sim = common::simulator(3, &[]);
    let config = host.config(&sim, "defender", "");
    let run = host.run(&["--config", &config, "run", "boom_py", "-c", "sim"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let mut lines = run.stderr.lines();
    assert_eq!(
        lines.next(),
        Some(
            "skillhost: skill `boom_py` crashed: ValueError: top 10 is out of range (wasm trap: \
             wasm `unreachable` instruction executed)"
        ),
        "{}",
        run.stderr
    );
    let hint = lines.next().unwrap_or_default();
    assert!(
        hint.starts_with(
            "  hint: the skill's last frames (innermost last): File \"/0/app.py\", line "
        ) && hint.contains(", in invoke > File \"/0/app.py\", line ")
            && hint.ends_with(", in check_range; -v shows all it wrote to stderr"),
        "{}",
        run.stderr
    );
}

/// Runs `id` and the Rust twin `sample_incidents_rs` with `limit=18` against one simulator of 30
/// incidents; returns both results.
fn run_beside_the_rust_twin(
    host: &common::Host,
    id: &str,
) -> (serde_json::Value, serde_json::Value) {
    let sim = common::simulator(30, &[]);
    let config = host.config(&sim, "defender", "");
    let run = |id: &str| {
        let run = host.run(&[
            "--config", &config, "run", id, "-c", "sim", "-p", "limit=18",
        ]);
        assert_eq!(run.code, 0, "{id}: {}", run.stderr);
        run.json()
    };
    (run(id), run("sample_incidents_rs"))
}

#[test]
fn the_javascript_example_and_the_rust_twin_give_the_same_result() {
    if !node_present() {
        return;
    }
    // The example is built in a fresh copy of the files it reads, outside the checkout, so that
    // its node_modules (componentize-js) never land there; npm's own cache makes the install
    // quick after the first.
    let author = Author::new();
    let build = author.work.path().to_path_buf();
    for path in [
        "examples/js/sample_incidents/app.js",
        "examples/js/sample_incidents/package.json",
        "examples/js/sample_incidents/README.md",
        "sdk/js/skillhost_skill.js",
        "wit/skill@0.1.0/skill.wit",
    ] {
        let dest = build.join(path);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(in_checkout(path), &dest).expect("copy");
    }
    let example = build.join("examples/js/sample_incidents");
    let readme = std::fs::read_to_string(example.join("README.md")).expect("README.md");
    let command = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the build command")
        .trim()
        .to_string();
    author.sh_ok(&example, &command);
    let host = common::Host::with(&["sample-incidents"]).env(
        common::SECRET_VAR,
        skillhost_simulator::DEFAULT_CLIENT_SECRET,
    );
    std::fs::copy(
        example.join("sample_incidents_js.wasm"),
        host.skills_dir().join("sample_incidents_js.wasm"),
    )
    .expect("drop in");
    let (js, rust) = run_beside_the_rust_twin(&host, "sample_incidents_js");
    assert_eq!(js, rust);
    assert_eq!(js["incidents"].as_u64(), Some(18));
}

#[test]
fn a_javascript_skill_made_by_following_the_guide_runs_against_the_simulator() {
    if !node_present() {
        return;
    }
    let author = Author::new();
    let result = follow_the_guide(&author, "**JavaScript:**", "count_incidents_js");
    assert_first_page(&result);
}
