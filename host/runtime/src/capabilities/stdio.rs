//! A guest's stdout and stderr: kept in memory up to a cap, the rest dropped, forwarded to the
//! log afterwards.
//!
//! Threat: a guest that writes without end must neither fill the host's memory nor block on a
//! full pipe.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// A guest's stdout or stderr: kept in memory up to a cap, the rest silently dropped (a guest
/// cannot fill the host's memory or crash on a full pipe), forwarded to the log afterwards.
#[derive(Clone)]
pub struct GuestOutput {
    buffer: Arc<Mutex<Vec<u8>>>,
    cap: usize,
}

impl GuestOutput {
    /// An empty buffer that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        GuestOutput {
            buffer: Arc::new(Mutex::new(Vec::new())),
            cap,
        }
    }

    /// The complete lines written so far, lossily decoded.
    pub fn lines(&self) -> Vec<String> {
        match self.buffer.lock() {
            Ok(buf) => String::from_utf8_lossy(&buf)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The last non-empty line (a Rust guest's panic message ends up here).
    pub fn last_line(&self) -> Option<String> {
        self.lines()
            .into_iter()
            .rfind(|l| !l.contains("note: run with"))
    }
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
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Ok(mut buf) = self.buffer.lock() {
            let room = self.cap.saturating_sub(buf.len());
            buf.extend_from_slice(&data[..data.len().min(room)]);
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
