//! skillhost: runs security-integration skills as sandboxed WebAssembly components.
//!
//! The data path of one invocation, module by module:
//! [`cli`] parses the command → [`registry`] finds the component (manifests and compiled code
//! from [`compile_cache`]) → [`input`] validates the parameters against its [`manifest`] →
//! [`sandbox`] instantiates it in a fresh store with its limits → the guest calls the imports of
//! [`capabilities`] → `http.send` goes through [`outbound`]: [`egress`] policy, [`pacing`],
//! [`auth`] token, request, retries, [`audit`] → rows stream out through [`output`].
//!
//! [`connections`] and [`clouds`] read the config; [`simulator`] is the built-in stand-in for
//! Entra ID and the incidents APIs; [`probe`] is `connections test`; [`demo`] is the main job on
//! the simulator.

#![warn(missing_docs)]

pub mod audit;
pub mod auth;
pub mod bindings;
pub mod capabilities;
pub mod cli;
pub mod clouds;
pub mod compile_cache;
pub mod connections;
pub mod demo;
pub mod egress;
pub mod error;
pub mod input;
pub mod manifest;
pub mod outbound;
pub mod output;
pub mod pacing;
pub mod probe;
pub mod registry;
pub mod sandbox;
pub mod simulator;
