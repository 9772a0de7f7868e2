//! Guest-side bindings of `skillhost:skill@0.1.0` for Rust skills.
//!
//! The bindings are generated once here; a skill crate implements [`bindings::exports::skillhost::skill::guest::Guest`]
//! and exports it with [`export_skill!`]:
//!
//! ```ignore
//! struct MySkill;
//! impl skillhost_guest::Guest for MySkill { /* describe, invoke */ }
//! skillhost_guest::export_skill!(MySkill);
//! ```

/// Generated bindings of the `skill` world.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "skill",
        path: "../../wit/skill@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_skill",
        default_bindings_module: "skillhost_guest::bindings",
    });
}

pub use bindings::export_skill;
pub use bindings::exports::skillhost::skill::guest::Guest;
pub use bindings::skillhost::skill::connection::{self, ApiFlavour, ConnectionInfo};
pub use bindings::skillhost::skill::emit::emit;
pub use bindings::skillhost::skill::http::{self, HttpError, Method, Request, Response};
pub use bindings::skillhost::skill::log::{Level, log};
pub use bindings::skillhost::skill::types::{
    OutputKind, ParamKind, ParamSpec, SkillError, SkillInfo, UpstreamError,
};

/// Sends a GET to `path_and_query` on `service` of the bound connection.
pub fn get(service: &str, path_and_query: &str) -> Result<Response, HttpError> {
    http::send(&Request {
        service: service.to_string(),
        method: Method::Get,
        path_and_query: path_and_query.to_string(),
        headers: Vec::new(),
        body: None,
    })
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

impl SkillInfo {
    /// An object-returning skill with no parameters and no services; adjust fields as needed.
    pub fn new(id: &str, description: &str) -> Self {
        SkillInfo {
            id: id.to_string(),
            name: id.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: description.to_string(),
            parameters: Vec::new(),
            services: Vec::new(),
            output: OutputKind::Object,
            columns: Vec::new(),
            output_description: String::new(),
        }
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

/// Bytes asked of the host per read: small enough that a page is never held whole.
const BODY_CHUNK: u32 = 16 * 1024;

impl BodyReader {
    /// The error that ended the stream early, if any.
    pub fn take_error(&mut self) -> Option<HttpError> {
        self.error.take()
    }
}

impl std::io::Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.position == self.chunk.len() {
            let Some(body) = &self.body else {
                return Ok(0);
            };
            match body.read(BODY_CHUNK) {
                Ok(chunk) if chunk.is_empty() => {
                    self.body = None;
                    return Ok(0);
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
        let n = out.len().min(self.chunk.len() - self.position);
        out[..n].copy_from_slice(&self.chunk[self.position..self.position + n]);
        self.position += n;
        Ok(n)
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
