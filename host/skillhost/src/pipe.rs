//! Standard output through a bounded buffer and a writer thread of its own.
//!
//! Threat: a reader that stops reading (`skillhost run … | sleep 15`) blocks a write to stdout,
//! and a write blocked in the kernel cannot be interrupted by the invocation's deadline: the
//! host would live as long as the reader pleases. Here the invocation hands its output to a
//! bounded queue; a writer thread does the blocking writes. When the queue is full the
//! invocation waits, but only until its deadline, and the command then ends (exit 4) whether or
//! not the writer ever finishes. The queue also counts what the command writes against
//! `--max-output`, whatever the format makes of a row.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use skillhost_runtime::capabilities::emit::OutputFull;

/// Bytes queued for the writer thread before a write waits.
const QUEUE_BYTES: usize = 1 << 20;

/// Bytes of output a [`PipeWriter`] gathers before it hands them to the writer thread (a
/// terminal's printer flushes each row anyway): each hand-off wakes that thread for one write,
/// so large hand-offs keep a detection run's tens of thousands of rows from costing as many
/// wake-ups and system calls. It is the printer's only buffer: a row is copied once, into it,
/// and the buffer itself is queued.
const CHUNK: usize = 64 * 1024;

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Vec<u8>>,
    queued: usize,
    closed: bool,
    /// The writer wrote everything of a closed queue.
    drained: bool,
    /// The error the writer met (a closed pipe): every later write returns it.
    failed: Option<std::io::ErrorKind>,
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

/// Locks `mutex`. A poisoned lock only means a thread panicked mid-update of plain data; the
/// data is still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `changed` until `ready` holds for the guarded data or `deadline` passes, whichever
/// comes first; the caller looks at the data to tell which.
pub fn wait_until<'a, T>(
    changed: &Condvar,
    mut guard: MutexGuard<'a, T>,
    deadline: Instant,
    ready: impl Fn(&T) -> bool,
) -> MutexGuard<'a, T> {
    while !ready(&guard) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        guard = changed
            .wait_timeout(guard, deadline - now)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
    guard
}

/// The writing side: what a printer writes to. It buffers [`CHUNK`] bytes at a time; `flush`
/// (and dropping it) hands over what it holds.
pub struct PipeWriter {
    shared: Arc<Shared>,
    deadline: Instant,
    limit: usize,
    written: usize,
    pending: Vec<u8>,
}

/// The writer thread's handle.
pub struct StdoutPipe {
    shared: Arc<Shared>,
    deadline: Instant,
}

/// Starts the writer thread; writes wait for room at most until `deadline`, and stop at `limit`
/// bytes in all.
pub fn stdout_pipe(deadline: Instant, limit: usize) -> std::io::Result<(PipeWriter, StdoutPipe)> {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        changed: Condvar::new(),
    });
    let for_thread = shared.clone();
    std::thread::Builder::new()
        .name("skillhost-stdout".into())
        .spawn(move || write_out(&for_thread))?;
    Ok((
        PipeWriter {
            shared: shared.clone(),
            deadline,
            limit,
            written: 0,
            pending: Vec::with_capacity(CHUNK),
        },
        StdoutPipe { shared, deadline },
    ))
}

/// The writer thread: takes chunks off the queue and writes them to stdout.
fn write_out(shared: &Shared) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    loop {
        let chunk = {
            let mut queue = shared.lock();
            loop {
                if let Some(chunk) = queue.chunks.pop_front() {
                    break Some(chunk);
                }
                if queue.closed {
                    break None;
                }
                queue = shared
                    .changed
                    .wait(queue)
                    .unwrap_or_else(|e| e.into_inner());
            }
        };
        let Some(chunk) = chunk else {
            let result = out.flush();
            let mut queue = shared.lock();
            if let Err(e) = result {
                queue.failed.get_or_insert(e.kind());
            }
            queue.drained = true;
            shared.changed.notify_all();
            return;
        };
        let len = chunk.len();
        let result = out.write_all(&chunk).and_then(|()| {
            if shared.lock().chunks.is_empty() {
                out.flush()
            } else {
                Ok(())
            }
        });
        let mut queue = shared.lock();
        queue.queued = queue.queued.saturating_sub(len);
        if let Err(e) = result {
            queue.failed.get_or_insert(e.kind());
            queue.chunks.clear();
            queue.queued = 0;
        }
        shared.changed.notify_all();
    }
}

impl PipeWriter {
    /// Queues what is pending for the writer thread, waiting for room until the deadline at
    /// most.
    fn hand_over(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut queue = wait_until(
            &self.shared.changed,
            self.shared.lock(),
            self.deadline,
            |q| q.failed.is_some() || q.queued < QUEUE_BYTES,
        );
        if let Some(kind) = queue.failed {
            return Err(kind.into());
        }
        if queue.queued >= QUEUE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the reader of the output did not keep up before the deadline",
            ));
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
        queue.queued += chunk.len();
        queue.chunks.push_back(chunk);
        self.shared.changed.notify_all();
        Ok(())
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.written.saturating_add(data.len()) > self.limit {
            return Err(std::io::Error::other(OutputFull(self.limit)));
        }
        self.pending.extend_from_slice(data);
        self.written += data.len();
        if self.pending.len() >= CHUNK {
            self.hand_over()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.hand_over()
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        // As a `BufWriter` does: what was written is handed over; an error has nowhere to go.
        let _ = self.hand_over();
    }
}

impl StdoutPipe {
    /// Waits, until the deadline at most, for everything written so far to have been written
    /// to stdout and flushed; the pipe stays open. `TimedOut` when the reader did not take it
    /// in time.
    pub fn sync(&self) -> std::io::Result<()> {
        let queue = wait_until(
            &self.shared.changed,
            self.shared.lock(),
            self.deadline,
            |q| q.failed.is_some() || q.queued == 0,
        );
        outcome(queue.failed, queue.queued == 0)
    }

    /// Closes the pipe and waits, until the deadline at most, for the writer to have written
    /// everything. `TimedOut` when the reader did not take it all in time.
    pub fn finish(self) -> std::io::Result<()> {
        let mut queue = self.shared.lock();
        if !queue.closed {
            queue.closed = true;
            self.shared.changed.notify_all();
        }
        let queue = wait_until(&self.shared.changed, queue, self.deadline, |q| {
            q.failed.is_some() || q.drained
        });
        outcome(queue.failed, queue.drained)
    }
}

/// What waiting for the writer came to: the error it met, else `done`, else the deadline.
fn outcome(failed: Option<std::io::ErrorKind>, done: bool) -> std::io::Result<()> {
    match failed {
        Some(kind) => Err(kind.into()),
        None if done => Ok(()),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the reader of the output did not take it all before the deadline",
        )),
    }
}
