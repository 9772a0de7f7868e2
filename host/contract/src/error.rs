//! The failures a command can end in, and the exit code and guidance each one gets.
//!
//! Exit codes are part of the CLI's stable interface: 0 ok, 2 invalid input or usage, 3 skill or
//! upstream error, 4 sandbox violation (a limit hit or a capability denied), 1 anything else.

use std::fmt;

/// The process exit codes of the `skillhost` CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// Anything not covered below (I/O errors, bugs).
    Other = 1,
    /// The caller's input or command line is wrong.
    Usage = 2,
    /// The skill or the upstream service failed.
    Skill = 3,
    /// The sandbox stopped the skill: a limit was hit or a capability was denied.
    Sandbox = 4,
}

/// What kind of failure it is, finer than the exit code: what `skillhost serve` answers as the
/// error's `code` (and its HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No or a wrong API key.
    Unauthenticated,
    /// The caller may not use what it named.
    Forbidden,
    /// No such skill, connection, or upstream object.
    NotFound,
    /// The input or request is wrong.
    InvalidInput,
    /// The work conflicts with work in progress.
    Conflict,
    /// Over a quota or a rate limit; try again later.
    Throttled,
    /// The upstream service failed.
    Upstream,
    /// The sandbox stopped the skill.
    Sandbox,
    /// A deadline passed.
    Timeout,
    /// The host cannot take the work now (draining, a store down).
    Unavailable,
    /// Anything else.
    Internal,
}

impl Reason {
    /// The code's name in error answers, such as `invalid_input`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unauthenticated => "unauthenticated",
            Reason::Forbidden => "forbidden",
            Reason::NotFound => "not_found",
            Reason::InvalidInput => "invalid_input",
            Reason::Conflict => "conflict",
            Reason::Throttled => "throttled",
            Reason::Upstream => "upstream",
            Reason::Sandbox => "sandbox",
            Reason::Timeout => "timeout",
            Reason::Unavailable => "unavailable",
            Reason::Internal => "internal",
        }
    }

    /// The reason a failure of exit code `code` has unless it says otherwise.
    pub fn of(code: ExitCode) -> Self {
        match code {
            ExitCode::Ok | ExitCode::Other => Reason::Internal,
            ExitCode::Usage => Reason::InvalidInput,
            ExitCode::Skill => Reason::Upstream,
            ExitCode::Sandbox => Reason::Sandbox,
        }
    }
}

/// A failure with a category, a one-line message and, where there is one, what to do next.
#[derive(Debug)]
pub struct Failure {
    /// Which exit code the failure maps to.
    pub code: ExitCode,
    /// Its finer kind (defaults from `code`).
    pub reason: Reason,
    /// What went wrong, in one line.
    pub message: String,
    /// What the operator should do about it.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure of category `code`.
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Failure {
            code,
            reason: Reason::of(code),
            message: message.into(),
            hint: None,
        }
    }

    /// Invalid input or usage (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Usage, message)
    }

    /// A skill or upstream failure (exit 3).
    pub fn skill(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Skill, message)
    }

    /// A sandbox violation (exit 4).
    pub fn sandbox(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Sandbox, message)
    }

    /// Anything else (exit 1).
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Other, message)
    }

    /// Sets the finer kind of the failure.
    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = reason;
        self
    }

    /// Adds what the operator should do next.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl Failure {
    /// The failure as a person reads it: message and hint with every control character, line
    /// break and bidirectional override escaped (both may quote a skill or an upstream).
    pub fn to_safe_string(&self) -> String {
        let mut text = crate::text::escape(&self.message).into_owned();
        if let Some(hint) = &self.hint {
            text.push_str("\n  hint: ");
            text.push_str(&crate::text::escape(hint));
        }
        text
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::other(format!("{error:#}"))
    }
}
