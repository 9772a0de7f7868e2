//! One module per command of the `skillhost` binary.

pub mod connections;
#[cfg(feature = "simulator")]
pub mod demo;
pub mod new;
pub mod run;
#[cfg(feature = "simulator")]
pub mod simulate;
pub mod skills;
pub mod state;
