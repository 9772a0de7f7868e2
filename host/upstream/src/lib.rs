//! The upstream side of the host: everything between a skill's request and the tenant's API.
//!
//! - [`connections`]: the config file's connections and where their secrets live.
//! - [`providers`]: each provider's knowledge in one module (today [`providers::microsoft`]:
//!   clouds, endpoints, scopes, permissions, Entra ID error explanations, the troubleshooting
//!   table).
//! - [`outbound`]: one skill request, resolved by the [`egress`] policy, paced by [`pacing`],
//!   authenticated by [`auth`], sent by the connection's [`client`], retried by [`retry`],
//!   recorded by [`audit`]; streamed bodies in [`body`].
//!
//! Nothing here knows about wasm: requests and errors are the neutral types of
//! `skillhost-contract`, so the runtime and a future service mode share this crate as it is.

#![warn(missing_docs)]

pub mod audit;
pub mod auth;
pub mod body;
pub mod client;
pub mod connections;
pub mod egress;
pub mod outbound;
pub mod pacing;
pub mod providers;
pub mod retry;
