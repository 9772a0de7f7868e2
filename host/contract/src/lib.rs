//! The contract between the host and its skills, in the host's own terms.
//!
//! This crate owns three things, and nothing here does I/O:
//!
//! - [`types`] and [`manifest`]: host-neutral forms of everything that crosses the wasm
//!   boundary (requests, errors, what a skill declares). The rest of the host works with these
//!   and never with generated bindings, so a new contract version changes no code outside this
//!   crate but its own bindings module.
//! - [`imports`]: the one trait ([`imports::SkillImports`]) a host implements to serve every
//!   contract version's imports.
//! - [`versions`] and one module per contract version ([`v0_1`], [`v0_2`]): the generated bindings of
//!   `wit/skill@X.Y.Z/`, converted to and from the neutral types, and the enum that dispatches
//!   over the versions a component may be built against.
//!
//! [`error`] holds the failure kinds every layer reports in (exit codes for the CLI).

#![warn(missing_docs)]

mod bindings;
pub mod error;
pub mod imports;
pub mod manifest;
pub mod text;
pub mod types;
pub mod v0_1;
pub mod v0_2;
pub mod versions;
