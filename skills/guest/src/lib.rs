//! The Rust SDK of skillhost skills: bindings of the contract `skillhost:skill@0.1.0` (or, with
//! the `state` feature, `skillhost:skill@0.2.0`) and the helpers every skill needs.
//!
//! The crate carries its own copy of the WIT it binds (`wit/skill@0.1.0`, `wit/skill@0.2.0`) and
//! inherits nothing from a workspace, so it builds wherever it is: `skillhost new` copies it into
//! each new Rust skill project (`vendor/skillhost-guest`), and a skill elsewhere can depend on it
//! by path. Its version follows the newest contract it can bind: 0.2.x binds
//! `skillhost:skill@0.1.0` by default, so a skill that keeps nothing runs on every host that
//! speaks 0.1.0, and `skillhost:skill@0.2.0` with the feature `state`, which adds [`state`]
//! (values kept from one run to the next, and locks) and the `conflict` error.
//!
//! ```ignore
//! use skillhost_guest::{Guest, Input, ParamKind, ParamSpec, SkillError, SkillInfo};
//!
//! struct Hello;
//!
//! impl Guest for Hello {
//!     fn describe() -> SkillInfo {
//!         skillhost_guest::describe!("hello")
//!             .description("Greets.")
//!             .parameter(ParamSpec::new("name", ParamKind::Text, true, "Who to greet."))
//!             .build()
//!     }
//!
//!     fn invoke(input: String) -> Result<String, SkillError> {
//!         let input = Input::parse(&input)?;
//!         Ok(format!("{{\"hello\": {:?}}}", input.required_text("name")?))
//!     }
//! }
//!
//! skillhost_guest::export_skill!(Hello);
//! ```
//!
//! Helpers: [`describe!`] / [`Describe`] (the skill's `describe()` answer, with the skill crate's
//! own version), [`Input`] (typed reading of the validated input), [`errors`] (HTTP answers and
//! host errors as the skill error the operator's guidance is built on), [`odata`] (`$top` /
//! `$skip` / `@odata.nextLink` paging), [`get`] / [`get_json`] / [`get_streaming`].

pub mod describe;
pub mod errors;
pub mod input;
pub mod odata;
#[cfg(feature = "state")]
pub mod state;

/// Generated bindings of the `skill` world.
#[cfg(not(feature = "state"))]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "skill",
        path: "wit/skill@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_skill",
        default_bindings_module: "skillhost_guest::bindings",
    });
}

/// Generated bindings of the `skill` world.
#[cfg(feature = "state")]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "skill",
        path: "wit/skill@0.2.0",
        pub_export_macro: true,
        export_macro_name: "export_skill",
        default_bindings_module: "skillhost_guest::bindings",
    });
}

/// The contract version this SDK binds, as it appears in the component's import and export names.
#[cfg(not(feature = "state"))]
pub const CONTRACT_VERSION: &str = "0.1.0";
/// The contract version this SDK binds, as it appears in the component's import and export names.
#[cfg(feature = "state")]
pub const CONTRACT_VERSION: &str = "0.2.0";

pub use bindings::export_skill;
pub use bindings::exports::skillhost::skill::guest::Guest;
pub use bindings::skillhost::skill::connection::{self, ApiFlavour, ConnectionInfo};
pub use bindings::skillhost::skill::emit::emit;
pub use bindings::skillhost::skill::http::{self, HttpError, Method, Request, Response};
pub use bindings::skillhost::skill::log::{Level, log};
pub use bindings::skillhost::skill::types::{
    OutputKind, ParamKind, ParamSpec, SkillError, SkillInfo, UpstreamError,
};
pub use describe::Describe;
pub use errors::{fetch_error, status_error};
pub use input::Input;
pub use odata::ODataPager;

/// Sends a GET to `path_and_query` on `service` of the bound connection and returns the whole
/// answer, whatever its status.
pub fn get(service: &str, path_and_query: &str) -> Result<Response, HttpError> {
    http::send(&Request {
        service: service.to_string(),
        method: Method::Get,
        path_and_query: path_and_query.to_string(),
        headers: Vec::new(),
        body: None,
    })
}

