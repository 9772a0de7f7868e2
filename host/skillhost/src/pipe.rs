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

/// Bytes queued for the writer thread before a write waits, counted as [`held`] counts them
/// (allocations, not payload).
const QUEUE_BYTES: usize = 1 << 20;

/// Bytes of output a [`PipeWriter`] gathers before it hands them to the writer thread (a
/// terminal's printer flushes each row anyway): each hand-off wakes that thread for one write,
/// so large hand-offs keep a detection run's tens of thousands of rows from costing as many
/// wake-ups and system calls. It is the printer's only buffer: a row is copied into it, and a
/// buffer at least half full is queued itself (a smaller one, flushed early, is queued as a
/// copy of its length).
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
    /// The writer thread waits for work (a hand-over must wake it).
    writer_idle: bool,
    /// Writers of output waiting for room or for the writer thread (it must wake them).
    waiting: usize,
}

/// The queue and its two wake-ups. Each side wakes the other only when it waits: a wake-up is
/// a system call even when nobody waits, and a detection run hands over hundreds of chunks.
struct Shared {
    queue: Mutex<Queue>,
    /// The writer thread waits here for chunks or the close.
    work: Condvar,
    /// Writers of output wait here for room, for everything to be written, or for an error.
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    /// Wakes the writer thread if it waits for work.
    fn wake_writer(&self, queue: &Queue) {
        if queue.writer_idle {
            self.work.notify_one();
        }
    }

    /// Wakes the writers of output that wait.
    fn wake_waiting(&self, queue: &Queue) {
        if queue.waiting > 0 {
            self.done.notify_all();
        }
    }

    /// Waits until `ready` holds or `deadline` passes, counted among the waiting.
    fn wait_done<'a>(
        &self,
        mut queue: MutexGuard<'a, Queue>,
        deadline: Instant,
        ready: impl Fn(&Queue) -> bool,
    ) -> MutexGuard<'a, Queue> {
        queue.waiting += 1;
        let mut queue = wait_until(&self.done, queue, deadline, ready);
        queue.waiting -= 1;
        queue
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

/// What a queued chunk is counted as: its allocation, and never less than [`MIN_HELD`] (a
/// terminal's one-byte row still costs its queue slot and an allocation).
fn held(chunk: &Vec<u8>) -> usize {
    chunk.capacity().max(MIN_HELD)
}

/// The least a queued chunk is counted as.
const MIN_HELD: usize = 64;

/// The writing side: what a printer writes to. It buffers [`CHUNK`] bytes at a time; `flush`
/// (and dropping it) hands over what it holds. Once a write was refused (the output limit, a
/// reader gone, the deadline), every later write is refused the same way and takes nothing.
pub struct PipeWriter {
    shared: Arc<Shared>,
    deadline: Instant,
    limit: usize,
    written: usize,
    pending: Vec<u8>,
    stopped: Option<Stopped>,
}

/// Why a [`PipeWriter`] refuses to take more.
#[derive(Clone, Copy)]
enum Stopped {
    /// `--max-output` would be passed.
    Full,
    /// The writer thread met this error (a reader gone).
    Failed(std::io::ErrorKind),
    /// The queue stayed full until the deadline.
    Late,
}

impl Stopped {
    fn error(self, limit: usize) -> std::io::Error {
        match self {
            Stopped::Full => std::io::Error::other(OutputFull(limit)),
            Stopped::Failed(kind) => kind.into(),
            Stopped::Late => std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the reader of the output did not keep up before the deadline",
            ),
        }
    }
}

/// The writer thread's handle.
pub struct StdoutPipe {
    shared: Arc<Shared>,
    deadline: Instant,
}

/// Starts the writer thread; writes wait for room at most until `deadline`, and stop at `limit`
/// bytes in all.
pub fn stdout_pipe(deadline: Instant, limit: usize) -> std::io::Result<(PipeWriter, StdoutPipe)> {
    pipe_into(std::io::stdout(), deadline, limit)
}

/// [`stdout_pipe`] into any writer (tests give their own).
fn pipe_into<W: Write + Send + 'static>(
    out: W,
    deadline: Instant,
    limit: usize,
) -> std::io::Result<(PipeWriter, StdoutPipe)> {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        work: Condvar::new(),
        done: Condvar::new(),
    });
    let for_thread = shared.clone();
    std::thread::Builder::new()
        .name("skillhost-stdout".into())
        .spawn(move || write_out(&for_thread, out))?;
    Ok((
        PipeWriter {
            shared: shared.clone(),
            deadline,
            limit,
            written: 0,
            pending: Vec::with_capacity(CHUNK),
            stopped: None,
        },
        StdoutPipe { shared, deadline },
    ))
}

