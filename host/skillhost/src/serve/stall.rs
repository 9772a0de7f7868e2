//! A client connection whose writes must make progress: once what the server writes has found no
//! room for [`ServeArgs::stall_timeout`](super::ServeArgs) (the client stopped reading), the
//! connection fails and is closed.
//!
//! Threat: a client that sends requests and never reads their answers. hyper's header timeout
//! covers a client that sends nothing, but an answer waiting for room in a full socket waits for
//! ever: such clients would keep every connection slot (`--max-connections`) and, with each, the
//! answer it holds (an object result can be tens of MB). A client reading slowly but steadily is
//! not affected: every write that goes through starts the clock again, and `serve::accept` sets
//! `TCP_NOTSENT_LOWAT` (64 KiB) so that a write goes through as soon as that little is unsent,
//! not once a third of a send buffer of megabytes has drained. A client that takes at least
//! 64 KiB per `--stall-timeout` keeps its connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `inner`, with its writes failed once none went through for `limit`.
pub struct StallGuard<S> {
    inner: S,
    limit: Duration,
    /// Runs while a write waits for room; cleared by any write or flush that goes through.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> StallGuard<S> {
    /// Guards `inner`'s writes with `limit`.
    pub fn new(inner: S, limit: Duration) -> Self {
        StallGuard {
            inner,
            limit,
            stalled: None,
        }
    }

    /// What a write that went through (`Ready`) or waits (`Pending`) means for the clock.
    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let clock = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if clock.as_mut().poll(cx).is_ready() {
            self.stalled = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client took nothing of the answer for {} s",
                    limit.as_secs_f64()
                ),
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_that_finds_no_room_for_the_limit_fails_as_timed_out() {
        // A pipe of 16 bytes whose reading end nobody reads.
        let (writer, _reader) = tokio::io::duplex(16);
        let mut guarded = StallGuard::new(writer, Duration::from_secs(5));
        guarded.write_all(&[0; 16]).await.unwrap();
        let started = tokio::time::Instant::now();
        let error = guarded.write_all(&[0; 1]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            error.to_string(),
            "the client took nothing of the answer for 5 s"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_keeps_taking_keeps_the_connection_however_long_it_lasts() {
        let (writer, mut reader) = tokio::io::duplex(16);
        let mut guarded = StallGuard::new(writer, Duration::from_secs(5));
        let reading = tokio::spawn(async move {
            let mut byte = [0u8; 1];
            let mut taken = 0;
            // One byte every 4 s: slower than the writer, never 5 s without taking.
            while tokio::io::AsyncReadExt::read(&mut reader, &mut byte)
                .await
                .unwrap()
                == 1
            {
                taken += 1;
                tokio::time::sleep(Duration::from_secs(4)).await;
            }
            taken
        });
        guarded.write_all(&[7; 40]).await.unwrap();
        guarded.shutdown().await.unwrap();
        drop(guarded);
        assert_eq!(reading.await.unwrap(), 40);
    }
}
