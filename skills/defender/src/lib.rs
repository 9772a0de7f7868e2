//! What the three Microsoft Defender skills share, independent of the host: the window
//! parameters and the OData filter built from them, paging over both APIs, the normalized
//! detection row, and the mapping of API answers to typed skill errors.
//!
//! Nothing here calls an import directly: HTTP goes through the [`Fetch`] trait, so the same
//! code runs in the wasm skills (over `http.send`) and natively (in tests and benchmarks).
//!
//! Pages are parsed on a fast path (the private modules `page` and `incident`, and
//! [`rows`]): each incident is parsed once from a window over the streamed body, its strings
//! borrowed, only the fields a row needs kept, and rows written straight as JSON text.
//! [`mod@reference`] keeps the path over `serde_json::Value` it replaced, which defines the rows:
//! the tests hold the two to byte-for-byte equality.

pub mod detections;
#[cfg(test)]
mod equality;
pub mod errors;
pub(crate) mod incident;
pub mod incremental;
pub(crate) mod json;
pub(crate) mod page;
pub mod paging;
pub mod params;
pub mod reference;
pub mod rows;
pub mod workload;

pub use detections::{detections, detections_new};
pub use errors::{api_error, fetch_error};
pub use paging::{Body, Fetch, Page, Pager};
pub use params::{Api, ListRequest};
pub use rows::{COLUMNS, DetectionIncident, Rows};

/// [`Fetch`] over the host's `http.send-streaming` import.
pub struct HostFetch;

impl Fetch for HostFetch {
    fn get(
        &mut self,
        service: &str,
        path_and_query: &str,
    ) -> Result<(u16, Box<dyn Body>), skillhost_guest::HttpError> {
        let (status, body) = skillhost_guest::get_streaming(service, path_and_query)?;
        Ok((status, Box::new(body)))
    }
}

impl Body for skillhost_guest::BodyReader {
    fn take_error(&mut self) -> Option<skillhost_guest::HttpError> {
        skillhost_guest::BodyReader::take_error(self)
    }

    fn buffered(&mut self) -> Option<&mut dyn std::io::BufRead> {
        Some(self)
    }
}

/// The API of the connection this invocation is bound to.
pub fn bound_api() -> Api {
    match skillhost_guest::connection::info().api {
        skillhost_guest::ApiFlavour::Defender => Api::Defender,
        skillhost_guest::ApiFlavour::Graph => Api::Graph,
    }
}

/// The skill's input as JSON; the host has validated it against the declared parameters.
pub fn parse_input(input: &str) -> Result<serde_json::Value, skillhost_guest::SkillError> {
    serde_json::from_str(input)
        .map_err(|e| skillhost_guest::SkillError::Internal(format!("input is not JSON: {e}")))
}
