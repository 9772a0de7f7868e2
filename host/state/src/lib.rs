//! The durable store of skillhost: what outlives one invocation and is shared by every process
//! that opens the same store.
//!
//! - [`Store`]: the API, over two backends: [`sqlite`] (a file, for the processes of one machine;
//!   the default, at `$XDG_STATE_HOME/skillhost/state.db`) and [`redis`] (a Redis or Valkey
//!   server, for several machines). Where it is comes from a [`StoreUrl`] ([`url`]).
//! - Scoped key/value state ([`kv`]): a skill's keys live in its [`Scope`] ([`scope`]), which the
//!   host builds as (tenant, connection, skill id); reads return a version, and a batch of writes
//!   commits atomically, each write compare-and-set against the version read.
//! - Leases ([`lease`]): one holder at a time for a named thing (an incremental cursor), with an
//!   expiry; a commit can be made conditional on still holding one.
//! - Shared pacing ([`pacing`]): sliding-window admission per (tenant, app), decided and
//!   recorded atomically in the store.
//!
//! What the store never holds: secrets and tokens (a token at rest is a secret at rest). When
//! the store cannot be reached every operation fails with [`StoreError::Unavailable`], and work
//! that needs it must fail too: nothing here falls back to unpaced calls or to a guessed cursor.
//!
//! A run of an incremental skill, as the host drives it:
//!
//! ```no_run
//! # async fn run(store: &skillhost_state::Store) -> Result<(), skillhost_state::StoreError> {
//! use std::time::Duration;
//! use skillhost_state::{Scope, Write};
//!
//! let scope = Scope::new("acme", "acme-defender", "list_microsoft_defender_incidents")?;
//! // "cursor in use" is `StoreError::Held`.
//! let lease = store.acquire_lease(&scope, "cursor:default", "host-1:4711:run-9", Duration::from_secs(60)).await?;
//! let read = store.get(&scope, "cursor:default").await?;
//! // ... the run, renewing the lease every 20 s with `store.renew_lease(&lease, ...)` ...
//! let expected = read.as_ref().map(|v| v.version);
//! store.commit_holding(&lease, &[Write::set("cursor:default", expected, b"2026-11-27T08:00:00Z".to_vec())]).await?;
//! store.release_lease(lease).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod error;
pub mod kv;
pub mod lease;
pub mod pacing;
pub mod redis;
pub mod scope;
pub mod sqlite;
mod store;
pub mod url;

pub use error::StoreError;
pub use kv::{
    Entry, MAX_KEY_BYTES, MAX_KEYS_PER_SCOPE, MAX_VALUE_BYTES, MAX_WRITES_PER_COMMIT, Reset,
    ScopeSummary, Versioned, Write, WriteOp, check_key, check_write,
};
pub use lease::{Lease, LeaseInfo, MAX_LEASE_NAME_BYTES, MAX_LEASE_TTL};
pub use pacing::{Admission, MAX_PACING_KEY_BYTES, PacingWindows, Window};
pub use scope::{MAX_SCOPE_PART_BYTES, Scope};
pub use store::Store;
pub use url::StoreUrl;
