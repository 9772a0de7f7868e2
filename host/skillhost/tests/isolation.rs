//! No skill can hurt the host or the person reading its output: memory is one budget per
//! invocation, what the host builds or prints from guest bytes is bounded, logs are capped and
//! escaped, text that reaches a person is escaped, and the deadline holds whatever the reader of
//! stdout does.

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Host, Run};

/// The host's own peak RSS must stay under this with default limits, whatever the component.
const RSS_CEILING_KIB: i64 = 300 * 1024;

/// Runs the real binary like `Host::run` and returns its outcome with its peak RSS in KiB,
/// read from the child's own resource usage (wait4).
fn run_measured(host: &Host, args: &[&str]) -> (Run, i64) {
    run_read_by(host, args, |mut stdout| {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    })
}

/// [`run_measured`] with stdout read by `reader` (which may stop early and close it).
// The child is reaped by `wait4`, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_read_by(
    host: &Host,
    args: &[&str],
    reader: impl FnOnce(std::process::ChildStdout) -> Vec<u8> + Send + 'static,
) -> (Run, i64) {
    let mut child = host
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn skillhost");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || reader(stdout));
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `child.id()` is our own child, not yet waited for; the pointers are valid.
    let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(waited, child.id() as i32, "wait4");
    let status = std::process::ExitStatus::from_raw(status);
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.join().expect("stdout")).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().expect("stderr")).into_owned(),
    };
    (run, usage.ru_maxrss)
}

