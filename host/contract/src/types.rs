//! Host-neutral forms of the values that cross the wasm boundary.
//!
//! Every contract version's bindings convert into these; nothing outside `skillhost-contract`
//! sees a generated type.

/// An HTTP method a skill may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A skill's request to one service of its bound connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The service to call, such as `defender` or `graph`.
    pub service: String,
    /// The method.
    pub method: Method,
    /// A path with an optional query, or an absolute URL on the service's own origin.
    pub path_and_query: String,
    /// Extra request headers, as the skill gave them.
    pub headers: Vec<(String, String)>,
    /// The request body, if any.
    pub body: Option<Vec<u8>>,
}

/// An answer with its whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Identifies a streamed response body held by the host for the guest.
pub type BodyId = u32;

/// The type the bindings give the guest's handle on a streamed body (the `incoming-body`
/// resource); the handle's representation is the host's [`BodyId`].
pub struct BodyHandle;

/// An answer whose body the guest reads piece by piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body, held by the host.
    pub body: BodyId,
}

/// Why no response could be obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The egress policy refused the request; the message says which rule.
    Denied(String),
    /// The connection's credentials could not produce a token; the message says what to fix.
    Unauthorized(String),
    /// The invocation's deadline passed before an answer arrived.
    Timeout,
    /// The response body exceeded the host's cap (bytes).
    TooLarge(u64),
    /// The service could not be reached (after retries); the message says why.
    Transport(String),
}

/// Which incidents API a connection speaks, as a skill sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFlavour {
    /// The Microsoft Defender XDR API.
    Defender,
    /// The Microsoft Graph security API.
    Graph,
}

/// Non-secret facts about the bound connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The connection's name in the host's configuration.
    pub name: String,
    /// The tenant (isolation key).
    pub tenant: String,
    /// The cloud's name.
    pub cloud: String,
    /// Which API flavour to speak.
    pub api: ApiFlavour,
    /// The services the skill can reach.
    pub services: Vec<String>,
}

/// Severity of a skill's log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

/// Why an invocation failed, as the skill reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkillError {
    /// The caller's input is wrong.
    InvalidInput(String),
    /// The object asked for does not exist upstream.
    NotFound(String),
    /// The host refused a capability call.
    Denied(String),
    /// The upstream rejected the credentials.
    Unauthorized(String),
    /// The credentials lack a permission.
    Forbidden(String),
    /// The upstream kept throttling after retries.
    Throttled(String),
    /// Any other upstream failure.
    Upstream(UpstreamError),
    /// The upstream or the invocation ran out of time.
    Timeout(String),
    /// Another run is doing the same work now (contract 0.2: it holds a `state.lock`).
    Conflict(String),
    /// A bug or unexpected state inside the skill.
    Internal(String),
}

/// An upstream answer the skill could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// HTTP status code (0: no answer).
    pub status: u16,
    /// The service's error code, or empty.
    pub code: String,
    /// The service's message, or what went wrong.
    pub message: String,
}

/// A stored state value and its version (contract 0.2, `state.get`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    /// The value.
    pub value: Vec<u8>,
    /// Its version.
    pub version: u64,
}

/// Why a state call failed (contract 0.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    /// Another run holds the lock asked for.
    InUse(String),
    /// A cap was exceeded.
    Limit(String),
    /// A key or lock name the host does not accept.
    Invalid(String),
    /// The store cannot be reached, or there is no scope to keep state in.
    Unavailable(String),
}
