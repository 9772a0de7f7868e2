//! Standard error through a bounded, lossy queue and a writer thread of its own.
//!
//! Threat: a reader that stops reading stderr (`skillhost run … 2>&1 | sleep 60`) blocks a write
//! to it, and the host writes to stderr from inside a skill's `log` call and when it reports the
//! outcome: the deadline would not hold. Here every diagnostic (log lines, the summary, the
//! failure) is queued and a writer thread does the blocking writes; when the queue is full,
//! lines are dropped and counted, never waited for. At exit the queue gets a second to drain.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::pipe::{lock, wait_until};

/// Bytes queued for stderr before lines are dropped.
const QUEUE_BYTES: usize = 1 << 20;

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Vec<u8>>,
    queued: usize,
    dropped: usize,
    writing: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }
}

fn shared() -> &'static Arc<Shared> {
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
    SHARED.get_or_init(|| {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        });
        let for_thread = shared.clone();
        // Without the thread nothing reaches stderr, but nothing blocks either.
        let _ = std::thread::Builder::new()
            .name("skillhost-stderr".into())
            .spawn(move || write_out(&for_thread));
        shared
    })
}

fn write_out(shared: &Shared) {
    let stderr = std::io::stderr();
    loop {
        let chunk = {
            let mut queue = shared.lock();
            loop {
                if let Some(chunk) = queue.chunks.pop_front() {
                    queue.writing = true;
                    break chunk;
                }
                queue = shared
                    .changed
                    .wait(queue)
                    .unwrap_or_else(|e| e.into_inner());
            }
        };
        let failed = stderr.lock().write_all(&chunk).is_err();
        let mut queue = shared.lock();
        queue.queued = queue.queued.saturating_sub(chunk.len());
        queue.writing = false;
        shared.changed.notify_all();
        if failed {
            // A closed stderr: nothing will ever be read; stop queueing work for it.
            queue.chunks.clear();
            queue.queued = 0;
            return;
        }
    }
}

/// A handle that writes to stderr through the queue; it never blocks.
pub struct StderrWriter;

impl Write for StderrWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let shared = shared();
        let mut queue = shared.lock();
        if queue.queued.saturating_add(data.len()) > QUEUE_BYTES {
            queue.dropped = queue.dropped.saturating_add(data.len());
        } else {
            queue.queued += data.len();
            queue.chunks.push_back(data.to_vec());
            shared.changed.notify_all();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits at most `limit` for what is queued to be written (at exit), saying first how much was
/// dropped, if anything was.
pub fn drain(limit: Duration) {
    let shared = shared();
    let until = Instant::now() + limit;
    let mut queue = shared.lock();
    if queue.dropped > 0 {
        let note = format!(
            "skillhost: {} bytes of diagnostics were dropped because stderr was not read fast enough\n",
            queue.dropped
        );
        queue.dropped = 0;
        queue.queued += note.len();
        queue.chunks.push_back(note.into_bytes());
        shared.changed.notify_all();
    }
    drop(wait_until(&shared.changed, queue, until, |q| {
        q.chunks.is_empty() && !q.writing
    }));
}
