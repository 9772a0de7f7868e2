//! A guest's stdout and stderr: kept in memory up to a cap, the rest dropped, forwarded to the
//! log afterwards; the last few KiB are kept apart, so that a crash can be explained from the
//! guest's last words (a Rust panic message, a Python traceback) however much it wrote before.
//!
//! Threat: a guest that writes without end must neither fill the host's memory nor block on a
//! full pipe; what it writes is quoted to a person only escaped (see `contract::text::escape`).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// The most of a guest's latest output kept to explain a crash.
const TAIL_CAP: usize = 8 * 1024;

/// Frames of a Python traceback quoted in a crash report (the innermost ones).
const CRASH_FRAMES: usize = 3;

/// What was written, in two bounded views.
#[derive(Default)]
struct Written {
    /// The first `cap` bytes (forwarded to the log).
    head: Vec<u8>,
    /// The last bytes, between [`TAIL_CAP`] and twice that once that much was written.
    tail: Vec<u8>,
    /// Whether bytes were dropped from the front of `tail`.
    tail_cut: bool,
}

/// A guest's stdout or stderr: kept in memory up to a cap, the rest silently dropped (a guest
/// cannot fill the host's memory or crash on a full pipe), forwarded to the log afterwards.
#[derive(Clone)]
pub struct GuestOutput {
    written: Arc<Mutex<Written>>,
    cap: usize,
}

/// A guest crash explained from its last words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashReport {
    /// One line on what went wrong: a Python exception (`ValueError: ...`) or the last line.
    pub summary: String,
    /// The innermost frames of a Python traceback (`File "app.py", line 3, in invoke`), if any.
    pub frames: Vec<String>,
}

impl GuestOutput {
    /// An empty buffer that keeps at most `cap` bytes (and the latest few KiB).
    pub fn new(cap: usize) -> Self {
        GuestOutput {
            written: Arc::new(Mutex::new(Written::default())),
            cap,
        }
    }

    /// The complete lines of the first `cap` bytes, lossily decoded.
    pub fn lines(&self) -> Vec<String> {
        match self.written.lock() {
            Ok(written) => non_empty_lines(&String::from_utf8_lossy(&written.head)),
            Err(_) => Vec::new(),
        }
    }

    /// The lines of the latest few KiB written (a first line cut by the window is left out).
    fn tail_lines(&self) -> Vec<String> {
        let Ok(written) = self.written.lock() else {
            return Vec::new();
        };
        let start = written.tail.len().saturating_sub(TAIL_CAP);
        let text = String::from_utf8_lossy(&written.tail[start..]);
        let mut lines = non_empty_lines(&text);
        if (written.tail_cut || start > 0) && !lines.is_empty() {
            lines.remove(0);
        }
        lines
    }

    /// The last non-empty line (a Rust guest's panic message ends up here).
    pub fn last_line(&self) -> Option<String> {
        self.tail_lines()
            .into_iter()
            .rfind(|l| !l.contains("note: run with"))
    }

    /// Why the guest crashed, as far as its last words say: for a Python traceback, the
    /// exception and the innermost frames; otherwise the last line.
    pub fn crash_report(&self) -> Option<CrashReport> {
        let lines = self.tail_lines();
        if let Some(start) = lines
            .iter()
            .rposition(|l| l.trim_end() == "Traceback (most recent call last):")
        {
            let after = &lines[start + 1..];
            let frames: Vec<String> = after
                .iter()
                .filter(|l| l.trim_start().starts_with("File \""))
                .map(|l| l.trim().to_string())
                .collect();
            if let Some(exception) = after.iter().find(|l| !l.starts_with(' ')) {
                let skip = frames.len().saturating_sub(CRASH_FRAMES);
                return Some(CrashReport {
                    summary: exception.trim().to_string(),
                    frames: frames[skip..].to_vec(),
                });
            }
        }
        self.last_line().map(|summary| CrashReport {
            summary,
            frames: Vec::new(),
        })
    }
}

fn non_empty_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    /// The stream a WASIp2 guest writes to: straight into the buffers. wasmtime's default
    /// adapter starts a task and an 8 KiB buffer for every stream the guest asks for.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl GuestOutput {
    /// Keeps what it may of `data`: the head up to the cap, and the latest bytes.
    fn keep(&self, data: &[u8]) {
        let Ok(mut written) = self.written.lock() else {
            return;
        };
        let room = self.cap.saturating_sub(written.head.len());
        written
            .head
            .extend_from_slice(&data[..data.len().min(room)]);
        // The tail keeps at most the last TAIL_CAP bytes of `data`, and is trimmed back to
        // TAIL_CAP whenever it reaches twice that: bounded, and amortized linear.
        let keep = &data[data.len().saturating_sub(TAIL_CAP)..];
        if keep.len() < data.len() {
            written.tail.clear();
            written.tail_cut = true;
        }
        written.tail.extend_from_slice(keep);
        if written.tail.len() >= 2 * TAIL_CAP {
            let excess = written.tail.len() - TAIL_CAP;
            written.tail.drain(..excess);
            written.tail_cut = true;
        }
    }
}

/// How much a guest may write at once to its stdout or stderr (`check-write`). Writes are
/// never refused, only kept up to the cap, so this bounds a single write, not the total.
const WRITE_PERMIT: usize = 64 * 1024;

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if bytes.len() > WRITE_PERMIT {
            return Err(StreamError::trap("write larger than check-write allowed"));
        }
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    /// Always ready: a write never waits.
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.keep(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(output: &GuestOutput, text: &str) {
        let mut writer = output.clone();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let _ = Pin::new(&mut writer).poll_write(&mut cx, text.as_bytes());
    }

    #[test]
    fn a_python_traceback_gives_its_exception_and_innermost_frames() {
        let out = GuestOutput::new(64 * 1024);
        write(
            &out,
            "Traceback (most recent call last):\n  File \"/0/app.py\", line 40, in invoke\n    \
             helper()\n  File \"/0/app.py\", line 33, in helper\n    raise ValueError(\"x\")\n\
             ValueError: the boom parameter is out of range\nthread '<unnamed>' (1) panicked at \
             runtime/src/lib.rs:1293:29:\nPython function threw an unexpected exception\nnote: \
             run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        );
        assert_eq!(
            out.crash_report(),
            Some(CrashReport {
                summary: "ValueError: the boom parameter is out of range".into(),
                frames: vec![
                    "File \"/0/app.py\", line 40, in invoke".into(),
                    "File \"/0/app.py\", line 33, in helper".into(),
                ],
            })
        );
    }

    #[test]
    fn the_last_words_survive_a_flood_of_earlier_output() {
        let out = GuestOutput::new(1024);
        for _ in 0..1000 {
            write(&out, "noise noise noise noise noise noise noise\n");
        }
        write(&out, "panicked: the real reason\n");
        assert_eq!(
            out.last_line().as_deref(),
            Some("panicked: the real reason")
        );
        assert_eq!(out.written.lock().unwrap().head.len(), 1024);
        assert!(out.written.lock().unwrap().tail.len() < 2 * TAIL_CAP);
    }

    #[test]
    fn one_huge_write_keeps_only_its_end() {
        let out = GuestOutput::new(16);
        let text = format!("{}\nlast line\n", "y".repeat(100_000));
        write(&out, &text);
        assert_eq!(out.last_line().as_deref(), Some("last line"));
        assert_eq!(out.written.lock().unwrap().tail.len(), TAIL_CAP);
    }
}
