//! What `audit::write_open` writes for a process about to end without its destructors (the
//! CLI's watchdog). Its own test binary: the lists it reads are the process's.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use skillhost_upstream::audit::{self, AuditLog, AuditTrail, CallRecord};

fn call(path: &str) -> CallRecord {
    CallRecord {
        skill: "stopped".to_string(),
        service: "defender".to_string(),
        method: "GET",
        path: path.to_string(),
        started: Instant::now(),
        retries: 0,
        ahead: false,
    }
}

#[test]
fn open_records_are_written_once_at_exit_and_records_opened_later_at_once() {
    let path = std::env::temp_dir().join(format!("audit-at-exit-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let log = Arc::new(AuditLog::open(&path).unwrap());
    audit::keep_open_records();
    let trail = AuditTrail::new(Some(log), "acme", "sim");
    let settled = trail.open(call("/settled"), "allowed", Some(200));
    settled.write(Some("read to the end"), 10);
    let unread = trail.open(call("/unread"), "allowed", Some(200));
    unread.reason("body not read to the end");
    unread.bytes(42);

    audit::write_open("the process ended");
    // Settling afterwards writes nothing more; a call opened afterwards is written at once.
    unread.write(None, 99);
    let late = trail.open(call("/late"), "allowed", None);
    late.write(None, 7);

    let lines: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let _ = std::fs::remove_file(&path);
    let seen: Vec<(&str, &str, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["path"].as_str().unwrap(),
                l["reason"].as_str().unwrap(),
                l["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("/settled", "read to the end", 10),
            ("/unread", "body not read to the end; the process ended", 42),
            ("/late", "the process ended", 0),
        ]
    );
}
