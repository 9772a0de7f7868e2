//! The deadline of a guest whose code has no interruption checks
//! ([`Preemption::Watchdog`](crate::sandbox::Preemption::Watchdog)): a thread that waits past
//! the deadline and, if the guest is still running then, ends the whole process through the
//! caller's report.
//!
//! Threat: a skill that computes without end (or past its deadline without calling the host).
//! Compiled without epoch checks, its code cannot be stopped from outside; only the process
//! that runs it can end. So this is for a process that runs one invocation at a time and exists
//! for it (the CLI): it reports the same deadline failure a stopped guest gets and exits with
//! its code. A guest blocked in a host call is still stopped at the deadline itself by the
//! async timeout around the call, and disarms its watchdog before the grace has passed.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use skillhost_contract::error::Failure;

/// How long past its deadline a guest is given before the process ends: the async timeout
/// stops a guest blocked in a host call at the deadline itself, and its invocation must get to
/// disarm first.
pub const GRACE: Duration = Duration::from_millis(250);

/// Reports a failure and ends the process (it must not return).
pub type Report = fn(Failure) -> !;

/// Where a watch stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Armed,
    Disarmed,
}

/// A watch on one guest call: dropping it (once the call returned) disarms it.
pub struct Armed {
    shared: Arc<(Mutex<Phase>, Condvar)>,
}

/// Starts watching a call that must end within `deadline`: past `deadline` plus [`GRACE`],
/// unless disarmed by then, `report(failure)` ends the process. An error if the watching thread
/// cannot be started (the call must then not be made).
pub fn arm(deadline: Duration, report: Report, failure: Failure) -> std::io::Result<Armed> {
    let shared = Arc::new((Mutex::new(Phase::Armed), Condvar::new()));
    let watched = shared.clone();
    let ends = Instant::now() + deadline + GRACE;
    std::thread::Builder::new()
        .name("skillhost-watchdog".into())
        .spawn(move || {
            let (phase, wake) = &*watched;
            let mut now = phase.lock().unwrap_or_else(PoisonError::into_inner);
            while *now == Phase::Armed {
                let left = ends.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    // Reported with the lock held: a call that returns now blocks in its
                    // disarm, and its result is not delivered after the failure.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                        report(failure)
                    }));
                    // Nothing else would end a guest that computes: a report that panicked
                    // still ends the process.
                    std::process::abort();
                }
                now = wake
                    .wait_timeout(now, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        })?;
    Ok(Armed { shared })
}

impl Drop for Armed {
    fn drop(&mut self) {
        let (phase, wake) = &*self.shared;
        *phase.lock().unwrap_or_else(PoisonError::into_inner) = Phase::Disarmed;
        wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Where the test reports go (one channel per test, named by the failure's message).
    static REPORTS: Mutex<Vec<(String, mpsc::Sender<()>)>> = Mutex::new(Vec::new());

    /// A report that, instead of ending the process, tells the test whose failure it got and
    /// parks its thread for good.
    fn park(failure: Failure) -> ! {
        let message = failure.message.clone();
        if let Ok(reports) = REPORTS.lock() {
            for (name, sender) in reports.iter() {
                if *name == message {
                    let _ = sender.send(());
                }
            }
        }
        loop {
            std::thread::park();
        }
    }

    fn listen(name: &str) -> mpsc::Receiver<()> {
        let (sender, receiver) = mpsc::channel();
        REPORTS.lock().unwrap().push((name.to_string(), sender));
        receiver
    }

    #[test]
    fn a_call_still_running_past_its_deadline_and_the_grace_is_reported() {
        let reported = listen("late");
        let started = Instant::now();
        let armed = arm(Duration::from_millis(50), park, Failure::other("late")).unwrap();
        assert_eq!(reported.recv_timeout(Duration::from_secs(30)), Ok(()));
        assert!(started.elapsed() >= Duration::from_millis(50) + GRACE);
        // Disarming now would wait for good: the report holds the watch (the process ends).
        std::mem::forget(armed);
    }

    #[test]
    fn a_call_that_returns_once_reported_does_not_get_past_its_disarm() {
        let reported = listen("reported first");
        let armed = arm(Duration::ZERO, park, Failure::other("reported first")).unwrap();
        assert_eq!(reported.recv_timeout(Duration::from_secs(30)), Ok(()));
        let returned = std::thread::spawn(move || drop(armed));
        std::thread::sleep(GRACE);
        assert!(!returned.is_finished());
    }

    #[test]
    fn a_call_that_returned_in_time_is_never_reported() {
        let reported = listen("in time");
        let armed = arm(Duration::from_millis(50), park, Failure::other("in time")).unwrap();
        drop(armed);
        assert_eq!(
            reported.recv_timeout(Duration::from_millis(50) + GRACE * 3),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
    }
}
