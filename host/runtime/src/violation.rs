//! The rules a guest can break, and the failure each one is reported as (exit 4).

use std::time::Duration;

use skillhost_contract::error::{Failure, Reason};

use crate::limits::{human_bytes, human_duration};

/// A rule the guest broke; reported as a sandbox violation (exit 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The deadline passed.
    Deadline(Duration),
    /// The guest tried to grow memory past the cap.
    Memory {
        /// The cap, bytes.
        limit: usize,
        /// What the guest asked for, bytes.
        requested: usize,
    },
    /// The wasm stack was exhausted.
    Stack,
    /// The guest held more host handles (streams, pollables, bodies) at once than the cap.
    Handles(usize),
    /// Result plus rows exceeded the output cap.
    Output(usize),
    /// A capability call was refused by policy.
    Denied(String),
    /// An HTTP call could not be paced in before the deadline (the message says how long it
    /// would have waited, for which window, and how much time was left).
    Paced(String),
}

impl Violation {
    /// The failure reported for this violation.
    pub fn into_failure(self, skill: &str) -> Failure {
        match self {
            Violation::Deadline(t) => Failure::sandbox(format!(
                "skill `{skill}` did not finish within its deadline of {}",
                human_duration(t)
            ))
            .with_hint("raise it with --timeout if the work is legitimately long")
            .with_reason(Reason::Timeout),
            Violation::Memory { limit, requested } => Failure::sandbox(format!(
                "skill `{skill}` exceeded its memory limit of {} (it asked for {})",
                human_bytes(limit),
                human_bytes(requested)
            ))
            .with_hint("raise it with --max-memory if the skill legitimately needs more"),
            Violation::Stack => Failure::sandbox(format!(
                "skill `{skill}` exhausted its stack (runaway recursion)"
            )),
            Violation::Handles(cap) => Failure::sandbox(format!(
                "skill `{skill}` held more than {cap} host handles (streams, pollables, bodies) \
                 at once"
            ))
            .with_hint(
                "the skill must drop the handles it no longer uses; this is a defect of the \
                 skill, not of its input",
            ),
            Violation::Output(cap) => Failure::sandbox(format!(
                "skill `{skill}` produced more than its output limit of {}",
                human_bytes(cap)
            )),
            Violation::Denied(why) => {
                Failure::sandbox(format!("skill `{skill}` was denied a capability: {why}"))
            }
            Violation::Paced(why) => Failure::sandbox(format!(
                "skill `{skill}` was stopped by its connection's pacing: {why}"
            ))
            .with_reason(Reason::Throttled),
        }
    }
}
