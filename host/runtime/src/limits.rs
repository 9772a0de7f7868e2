//! The limits of one invocation, and how sizes and durations are read and written for people.

use std::time::Duration;

/// Per-invocation limits.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Largest linear memory a guest may grow to, in bytes.
    pub max_memory: usize,
    /// Wall-clock time an invocation may take, host calls included.
    pub timeout: Duration,
    /// Largest result plus emitted rows, in bytes; the host's output stops there too.
    pub max_output: usize,
    /// Most bytes of log messages kept per invocation; the rest is counted, not written.
    pub max_log: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            max_memory: 64 << 20,
            timeout: Duration::from_secs(60),
            max_output: 256 << 20,
            max_log: 4 << 20,
        }
    }
}

/// `64 MiB`, `1.5 KiB`, `12 bytes`.
pub fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

/// `60 s`, `250 ms`.
pub fn human_duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Parses `64MiB`, `512M`, `1G`, `65536` into bytes.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size; use a number with K, M or G, such as 64M"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit; use K, M or G, such as 64M"
            ));
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses `60s`, `500ms`, `2m`, `90` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        format!("{text:?} is not a duration; use a number with ms, s or m, such as 30s")
    })?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit; use ms, s or m, such as 30s"
            ));
        }
    };
    if d > Duration::from_secs(24 * 3600) {
        return Err(format!(
            "{text:?} is longer than a day, the longest an invocation may run"
        ));
    }
    if d.is_zero() {
        return Err(
            "a timeout of zero would stop every skill at once; give a positive duration".into(),
        );
    }
    Ok(d)
}
