//! Leases: one holder at a time for a named thing in a scope (an incremental cursor), with an
//! expiry so that a holder that died blocks it for a bounded time only.
//!
//! Threat: two runs on one cursor at once, which would deliver the same incidents twice, and a
//! killed run blocking its cursor forever. A lease is held by one holder id until it expires or
//! is released; after expiry any holder may take it. Each acquisition gets a fencing token from
//! the store's version counter, so a holder that lost its lease cannot renew, release or commit
//! under it, even if a new holder happens to use the same holder id.

use std::time::Duration;

use crate::error::StoreError;
use crate::scope::{Scope, check_name};

/// The longest lease name and holder id, in bytes.
pub const MAX_LEASE_NAME_BYTES: usize = 256;
/// The longest time-to-live of a lease (one day). Holders renew well before expiry; a long TTL
/// only lengthens how long a killed holder blocks.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(24 * 3600);

/// A lease the caller holds (until it expires, unless renewed). Pass it to
/// [`crate::Store::renew_lease`], [`crate::Store::commit_holding`] and
/// [`crate::Store::release_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub(crate) scope: Scope,
    pub(crate) name: String,
    pub(crate) holder: String,
    pub(crate) token: u64,
}

impl Lease {
    /// The scope the lease belongs to.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The lease's name (for a cursor, the name the pipeline gave it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The holder id it was acquired with.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The fencing token of this acquisition: distinct for every acquisition in the store.
    pub fn token(&self) -> u64 {
        self.token
    }
}

/// A lease in force, as [`crate::Store::list_leases`] shows it to an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease's name.
    pub name: String,
    /// Who holds it.
    pub holder: String,
    /// How long until it expires unless renewed.
    pub expires_in: Duration,
}

/// Refuses an invalid name, holder or time-to-live, saying why. Returns the TTL in ms.
pub(crate) fn check_lease(name: &str, holder: &str, ttl: Duration) -> Result<u64, StoreError> {
    check_name("lease name", name, MAX_LEASE_NAME_BYTES)?;
    check_name("lease holder id", holder, MAX_LEASE_NAME_BYTES)?;
    if ttl > MAX_LEASE_TTL {
        return Err(StoreError::Limit(format!(
            "a lease's time-to-live is {} s; the limit is {} s",
            ttl.as_secs(),
            MAX_LEASE_TTL.as_secs()
        )));
    }
    let ms = ttl.as_millis() as u64;
    if ms == 0 {
        return Err(StoreError::Invalid(
            "a lease's time-to-live must be at least 1 ms".to_string(),
        ));
    }
    Ok(ms)
}
