//! The runtime: where skills are found, vetted, compiled, and run in a sandbox.
//!
//! The data path of one invocation, module by module: [`registry`] finds the component
//! (manifests and compiled code from [`compile_cache`]) → [`input`] validates the parameters
//! against its manifest → [`sandbox`] instantiates it in a fresh store ([`invocation`]) under its
//! [`limits`] ([`memory`] cap, deadline; in the CLI, a [`watchdog`]) → the guest calls the imports of [`capabilities`], one
//! module per capability → a broken rule becomes a [`violation`], a skill's own error a failure
//! with guidance ([`skill_errors`]). [`host`] is that sequence in one call.
//!
//! This crate depends on `skillhost-contract` (neutral types, bindings) and `skillhost-upstream`
//! (what `http.send` reaches); nothing here knows a provider's endpoints or a command line.

#![warn(missing_docs)]

pub mod capabilities;
pub mod compile_cache;
pub mod host;
pub mod input;
pub mod invocation;
pub mod limits;
pub mod memory;
pub mod output;
pub mod registry;
pub mod sandbox;
pub mod skill_errors;
pub mod violation;
pub mod watchdog;
