//! The imports a skill is granted, one module per capability.
//!
//! Threat: these functions are the whole of a guest's reach outside its memory, and everything
//! they receive is guest-controlled. `emit` is bounded (output cap, rows must be JSON objects),
//! `log` is truncated and never reaches stdout, `connection.info` returns no secret, and
//! `http.send` goes through the egress policy and authentication of `skillhost-upstream`. An
//! invocation without a connection has no HTTP at all, and no state; `state` is scoped by the
//! host and staged until the run's output was delivered. Guest stdout and stderr are kept in
//! memory up to a cap.
//!
//! Each capability owns its per-invocation state; the store's data composes them
//! (`InvocationState` in the `invocation` module), so adding a capability touches only its
//! module and that composition.

pub mod emit;
pub mod grant;
pub mod http;
pub mod log;
pub mod state;
pub mod stdio;

pub use emit::{CollectRows, RefuseRows, RowSink};
pub use grant::Capabilities;
pub use stdio::GuestOutput;
