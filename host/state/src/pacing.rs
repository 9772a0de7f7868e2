//! Shared pacing: one sliding-window call log per pacing key, kept in the store so that every
//! process (and machine) sharing the store shares each (tenant, app)'s budget.
//!
//! Threat: several processes each pacing on their own would together exceed the service's rate
//! limit and earn 429s for everyone of that tenant. [`crate::Store::admit`] decides and records a
//! call in one atomic step (an `IMMEDIATE` transaction in SQLite, a Lua script in Redis), so
//! concurrent admitters can never overfill a window. One clock decides: Redis's own (`TIME`
//! inside the script) for a Redis store, the machine's wall clock for SQLite (one machine).
//!
//! The decision is the one `skillhost-upstream`'s in-memory `Pacer` makes: a call fits when
//! fewer than `per_hour` calls happened in the last `hour` and fewer than `per_minute` in the last
//! `minute` (a call `window` or more ago is out of it). Otherwise the answer is how long until
//! both windows have room, and the window that waits longer (the hour on a tie). The caller
//! lengthens the windows by its safety margin before calling; the store applies them as given.

use std::time::Duration;

use crate::error::StoreError;

/// The longest pacing key, in bytes.
pub const MAX_PACING_KEY_BYTES: usize = 512;

/// The two sliding windows of one pacing key, lengths as given (already time-scaled and with
/// the caller's margin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingWindows {
    /// The short window ("a minute").
    pub minute: Duration,
    /// Calls allowed in it, at least 1.
    pub per_minute: u32,
    /// The long window ("an hour"); at least as long as `minute`.
    pub hour: Duration,
    /// Calls allowed in it, at least 1.
    pub per_hour: u32,
}

/// Which window made a call wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The short window.
    Minute,
    /// The long window.
    Hour,
}

/// What [`crate::Store::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The call fits and was recorded: send it now.
    Admitted,
    /// The call does not fit and was not recorded; it would fit after `wait` (unless others
    /// take the room first: ask again then).
    Wait {
        /// How long until both windows have room.
        wait: Duration,
        /// The window that waits longer.
        window: Window,
    },
}

impl PacingWindows {
    /// The windows in microseconds, refused when a limit is 0, a window is shorter than 1 ms or
    /// the hour is shorter than the minute.
    pub(crate) fn micros(&self) -> Result<(u64, u64), StoreError> {
        let minute = self.minute.as_micros();
        let hour = self.hour.as_micros();
        if self.per_minute == 0 || self.per_hour == 0 {
            return Err(StoreError::Invalid(
                "pacing limits must allow at least 1 call per window".to_string(),
            ));
        }
        if minute < 1000 || hour < minute {
            return Err(StoreError::Invalid(format!(
                "pacing windows must be at least 1 ms, the hour no shorter than the minute \
                 (got {minute} µs and {hour} µs)"
            )));
        }
        // A year in µs is 3.2e13: far inside u64 and Lua's exact integers (2^53).
        let cap = 366 * 24 * 3600 * 1_000_000u128;
        if hour > cap {
            return Err(StoreError::Invalid(
                "a pacing window is longer than a year".to_string(),
            ));
        }
        Ok((minute as u64, hour as u64))
    }
}

/// The decision from the window counts, shared by both backends: `total` calls in the hour,
/// `in_minute` of them in the minute; `nth_oldest(i)` is the time (µs) of the `i`-th oldest call
/// of the hour (0-based), asked only for a window that is full. `None` means admit.
pub(crate) fn decide(
    now: i64,
    (minute, hour): (u64, u64),
    windows: &PacingWindows,
    total: u64,
    in_minute: u64,
    mut nth_oldest: impl FnMut(u64) -> Result<i64, StoreError>,
) -> Result<Option<Admission>, StoreError> {
    // The call that must leave a full window is the one `limit` places from its newest end;
    // the minute's calls are the hour's newest, so both index the hour's log the same way.
    let mut wait_for = |count: u64, limit: u32, length: u64| -> Result<u64, StoreError> {
        let limit = u64::from(limit);
        if count < limit {
            return Ok(0);
        }
        let at = nth_oldest(total - limit)?;
        let free_at = at.saturating_add(length as i64);
        // A call time ahead of `now` (the clock stepped back) waits at most one window.
        Ok((free_at.saturating_sub(now)).clamp(1, length as i64) as u64)
    };
    let hour_wait = wait_for(total, windows.per_hour, hour)?;
    let minute_wait = wait_for(in_minute, windows.per_minute, minute)?;
    Ok(match (hour_wait, minute_wait) {
        (0, 0) => None,
        (h, m) if h >= m => Some(Admission::Wait {
            wait: Duration::from_micros(h),
            window: Window::Hour,
        }),
        (_, m) => Some(Admission::Wait {
            wait: Duration::from_micros(m),
            window: Window::Minute,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: PacingWindows = PacingWindows {
        minute: Duration::from_millis(60),
        per_minute: 2,
        hour: Duration::from_millis(600),
        per_hour: 3,
    };

    fn run(now: i64, log: &[i64]) -> Option<Admission> {
        let (minute, hour) = W.micros().unwrap();
        let live: Vec<i64> = log
            .iter()
            .copied()
            .filter(|t| now - t < hour as i64)
            .collect();
        let in_minute = live.iter().filter(|t| now - **t < minute as i64).count() as u64;
        decide(now, (minute, hour), &W, live.len() as u64, in_minute, |i| {
            Ok(live[i as usize])
        })
        .unwrap()
    }

    #[test]
    fn a_call_fits_while_both_windows_have_room() {
        assert_eq!(run(1_000_000, &[]), None);
        assert_eq!(run(1_000_000, &[990_000]), None);
    }

    #[test]
    fn a_full_minute_waits_for_its_oldest_call_to_leave() {
        assert_eq!(
            run(1_000_000, &[950_000, 990_000]),
            Some(Admission::Wait {
                wait: Duration::from_micros(10_000),
                window: Window::Minute
            })
        );
    }

    #[test]
    fn a_call_exactly_one_window_old_is_out_of_it() {
        assert_eq!(run(1_000_000, &[940_000, 990_000]), None);
    }

    #[test]
    fn a_full_hour_waits_for_its_oldest_call_and_wins_a_longer_wait() {
        assert_eq!(
            run(1_000_000, &[500_000, 700_000, 990_000]),
            Some(Admission::Wait {
                wait: Duration::from_micros(100_000),
                window: Window::Hour
            })
        );
    }

    #[test]
    fn zero_limits_and_inverted_windows_are_invalid() {
        let mut w = W;
        w.per_minute = 0;
        assert!(matches!(w.micros(), Err(StoreError::Invalid(_))));
        let mut w = W;
        w.hour = Duration::from_millis(10);
        assert!(matches!(w.micros(), Err(StoreError::Invalid(_))));
    }
}