/// The child's exit status, once it ended. It is killed after 40 s and the test fails: its reader
/// never reads, so only the host itself can end the run, and its 3 s deadline should have.
fn ended_by_itself(child: &mut std::process::Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("skillhost kept running long past its 3 s deadline");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn forty_memories_of_60_mib_are_one_budget_and_the_skills_list_survives() {
    let host = Host::with(&["echo", "memory-bomb"]);
    let (run, rss) = run_measured(&host, &["skills", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("\necho "), "{}", run.stdout);
    assert!(
        run.stderr.contains("memory_bomb.wasm: describe() failed: ")
            && run.stderr.contains("memory limit of 64 MiB reached"),
        "{}",
        run.stderr
    );
    assert!(rss < RSS_CEILING_KIB, "peak RSS {rss} KiB");
}

#[test]
fn a_hundred_tables_of_a_million_entries_count_against_the_same_budget() {
    let host = Host::with(&["echo", "table-bomb"]);
    let (run, rss) = run_measured(&host, &["skills", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("table_bomb.wasm: describe() failed: ")
            && run.stderr.contains("memory limit of 64 MiB reached"),
        "{}",
        run.stderr
    );
    assert!(rss < RSS_CEILING_KIB, "peak RSS {rss} KiB");
}

#[test]
fn five_hundred_core_instances_are_more_than_an_invocation_may_create() {
    let host = Host::with(&["echo", "instance-bomb"]);
    let run = host.run(&["skills", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("instance_bomb.wasm: describe() failed: "),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("\necho "), "{}", run.stdout);
}

#[test]
fn a_log_flood_stops_at_the_log_cap_and_says_how_much_was_dropped() {
    let host = Host::with(&["log-flood"]);
    let run = host.run(&["run", "log-flood", "-p", "mode=flood", "--max-log", "1M"]);
    assert_eq!(run.code, 0, "{}", &run.stderr[..run.stderr.len().min(300)]);
    assert!(
        run.stderr.len() < 2 << 20,
        "{} bytes of stderr",
        run.stderr.len()
    );
    assert!(
        run.stderr.contains(&format!(
            "log truncated: {} bytes dropped after the invocation's log limit of 1048576 bytes",
            200_000 * 4096 - 256 * 4096
        )),
        "{}",
        &run.stderr[run.stderr.len().saturating_sub(400)..]
    );
}

#[test]
fn a_log_message_cannot_forge_host_lines_or_drive_the_terminal() {
    let host = Host::with(&["log-flood"]);
    let run = host.run(&["run", "log-flood", "-p", "mode=forge"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "fine\\nskillhost: connection `prod` is ready\\r\\e[2J\\e]0;owned\\u{7}\\u{202e}"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\u{1b}'), "{}", run.stderr);
    assert!(
        !run.stderr.contains("\nskillhost: connection"),
        "{}",
        run.stderr
    );
}

#[test]
fn skills_list_escapes_what_a_skill_says_about_itself() {
    let host = Host::with(&["terminal-escape"]);
    let run = host.run(&["skills", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "ID               VERSION             DESCRIPTION\n\
         terminal-escape  1.0\\e]0;owned\\u{7}  \
         Nice skill\\r\\nforged_skill    9.9.9    Looks legit\\e[2J\n"
    );
}

#[test]
fn table_cells_and_errors_of_a_skill_are_escaped() {
    let host = Host::with(&["terminal-escape"]);
    let run = host.run(&["run", "terminal-escape", "-o", "table"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stdout.contains('\r'),
        "{:?}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("\\e[31mred\\u{202e}txt\\r\\nforged row"),
        "{:?}",
        run.stdout
    );
    assert!(
        run.stderr.contains(
            "skillhost: skill `terminal-escape` failed: boom\\e[2J\\nskillhost: everything is fine"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
}

#[test]
fn csv_stops_at_max_output_however_much_each_row_expands() {
    let host = Host::with(&["output-flood"]);
    let run = host.run(&[
        "run",
        "output-flood",
        "-p",
        "mode=rows",
        "-p",
        "count=100000",
        "-o",
        "csv",
        "--max-output",
        "1M",
    ]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stdout.len() <= 1 << 20, "{} bytes", run.stdout.len());
    assert!(
        run.stderr
            .contains("skill `output-flood` produced more than its output limit of 1 MiB"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_table_of_thirty_thousand_wide_rows_streams_in_bounded_memory() {
    let host = Host::with(&["output-flood"]);
    let (run, rss) = run_measured(
        &host,
        &[
            "run",
            "output-flood",
            "-p",
            "mode=rows",
            "-p",
            "count=30000",
            "-o",
            "table",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2 + 30_000);
    assert!(rss < RSS_CEILING_KIB, "peak RSS {rss} KiB");
}

#[test]
fn a_result_of_millions_of_tiny_values_is_refused_before_the_host_expands_it() {
    let host = Host::with(&["output-flood"]);
    let (run, rss) = run_measured(
        &host,
        &[
            "run",
            "output-flood",
            "-p",
            "mode=result",
            "-p",
            "count=3000000",
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "skill `output-flood` returned a result of more than 2000000 JSON values, more than the host expands"
        ),
        "{}",
        run.stderr
    );
    assert!(rss < RSS_CEILING_KIB, "peak RSS {rss} KiB");
}

#[test]
fn a_reader_that_stops_after_one_line_ends_the_run_with_exit_0_in_bounded_memory() {
    // 500 cells a row in csv: 300 MB of output (more than the 256 MiB limit) for a reader that
    // takes one line and goes.
    let host = Host::with(&["output-flood"]);
    let (run, rss) = run_read_by(
        &host,
        &[
            "run",
            "output-flood",
            "-p",
            "mode=rows",
            "-p",
            "count=600000",
            "-o",
            "csv",
        ],
        |stdout| {
            let mut line = Vec::new();
            let _ = std::io::BufRead::read_until(
                &mut std::io::BufReader::new(stdout),
                b'\n',
                &mut line,
            );
            line
        },
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("c0,c1,c2,"), "{}", run.stdout);
    assert!(rss < RSS_CEILING_KIB, "peak RSS {rss} KiB");
}

#[test]
fn the_deadline_holds_when_nobody_reads_stdout() {
    let host = Host::with(&["output-flood"]);
    let mut child = host
        .command(&[
            "run",
            "output-flood",
            "-p",
            "mode=rows",
            "-p",
            "count=100000000",
            "-o",
            "ndjson",
            "--timeout",
            "3s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Nobody reads stdout: the pipe fills and stays full.
    let _unread = child.stdout.take();
    let mut stderr = child.stderr.take().expect("stderr");
    let status = ended_by_itself(&mut child);
    let mut text = String::new();
    let _ = stderr.read_to_string(&mut text);
    assert_eq!(status.code(), Some(4), "{text}");
    assert!(
        text.contains("skill `output-flood` did not finish within its deadline of 3 s"),
        "{text}"
    );
}

#[test]
fn the_deadline_holds_when_nobody_reads_stderr_during_a_log_flood() {
    let host = Host::with(&["log-flood"]);
    let mut child = host
        .command(&["run", "log-flood", "-p", "mode=flood", "--timeout", "3s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Nobody reads stderr: the pipe fills and stays full.
    let _unread = child.stderr.take();
    let status = ended_by_itself(&mut child);
    // The flood is capped (4 MiB) and dropped once stderr stops taking it: the run ends as it
    // would with a reader, without waiting on the one that stopped reading.
    assert_eq!(status.code(), Some(0), "{status:?}");
}