/// The writer thread: takes chunks off the queue and writes them to `out`.
fn write_out(shared: &Shared, mut out: impl Write) {
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
                queue.writer_idle = true;
                queue = shared.work.wait(queue).unwrap_or_else(|e| e.into_inner());
                queue.writer_idle = false;
            }
        };
        let Some(chunk) = chunk else {
            let result = out.flush();
            let mut queue = shared.lock();
            if let Err(e) = result {
                queue.failed.get_or_insert(e.kind());
            }
            queue.drained = true;
            shared.wake_waiting(&queue);
            return;
        };
        // The queue counts what a chunk holds, as it was counted when queued.
        let counted = held(&chunk);
        let result = out.write_all(&chunk).and_then(|()| {
            if shared.lock().chunks.is_empty() {
                out.flush()
            } else {
                Ok(())
            }
        });
        let mut queue = shared.lock();
        queue.queued = queue.queued.saturating_sub(counted);
        if let Err(e) = result {
            queue.failed.get_or_insert(e.kind());
            queue.chunks.clear();
            queue.queued = 0;
        }
        shared.wake_waiting(&queue);
    }
}

impl PipeWriter {
    /// Queues what is pending for the writer thread, waiting for room until the deadline at
    /// most. A buffer at least half full (rows gathered until the next would not fit) is queued
    /// as it is; a smaller one (a terminal's row) as a copy of its length, so that what the queue
    /// counts (an allocation, [`MIN_HELD`] at least) is at most twice what it holds, or
    /// [`MIN_HELD`].
    fn hand_over(&mut self) -> Result<(), Stopped> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut queue = self
            .shared
            .wait_done(self.shared.lock(), self.deadline, |q| {
                q.failed.is_some() || q.queued < QUEUE_BYTES
            });
        if let Some(kind) = queue.failed {
            return Err(Stopped::Failed(kind));
        }
        if queue.queued >= QUEUE_BYTES {
            return Err(Stopped::Late);
        }
        let chunk = if self.pending.len() >= self.pending.capacity() / 2 {
            std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK))
        } else {
            let copy = self.pending.clone();
            self.pending.clear();
            copy
        };
        queue.queued += held(&chunk);
        queue.chunks.push_back(chunk);
        self.shared.wake_writer(&queue);
        Ok(())
    }

    /// Notes why the writer stops and says so.
    fn stop(&mut self, why: Stopped) -> std::io::Error {
        self.stopped = Some(why);
        why.error(self.limit)
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Some(why) = self.stopped {
            return Err(why.error(self.limit));
        }
        if self.written.saturating_add(data.len()) > self.limit {
            return Err(self.stop(Stopped::Full));
        }
        // What was taken before is handed over first: a write that fails takes nothing.
        if !self.pending.is_empty() && self.pending.len() + data.len() > CHUNK {
            self.hand_over().map_err(|why| self.stop(why))?;
        }
        self.pending.extend_from_slice(data);
        self.written += data.len();
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.hand_over().map_err(|why| self.stop(why))
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
        let queue = self
            .shared
            .wait_done(self.shared.lock(), self.deadline, |q| {
                q.failed.is_some() || q.queued == 0
            });
        outcome(queue.failed, queue.queued == 0)
    }

    /// Closes the pipe and waits, until the deadline at most, for the writer to have written
    /// everything. `TimedOut` when the reader did not take it all in time.
    pub fn finish(self) -> std::io::Result<()> {
        let mut queue = self.shared.lock();
        if !queue.closed {
            queue.closed = true;
            self.shared.wake_writer(&queue);
        }
        let queue = self
            .shared
            .wait_done(queue, self.deadline, |q| q.failed.is_some() || q.drained);
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    /// A reader of the output: keeps what it is given, or refuses it as a closed pipe, or
    /// holds every write until it is let go.
    #[derive(Clone, Default)]
    struct Reader {
        got: Arc<Mutex<Vec<u8>>>,
        closed: bool,
        held: Arc<AtomicBool>,
    }

    impl Write for Reader {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            while self.held.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            if self.closed {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            lock(&self.got).extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn pipe(reader: &Reader, limit: usize) -> (PipeWriter, StdoutPipe) {
        let deadline = Instant::now() + Duration::from_secs(5);
        pipe_into(reader.clone(), deadline, limit).expect("writer thread")
    }

    fn refused_for_the_limit(result: std::io::Result<usize>) -> bool {
        result
            .err()
            .and_then(|e| e.into_inner())
            .is_some_and(|inner| inner.downcast_ref::<OutputFull>().is_some())
    }

    #[test]
    fn a_write_refused_for_the_output_limit_refuses_every_later_one_and_leaves_no_hole() {
        let reader = Reader::default();
        let (mut writer, pipe) = pipe(&reader, 10);
        assert_eq!(writer.write(b"{\"a\":1}\n").ok(), Some(8));
        assert!(refused_for_the_limit(writer.write(b"{\"bb\":2}\n")));
        // Two bytes would still fit: they must not follow the refused row.
        assert!(refused_for_the_limit(writer.write(b"{}")));
        drop(writer);
        pipe.finish().expect("finish");
        assert_eq!(lock(&reader.got).as_slice(), b"{\"a\":1}\n");
    }

    #[test]
    fn after_the_reader_is_gone_writes_fail_as_a_closed_pipe_and_take_nothing() {
        let reader = Reader {
            closed: true,
            ..Reader::default()
        };
        let (mut writer, _pipe) = pipe(&reader, usize::MAX);
        let row = vec![b'x'; 1000];
        // Rows until a hand-over meets the reader's refusal.
        let mut refused = 0;
        while lock(&writer.shared.queue).failed.is_none() {
            if let Err(e) = writer.write_all(&row) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
                refused += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..10 * CHUNK / row.len() {
            match writer.write(&row) {
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
                    refused += 1;
                }
                Ok(n) => {
                    assert_eq!(n, row.len());
                    assert_eq!(refused, 0, "a write was taken after one was refused");
                }
            }
        }
        assert!(refused > 0);
        assert!(
            writer.pending.len() <= CHUNK,
            "{} bytes held for a reader that is gone",
            writer.pending.len()
        );
    }

    #[test]
    fn a_buffer_filled_with_rows_is_queued_as_it_is_not_copied() {
        let reader = Reader::default();
        reader.held.store(true, Ordering::SeqCst);
        let (mut writer, pipe) = pipe(&reader, usize::MAX);
        let row = vec![b'x'; 1000];
        // 65 rows do not fit in one buffer: the 66th write hands the first 65 over.
        for _ in 0..66 {
            writer.write_all(&row).expect("write");
        }
        // The queue counts a chunk's capacity until the (held) reader took it: the buffer's
        // own, where a copy would have had its length, 65,000.
        assert_eq!(lock(&writer.shared.queue).queued, CHUNK);
        reader.held.store(false, Ordering::SeqCst);
        drop(writer);
        pipe.finish().expect("finish");
        assert_eq!(lock(&reader.got).len(), 66_000);
    }

    #[test]
    fn a_writer_waiting_for_room_and_finish_are_woken_as_soon_as_the_reader_takes_the_rows() {
        let reader = Reader::default();
        reader.held.store(true, Ordering::SeqCst);
        // A deadline far away: a lost wake-up would show as a wait of that length.
        let deadline = Duration::from_secs(60);
        let (mut writer, pipe) =
            pipe_into(reader.clone(), Instant::now() + deadline, usize::MAX).expect("pipe");
        let shared = writer.shared.clone();
        let rows = QUEUE_BYTES / 1000 + 2 * CHUNK / 1000;
        let producer = std::thread::spawn(move || {
            let row = vec![b'x'; 1000];
            for _ in 0..rows {
                writer.write_all(&row).expect("write");
            }
        });
        // The queue fills up while the reader is held: the writer of rows waits for room.
        let filling = Instant::now();
        while lock(&shared.queue).waiting == 0 {
            assert!(
                !producer.is_finished() && filling.elapsed() < deadline / 2,
                "the writer of rows never waited for room"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let released = Instant::now();
        reader.held.store(false, Ordering::SeqCst);
        producer.join().expect("producer");
        pipe.finish().expect("finish");
        let took = released.elapsed();
        assert_eq!(lock(&reader.got).len(), rows * 1000);
        assert_eq!(lock(&shared.queue).waiting, 0);
        assert!(took < deadline / 2, "woken only after {took:?}");
    }

    #[test]
    fn rows_flushed_one_by_one_are_queued_at_their_own_size() {
        let reader = Reader::default();
        reader.held.store(true, Ordering::SeqCst);
        let (mut writer, pipe) = pipe(&reader, usize::MAX);
        for _ in 0..3 {
            writer.write_all(b"{}\n").expect("write");
            writer.flush().expect("flush");
        }
        {
            let queue = lock(&writer.shared.queue);
            // Three rows of three bytes (the first may be in the held writer already): each
            // counted as the least a chunk counts for, and held at its own size, not a buffer's.
            let held: usize = queue.chunks.iter().map(Vec::capacity).sum();
            assert_eq!(queue.queued, 3 * MIN_HELD);
            assert!(held <= 9, "{held} bytes held for 9 bytes of rows");
        }
        reader.held.store(false, Ordering::SeqCst);
        drop(writer);
        pipe.finish().expect("finish");
        assert_eq!(lock(&reader.got).as_slice(), b"{}\n{}\n{}\n");
    }
}
