//! Transport-level misbehaviour: answer bodies that stop short of their announced length, and
//! connections that end with a TCP reset instead of a clean close.
//!
//! The HTTP layer (hyper) ends a connection when a response body fails; [`ShortBody`] fails on
//! purpose after sending part of its bytes. [`ResetListener`] hands out connections that a handler
//! can mark (through the [`ResetSwitch`] extracted as connect info) to close with `SO_LINGER 0`,
//! which makes the kernel send a RST.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A response body that sends `sent`, then waits for `end` and fails, while its size hint
/// announces `announced` bytes: the connection is aborted with the body short.
pub(crate) struct ShortBody {
    sent: Option<Bytes>,
    announced: u64,
    end: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl ShortBody {
    /// A body announcing `announced` bytes, sending `sent`, then failing once `end` completes.
    /// The wait also lets the HTTP layer flush `sent` before the connection goes.
    pub(crate) fn new(
        sent: Bytes,
        announced: u64,
        end: impl Future<Output = ()> + Send + 'static,
    ) -> ShortBody {
        ShortBody {
            sent: Some(sent),
            announced,
            end: Box::pin(end),
        }
    }
}

impl http_body::Body for ShortBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if let Some(sent) = this.sent.take() {
            return Poll::Ready(Some(Ok(Frame::data(sent))));
        }
        ready!(this.end.as_mut().poll(cx));
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "body cut short by the simulator",
        ))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.announced)
    }
}

/// Shared by a connection and the requests it carries: set, the connection closes with a RST.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResetSwitch(Arc<AtomicBool>);

impl ResetSwitch {
    /// Makes the connection end with a RST (`SO_LINGER 0`) rather than a FIN when it closes.
    pub(crate) fn arm(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn armed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Connected<IncomingStream<'_, ResetListener>> for ResetSwitch {
    fn connect_info(stream: IncomingStream<'_, ResetListener>) -> Self {
        stream.io().reset.clone()
    }
}

/// A TCP listener whose connections carry a [`ResetSwitch`].
pub(crate) struct ResetListener(pub(crate) TcpListener);

impl axum::serve::Listener for ResetListener {
    type Io = ResettableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (ResettableStream, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let stream = ResettableStream {
                        stream,
                        reset: ResetSwitch::default(),
                    };
                    return (stream, addr);
                }
                // Aborted handshakes or exhausted descriptors: wait a little, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A TCP connection that closes with a RST when its switch is armed.
pub(crate) struct ResettableStream {
    stream: TcpStream,
    reset: ResetSwitch,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.armed() {
            // Closing with a zero linger time discards what is unsent and sends a RST.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.reset.armed() {
            // No FIN: the RST on drop is the only end the peer sees.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}
