//! `log.log`: a skill's diagnostics, to the host's log (stderr), never to stdout.
//!
//! Threat: a guest controls the text; one message is truncated to [`LOG_MESSAGE_CAP`] bytes.

use skillhost_contract::types::LogLevel;

/// The most of one log message that is kept.
pub const LOG_MESSAGE_CAP: usize = 4096;

/// Writes `message` of `skill` at `level`.
pub fn log(skill: &str, level: LogLevel, message: &str) {
    let message = truncate(message, LOG_MESSAGE_CAP);
    match level {
        LogLevel::Trace => tracing::trace!(target: "skill", skill, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "skill", skill, "{message}"),
        LogLevel::Info => tracing::info!(target: "skill", skill, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "skill", skill, "{message}"),
        LogLevel::Error => tracing::error!(target: "skill", skill, "{message}"),
    }
}

/// The first `cap` bytes of `text`, cut at a character boundary.
pub fn truncate(text: &str, cap: usize) -> &str {
    if text.len() <= cap {
        return text;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
