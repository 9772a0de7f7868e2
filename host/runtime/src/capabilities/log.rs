//! `log.log`: a skill's diagnostics, to the host's log (stderr), never to stdout.
//!
//! Threat: a guest controls the text and how much of it there is. One message is truncated to
//! [`LOG_MESSAGE_CAP`] bytes and its control characters, line breaks and bidirectional overrides
//! are escaped (a message cannot forge a line of the host's own); the invocation's messages
//! together are capped (`SandboxLimits::max_log`), after which they are counted, not written, and
//! one line says how many bytes were dropped.

use skillhost_contract::text::escape;
use skillhost_contract::types::LogLevel;

/// The most of one log message that is kept.
pub const LOG_MESSAGE_CAP: usize = 4096;

/// The log capability of one invocation.
pub struct LogCapability {
    cap: usize,
    written: usize,
    dropped: usize,
}

impl LogCapability {
    /// At most `cap` bytes of messages for the whole invocation.
    pub fn new(cap: usize) -> Self {
        LogCapability {
            cap,
            written: 0,
            dropped: 0,
        }
    }

    /// Writes `message` of `skill` at `level`, or counts it once the cap is reached.
    pub fn log(&mut self, skill: &str, level: LogLevel, message: &str) {
        let message = truncate(message, LOG_MESSAGE_CAP);
        if self.written.saturating_add(message.len()) > self.cap {
            self.dropped = self.dropped.saturating_add(message.len());
            return;
        }
        self.written += message.len();
        let message = escape(message);
        match level {
            LogLevel::Trace => tracing::trace!(target: "skill", skill, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "skill", skill, "{message}"),
            LogLevel::Info => tracing::info!(target: "skill", skill, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "skill", skill, "{message}"),
            LogLevel::Error => tracing::error!(target: "skill", skill, "{message}"),
        }
    }

    /// Says how much was dropped, if anything was (once, at the end of the invocation).
    pub fn finish(&mut self, skill: &str) {
        if self.dropped > 0 {
            tracing::warn!(
                target: "skill",
                skill,
                "log truncated: {} bytes dropped after the invocation's log limit of {} bytes",
                self.dropped,
                self.cap
            );
            self.dropped = 0;
        }
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
