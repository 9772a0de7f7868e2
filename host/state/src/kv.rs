//! The key/value side of the store: versioned values, compare-and-set writes, and their caps.
//!
//! Threat: a skill filling the store (the disk of every process sharing it, or Redis's memory)
//! or making the operator's `state show` unreadable. Values, keys per scope, key length and
//! writes per batch are capped by the constants below, checked before anything is written;
//! keys-per-scope is checked inside the same atomic step that writes, so concurrent batches
//! cannot add up past it.

use std::collections::HashSet;

use crate::error::StoreError;
use crate::scope::{Scope, check_name};

/// The largest value, in bytes (64 KiB): a cursor or a small de-duplication window fits many
/// times over.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The most keys one scope may hold (256); with [`MAX_VALUE_BYTES`] a scope is at most 16 MiB.
pub const MAX_KEYS_PER_SCOPE: usize = 256;
/// The longest key, in bytes (256).
pub const MAX_KEY_BYTES: usize = 256;
/// The most writes one [`crate::Store::commit`] may carry (as many as a scope may hold keys).
pub const MAX_WRITES_PER_COMMIT: usize = MAX_KEYS_PER_SCOPE;

/// A value and the version it was written at.
///
/// Versions come from one counter of the whole store, so a version is never reused, not even
/// by a key that was deleted and written again (a compare-and-set against a version read
/// before the deletion fails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The value's bytes.
    pub value: Vec<u8>,
    /// Its version, at least 1.
    pub version: u64,
}

/// What one write does to its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Store this value (a new version).
    Set(Vec<u8>),
    /// Remove the key (deleting a key that does not exist is allowed when expected so).
    Delete,
}

/// One compare-and-set write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The key, 1 to [`MAX_KEY_BYTES`] bytes without control characters.
    pub key: String,
    /// The version the writer read: `Some(v)` means the key must still be at version `v`,
    /// `None` that it must not exist.
    pub expected: Option<u64>,
    /// What to do.
    pub op: WriteOp,
}

impl Write {
    /// Sets `key` to `value` if it is still at `expected` (`None`: still absent).
    pub fn set(key: impl Into<String>, expected: Option<u64>, value: impl Into<Vec<u8>>) -> Write {
        Write {
            key: key.into(),
            expected,
            op: WriteOp::Set(value.into()),
        }
    }

    /// Deletes `key` if it is still at `expected` (`None`: still absent).
    pub fn delete(key: impl Into<String>, expected: Option<u64>) -> Write {
        Write {
            key: key.into(),
            expected,
            op: WriteOp::Delete,
        }
    }
}

/// One key of a scope, as [`crate::Store::list`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Its value and version.
    pub value: Versioned,
}

/// A scope that holds at least one key, as [`crate::Store::list_scopes`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSummary {
    /// The scope.
    pub scope: Scope,
    /// How many keys it holds.
    pub keys: usize,
}

/// What [`crate::Store::reset`] removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reset {
    /// One key.
    Key(String),
    /// Every key of the scope (its leases stay: a running holder keeps its lease, and its
    /// commit then fails with a conflict instead of resurrecting the keys).
    All,
}

/// Refuses an invalid key, saying why: [`StoreError::Invalid`] (empty, a control character) or
/// [`StoreError::Limit`] (over [`MAX_KEY_BYTES`]).
pub fn check_key(key: &str) -> Result<(), StoreError> {
    check_name("state key", key, MAX_KEY_BYTES)
}

/// Refuses one write the store would refuse whatever it holds (an invalid key, version 0
/// expected, a value over [`MAX_VALUE_BYTES`]), so that a caller can refuse it when it is
/// made rather than at the commit.
pub fn check_write(write: &Write) -> Result<(), StoreError> {
    check_key(&write.key)?;
    if write.expected == Some(0) {
        return Err(StoreError::Invalid(format!(
            "state key `{}` is expected at version 0, which no value has; expect `None` \
             for a key that must not exist",
            write.key
        )));
    }
    if let WriteOp::Set(value) = &write.op
        && value.len() > MAX_VALUE_BYTES
    {
        return Err(StoreError::Limit(format!(
            "the value of state key `{}` is {} bytes; the limit is {MAX_VALUE_BYTES} bytes",
            write.key,
            value.len()
        )));
    }
    Ok(())
}

/// Refuses a batch with an invalid or repeated key, an oversized value or too many writes,
/// before the store is asked.
pub(crate) fn check_batch(writes: &[Write]) -> Result<(), StoreError> {
    if writes.len() > MAX_WRITES_PER_COMMIT {
        return Err(StoreError::Limit(format!(
            "a commit carries {} writes; the limit is {MAX_WRITES_PER_COMMIT}",
            writes.len()
        )));
    }
    let mut seen = HashSet::with_capacity(writes.len());
    for write in writes {
        check_write(write)?;
        if !seen.insert(write.key.as_str()) {
            return Err(StoreError::Invalid(format!(
                "state key `{}` is written twice in one commit; write each key once",
                write.key
            )));
        }
    }
    Ok(())
}

/// The error of a batch that would leave `count` keys in its scope.
pub(crate) fn too_many_keys(count: u64) -> StoreError {
    StoreError::Limit(format!(
        "the commit would leave {count} keys in the scope; the limit is {MAX_KEYS_PER_SCOPE} \
         keys per scope (delete keys that are no longer needed)"
    ))
}
