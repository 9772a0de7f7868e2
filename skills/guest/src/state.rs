//! What a skill keeps from one run to the next (contract 0.2.0, feature `state`): the host's
//! `state` import, and its errors as the skill errors they mean.
//!
//! Reads see what completed runs committed; writes are staged and applied together, each
//! compare-and-set against the version read, only once the run completed and its output was
//! delivered. A run that takes a [`lock`] and finds it held gets `in-use`, which
//! [`state_error`] turns into the `conflict` error (exit 3, HTTP 409).
//!
//! ```ignore
//! use skillhost_guest::state;
//!
//! state::lock("cursor:default").map_err(state::state_error)?;
//! let (count, version) = match state::get("count").map_err(state::state_error)? {
//!     Some(entry) => (String::from_utf8_lossy(&entry.value).parse().unwrap_or(0), Some(entry.version)),
//!     None => (0u64, None),
//! };
//! state::set("count", (count + 1).to_string().as_bytes(), version).map_err(state::state_error)?;
//! ```

use crate::SkillError;
pub use crate::bindings::skillhost::skill::state::{Entry, StateError, delete, get, lock, set};

/// The skill error a failed `state` call means: `in-use` is a `conflict` (another run holds
/// the lock); a refused key or value and a cap are the skill's bug (`internal`); a store that
/// cannot be reached stops the run (`internal`, saying so: the host's log has the cause).
pub fn state_error(error: StateError) -> SkillError {
    match error {
        StateError::InUse(message) => SkillError::Conflict(message),
        StateError::Limit(message) => SkillError::Internal(format!("state limit: {message}")),
        StateError::Invalid(message) => {
            SkillError::Internal(format!("state call refused: {message}"))
        }
        StateError::Unavailable(message) => {
            SkillError::Internal(format!("state unavailable: {message}"))
        }
    }
}
