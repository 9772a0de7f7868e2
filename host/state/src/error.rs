//! What can go wrong with the store, each case saying what the caller or operator does next.

use std::time::Duration;

/// Every failure of a [`crate::Store`] operation.
///
/// Callers decide by the variant: [`StoreError::Unavailable`] means the store could not answer
/// at all, and work that needs it must fail (a run is never paced from a guess or started from a
/// guessed cursor); [`StoreError::Conflict`], [`StoreError::Held`] and [`StoreError::LeaseLost`]
/// are the normal outcomes of concurrent use; [`StoreError::Limit`] and [`StoreError::Invalid`]
/// are a caller's mistake, refused before anything was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or could not complete the operation (connection refused,
    /// timeout, a file that cannot be created or written, a database locked past the busy
    /// timeout). The message names the store (never a secret) and the cause.
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
    /// A compare-and-set failed: `key` did not hold the version the write expected (it changed,
    /// appeared or disappeared since it was read). Nothing of the batch was applied.
    #[error(
        "state key `{key}` changed since it was read (another run wrote it); nothing was written"
    )]
    Conflict {
        /// The first key (in the batch's order) whose version did not match.
        key: String,
    },
    /// A cap was exceeded; the message names the cap and its value. Nothing was written.
    #[error("{0}")]
    Limit(String),
    /// A lease is held by another holder and has not expired.
    #[error("`{name}` is in use by {holder} for at most {}", seconds(*expires_in))]
    Held {
        /// The lease's name.
        name: String,
        /// The holder id of whoever holds it.
        holder: String,
        /// How long until it expires unless renewed.
        expires_in: Duration,
    },
    /// The lease is no longer held by the caller: it expired (and may have been taken by
    /// another holder) or was released. A commit conditional on it applied nothing.
    #[error("the lease on `{name}` was lost (it expired or was taken); nothing was written")]
    LeaseLost {
        /// The lease's name.
        name: String,
    },
    /// The request itself is malformed (an empty or oversized name, a key twice in one batch,
    /// a zero time-to-live); the message says which and what is allowed.
    #[error("{0}")]
    Invalid(String),
    /// The store holds data this version of skillhost does not understand (a newer schema, or
    /// keys of ours overwritten by something else).
    #[error("the state store holds data this skillhost cannot read: {0}")]
    Corrupt(String),
}

/// A duration as seconds with one decimal, for messages.
pub(crate) fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