/// Sends a GET and returns its body as JSON when the status is 2xx; any other status becomes the
/// skill error it means ([`status_error`]), and a host error too ([`fetch_error`]).
pub fn get_json(service: &str, path_and_query: &str) -> Result<serde_json::Value, SkillError> {
    let response = get(service, path_and_query).map_err(fetch_error)?;
    if !(200..300).contains(&response.status) {
        return Err(status_error(service, response.status, &response.body));
    }
    errors::parse_json_body(service, response.status, &response.body)
}

impl ParamSpec {
    /// A parameter with no default, no allowed-value list and no bounds.
    pub fn new(name: &str, kind: ParamKind, required: bool, description: &str) -> Self {
        ParamSpec {
            name: name.to_string(),
            description: description.to_string(),
            kind,
            required,
            default_value: None,
            allowed_values: Vec::new(),
            minimum: None,
            maximum: None,
        }
    }

    /// Sets the default, given as JSON text.
    pub fn default_json(mut self, json: &str) -> Self {
        self.default_value = Some(json.to_string());
        self
    }

    /// Restricts a text parameter to `values`.
    pub fn allowed(mut self, values: &[&str]) -> Self {
        self.allowed_values = values.iter().map(|v| v.to_string()).collect();
        self
    }

    /// Bounds an integer parameter.
    pub fn range(mut self, minimum: Option<i64>, maximum: Option<i64>) -> Self {
        self.minimum = minimum;
        self.maximum = maximum;
        self
    }
}

/// A streamed answer's body as a [`std::io::Read`], fetched from the host in chunks.
///
/// An error from the host (deadline, cap, lost connection) ends the stream as an I/O error and
/// is kept, so the caller can report the real cause with [`BodyReader::take_error`].
pub struct BodyReader {
    body: Option<http::IncomingBody>,
    chunk: Vec<u8>,
    position: usize,
    error: Option<HttpError>,
}

/// Bytes asked of the host per read: small enough that a page is never held whole, and the
/// size of the host's pieces (so that a read takes one whole).
const BODY_CHUNK: u32 = 16 * 1024;

impl BodyReader {
    /// The error that ended the stream early, if any.
    pub fn take_error(&mut self) -> Option<HttpError> {
        self.error.take()
    }
}

impl std::io::Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        let chunk = self.fill_buf()?;
        let n = out.len().min(chunk.len());
        out[..n].copy_from_slice(&chunk[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The host's chunks lent as they came: a reader that keeps its own buffer (a JSON parser's
/// window) appends them without a copy into an intermediate buffer first.
impl std::io::BufRead for BodyReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.position == self.chunk.len() {
            let Some(body) = &self.body else {
                return Ok(&[]);
            };
            match body.read(BODY_CHUNK) {
                Ok(chunk) if chunk.is_empty() => {
                    self.body = None;
                    return Ok(&[]);
                }
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.position = 0;
                }
                Err(error) => {
                    self.body = None;
                    self.error = Some(error);
                    return Err(std::io::Error::other("the response body could not be read"));
                }
            }
        }
        Ok(&self.chunk[self.position..])
    }

    fn consume(&mut self, n: usize) {
        self.position = (self.position + n).min(self.chunk.len());
    }
}

/// Sends a GET and returns the status and a reader over the body, which arrives as it is read.
pub fn get_streaming(service: &str, path_and_query: &str) -> Result<(u16, BodyReader), HttpError> {
    let response = http::send_streaming(&Request {
        service: service.to_string(),
        method: Method::Get,
        path_and_query: path_and_query.to_string(),
        headers: Vec::new(),
        body: None,
    })?;
    Ok((
        response.status,
        BodyReader {
            body: Some(response.body),
            chunk: Vec::new(),
            position: 0,
            error: None,
        },
    ))
}
