//! The answers of the service: JSON documents, error documents with their status, and the
//! streamed body of a dataset.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde_json::{Value, json};
use skillhost_contract::error::{Failure, Reason};
use skillhost_contract::text::escape;
use skillhost_runtime::output::Output;
use tokio::sync::mpsc;

/// A response body: its content, and what it keeps alive until the connection is done with it.
pub struct Body {
    content: Content,
    /// Dropped with the body: after its last byte was handed to the connection, or when the
    /// caller went away.
    _held: Option<super::InFlight>,
    /// Told when the last byte was handed to the connection (not when the caller went away
    /// before): an object answer's state commits only then.
    delivered: Option<tokio::sync::oneshot::Sender<()>>,
    /// Told when a stream's [`ROWS_END`] mark was reached: every row before it was handed to
    /// the connection, so a dataset's state may commit, and its summary say so.
    rows_taken: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The mark a dataset's stream carries after its last row (an empty chunk, never sent on).
pub const ROWS_END: Bytes = Bytes::new();

enum Content {
    /// All of it at once.
    Full(Option<Bytes>),
    /// A first chunk already in hand, then the rest from the channel until it closes.
    Stream(Option<Bytes>, mpsc::Receiver<Bytes>),
}

impl Body {
    /// All of `bytes` at once.
    pub fn full(bytes: Bytes) -> Self {
        Body {
            content: Content::Full(Some(bytes)),
            _held: None,
            delivered: None,
            rows_taken: None,
        }
    }

    /// `first`, then the chunks of `rest` until it closes.
    pub fn stream(first: Bytes, rest: mpsc::Receiver<Bytes>) -> Self {
        Body {
            content: Content::Stream(Some(first), rest),
            _held: None,
            delivered: None,
            rows_taken: None,
        }
    }

    /// The same body, keeping `in_flight` counted until the connection is done with it.
    pub fn held_by(self, in_flight: super::InFlight) -> Self {
        Body {
            _held: Some(in_flight),
            ..self
        }
    }

    /// The same body, telling `rows_taken` once its stream reached the [`ROWS_END`] mark.
    pub fn on_rows_taken(self, rows_taken: tokio::sync::oneshot::Sender<()>) -> Self {
        Body {
            rows_taken: Some(rows_taken),
            ..self
        }
    }

    /// The same body, telling `delivered` once its last byte was handed to the connection.
    pub fn on_delivered(self, delivered: tokio::sync::oneshot::Sender<()>) -> Self {
        Body {
            delivered: Some(delivered),
            ..self
        }
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let body = self.get_mut();
        let frame = match &mut body.content {
            Content::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Content::Stream(first, receiver) => {
                if let Some(first) = first.take() {
                    return Poll::Ready(Some(Ok(Frame::data(first))));
                }
                loop {
                    match receiver.poll_recv(cx) {
                        // The mark after the last row: everything before it was handed over.
                        Poll::Ready(Some(chunk)) if chunk.is_empty() => {
                            if let Some(rows_taken) = body.rows_taken.take() {
                                let _ = rows_taken.send(());
                            }
                        }
                        other => break other.map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
                    }
                }
            }
        };
        // The last chunk of a full body, or the end of a stream: everything was handed over.
        let last = matches!(
            (&frame, &body.content),
            (Poll::Ready(None), _) | (Poll::Ready(Some(_)), Content::Full(None))
        );
        if last && let Some(delivered) = body.delivered.take() {
            let _ = delivered.send(());
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.content, Content::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.content {
            Content::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Content::Full(None) => SizeHint::with_exact(0),
            Content::Stream(..) => SizeHint::default(),
        }
    }
}

/// The HTTP status of a failure's reason.
pub fn status_of(reason: Reason) -> StatusCode {
    match reason {
        Reason::Unauthenticated => StatusCode::UNAUTHORIZED,
        Reason::Forbidden => StatusCode::FORBIDDEN,
        Reason::NotFound => StatusCode::NOT_FOUND,
        Reason::InvalidInput => StatusCode::BAD_REQUEST,
        Reason::Conflict => StatusCode::CONFLICT,
        Reason::Throttled => StatusCode::TOO_MANY_REQUESTS,
        Reason::Upstream => StatusCode::BAD_GATEWAY,
        Reason::Sandbox => StatusCode::UNPROCESSABLE_ENTITY,
        Reason::Timeout => StatusCode::GATEWAY_TIMEOUT,
        Reason::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Reason::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `{"error": {"code", "message", "hint"}}` of `failure`, its text escaped as on a terminal
/// (it may quote a skill or an upstream).
pub fn error_document(failure: &Failure) -> Value {
    json!({
        "error": {
            "code": failure.reason.as_str(),
            "message": escape(&failure.message),
            "hint": failure.hint.as_deref().map(escape),
        }
    })
}

/// `value` as one line of JSON text.
pub fn json_line(value: &Value) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    Bytes::from(line)
}

/// A run's result as one line of JSON text (its compact form).
pub fn output_line(output: &Output) -> Result<Bytes, serde_json::Error> {
    let mut line = output.compact()?;
    line.push(b'\n');
    Ok(Bytes::from(line))
}

/// A dataset's summary as the last line of its stream: `{"summary": ...}`.
pub fn summary_line(summary: &Output) -> Result<Bytes, serde_json::Error> {
    let compact = summary.compact()?;
    let mut line = Vec::with_capacity(compact.len() + 13);
    line.extend_from_slice(b"{\"summary\":");
    line.extend_from_slice(&compact);
    line.extend_from_slice(b"}\n");
    Ok(Bytes::from(line))
}

/// A JSON answer with `status`.
pub fn json_response(status: StatusCode, document: &Value) -> Response<Body> {
    let mut response = Response::new(Body::full(json_line(document)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A 200 answer of JSON text already serialized.
pub fn json_bytes_response(bytes: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::full(bytes));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The error answer of `failure`: its status, its document, and the headers its code calls
/// for (`WWW-Authenticate` on 401, `Retry-After` on 429 and 503).
pub fn failure_response(failure: &Failure) -> Response<Body> {
    let mut response = json_response(status_of(failure.reason), &error_document(failure));
    let headers = response.headers_mut();
    match failure.reason {
        Reason::Unauthenticated => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"skillhost\""),
            );
        }
        Reason::Throttled | Reason::Unavailable => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

/// A plain-text answer (metrics, health).
pub fn text_response(
    status: StatusCode,
    content_type: &'static str,
    text: String,
) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from(text)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A streamed NDJSON answer starting with `first`.
pub fn ndjson_response(first: Bytes, rest: mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut response = Response::new(Body::stream(first, rest));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}
