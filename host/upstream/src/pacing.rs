//! Client-side pacing of API calls per (tenant, app), under the service's published limits.
//!
//! The Defender incidents API allows 50 calls a minute and 1,500 an hour per app and tenant;
//! calling faster only earns 429s. A [`Pacer`] holds the recent call times and makes a caller
//! wait until a call fits both windows, or gives up when that would pass its deadline, saying
//! how long the wait would have been and which window it was for ([`PacingRefusal`]), so the
//! operator is told it was pacing, not a slow skill.
//!
//! Where the call log lives is a [`PacingBackend`]: in this process ([`Pacer`], the default),
//! or in a shared [`Store`] ([`SharedPacer`]), so that every process sharing the store (CLI
//! runs, `serve` processes on several machines) shares each (tenant, app)'s windows. Both make
//! the same decision with the same windows and margin. A shared pacer whose store cannot be
//! reached fails the call ([`PacingFailure::Unavailable`]): it never sends it unpaced.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use skillhost_state::{Admission, PacingWindows, Store};

use crate::connections::Pacing;

/// Which of the two windows made a call wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The per-minute window.
    Minute,
    /// The per-hour window.
    Hour,
}

/// Why a call was not paced in: the wait for its window would end after the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingRefusal {
    /// How long the call would have had to wait for its window.
    pub wait: Duration,
    /// How long remained until the deadline.
    pub remaining: Duration,
    /// The window it waited for.
    pub window: Window,
}

/// The least a window is lengthened by, whatever its scale.
const MIN_MARGIN: Duration = Duration::from_millis(150);

/// Sliding-window limiter for one (tenant, app).
pub struct Pacer {
    minute: Duration,
    hour: Duration,
    per_minute: usize,
    per_hour: usize,
    calls: tokio::sync::Mutex<VecDeque<Instant>>,
}

/// The minute and hour windows of `pacing`, time-scaled and lengthened by the margin.
fn windows(pacing: Pacing) -> (Duration, Duration) {
    let scale = pacing.time_scale.max(f64::MIN_POSITIVE);
    // The service counts a call when it arrives, we when we send it; with latency jitter a
    // call sent exactly one window after another can arrive inside the service's window.
    // Windows 2% longer than published absorb that (measured: one 429 in 502 calls at the
    // exact limit, none with the margin).
    // The margin is at least MIN_MARGIN too: it is latency, not a share of the window,
    // that it absorbs (at time scale 60 a minute lasts 1 s, and 2% of it, 20 ms, was less
    // than six concurrent runs' requests queued at a simulator: a few 429s in 900 calls).
    let margin = 0.02;
    let window = |published: f64| {
        let window = published / scale;
        Duration::from_secs_f64(window + (window * margin).max(MIN_MARGIN.as_secs_f64()))
    };
    (window(60.0), window(3600.0))
}

impl Pacer {
    /// A pacer enforcing `pacing`.
    pub fn new(pacing: Pacing) -> Self {
        let (minute, hour) = windows(pacing);
        Pacer {
            minute,
            hour,
            per_minute: pacing.per_minute as usize,
            per_hour: pacing.per_hour as usize,
            calls: tokio::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// Waits until one more call fits, and records it. `Err` when the wait would end after
    /// `deadline` (the caller reports a timeout rather than sleeping past it).
    pub async fn acquire(&self, deadline: Instant) -> Result<Duration, ()> {
        self.admit(deadline).await.map_err(|_| ())
    }

    /// Like [`Pacer::acquire`], saying on refusal how long the wait would have been.
    pub async fn admit(&self, deadline: Instant) -> Result<Duration, PacingRefusal> {
        let started = Instant::now();
        loop {
            let mut calls = self.calls.lock().await;
            let now = Instant::now();
            while calls
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.hour)
            {
                calls.pop_front();
            }
            // The log is in time order: the calls of the last minute are its tail, found by
            // binary search (a raised `per_minute` must not make every admission scan them).
            let in_minute =
                calls.len() - calls.partition_point(|t| now.duration_since(*t) >= self.minute);
            let free_at = if calls.len() >= self.per_hour {
                calls.front().map(|t| (*t + self.hour, Window::Hour))
            } else if in_minute >= self.per_minute {
                calls
                    .get(calls.len() - in_minute)
                    .map(|t| (*t + self.minute, Window::Minute))
            } else {
                None
            };
            match free_at {
                None => {
                    calls.push_back(now);
                    return Ok(started.elapsed());
                }
                Some((at, window)) if at > deadline => {
                    return Err(PacingRefusal {
                        wait: at.saturating_duration_since(now),
                        remaining: deadline.saturating_duration_since(now),
                        window,
                    });
                }
                Some((at, _)) => {
                    drop(calls);
                    tokio::time::sleep_until(at.into()).await;
                }
            }
        }
    }
}

/// Where a connector keeps its pacing call logs.
#[derive(Clone, Default)]
pub enum PacingBackend {
    /// In this process: one [`Pacer`] per (tenant, app). Processes do not see each other's
    /// calls.
    #[default]
    InMemory,
    /// In a shared store: one [`SharedPacer`] per (tenant, app), every process sharing the
    /// store counting against the same windows.
    Store(Store),
}

/// Why a call could not be paced in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacingFailure {
    /// Its wait would end after the deadline.
    Refused(PacingRefusal),
    /// The shared store could not decide (the message says why): the call must not be sent.
    Unavailable(String),
}

/// The pacing of one (tenant, app) kept in a shared [`Store`], with the decision and margin of
/// [`Pacer`].
pub struct SharedPacer {
    store: Store,
    key: String,
    windows: PacingWindows,
}

impl SharedPacer {
    /// The pacer of (`tenant_id`, `client_id`) enforcing `pacing` in `store`.
    pub fn new(store: Store, tenant_id: &str, client_id: &str, pacing: Pacing) -> Self {
        let (minute, hour) = windows(pacing);
        SharedPacer {
            store,
            // Entra ids hold no `/`, so the key names one (tenant, app).
            key: format!("{tenant_id}/{client_id}"),
            windows: PacingWindows {
                minute,
                per_minute: pacing.per_minute,
                hour,
                per_hour: pacing.per_hour,
            },
        }
    }

    /// Waits until the store admits one more call (recording it there), like [`Pacer::admit`];
    /// [`PacingFailure::Unavailable`] when the store cannot be asked.
    pub async fn admit(&self, deadline: Instant) -> Result<Duration, PacingFailure> {
        let started = Instant::now();
        loop {
            let (wait, window) = match self.store.admit(&self.key, &self.windows).await {
                Ok(Admission::Admitted) => return Ok(started.elapsed()),
                Ok(Admission::Wait { wait, window }) => (wait, window),
                Err(e) => return Err(PacingFailure::Unavailable(e.to_string())),
            };
            let now = Instant::now();
            let at = now + wait;
            if at > deadline {
                return Err(PacingFailure::Refused(PacingRefusal {
                    wait,
                    remaining: deadline.saturating_duration_since(now),
                    window: match window {
                        skillhost_state::Window::Minute => Window::Minute,
                        skillhost_state::Window::Hour => Window::Hour,
                    },
                }));
            }
            tokio::time::sleep_until(at.into()).await;
        }
    }
}

/// The pacing a bound connection goes through: its (tenant, app)'s, in memory or in the store.
pub enum ConnectionPacer {
    /// This process's pacer of the (tenant, app), shared by its invocations.
    Local(std::sync::Arc<Pacer>),
    /// The store's.
    Shared(SharedPacer),
}

impl ConnectionPacer {
    /// Waits until one more call fits, and records it; see [`Pacer::admit`] and
    /// [`SharedPacer::admit`].
    pub async fn admit(&self, deadline: Instant) -> Result<Duration, PacingFailure> {
        match self {
            ConnectionPacer::Local(pacer) => {
                pacer.admit(deadline).await.map_err(PacingFailure::Refused)
            }
            ConnectionPacer::Shared(pacer) => pacer.admit(deadline).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_beyond_the_per_minute_limit_wait_for_the_window() {
        // 3 calls per "minute" of 200 ms.
        let pacer = Pacer::new(Pacing {
            per_minute: 3,
            per_hour: 100,
            time_scale: 300.0,
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let start = Instant::now();
        for _ in 0..3 {
            pacer.acquire(deadline).await.unwrap();
        }
        assert!(start.elapsed() < Duration::from_millis(100));
        pacer.acquire(deadline).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn a_wait_past_the_deadline_is_refused() {
        let pacer = Pacer::new(Pacing {
            per_minute: 1,
            per_hour: 100,
            time_scale: 1.0,
        });
        let deadline = Instant::now() + Duration::from_secs(1);
        pacer.acquire(deadline).await.unwrap();
        assert_eq!(pacer.acquire(deadline).await, Err(()));
    }

    #[tokio::test]
    async fn a_refusal_says_how_long_the_wait_would_be_and_for_which_window() {
        let pacer = Pacer::new(Pacing {
            per_minute: 1,
            per_hour: 100,
            time_scale: 1.0,
        });
        let deadline = Instant::now() + Duration::from_secs(2);
        pacer.admit(deadline).await.unwrap();
        let refusal = pacer.admit(deadline).await.unwrap_err();
        assert_eq!(refusal.window, Window::Minute);
        // One minute with the 2% margin, less the moment since the first call.
        assert!(
            refusal.wait > Duration::from_secs(61) && refusal.wait <= Duration::from_millis(61_200),
            "{:?}",
            refusal.wait
        );
        assert!(
            refusal.remaining > Duration::from_millis(1900)
                && refusal.remaining <= Duration::from_secs(2),
            "{:?}",
            refusal.remaining
        );

        let hourly = Pacer::new(Pacing {
            per_minute: 100,
            per_hour: 1,
            time_scale: 1.0,
        });
        hourly.admit(deadline).await.unwrap();
        assert_eq!(
            hourly.admit(deadline).await.unwrap_err().window,
            Window::Hour
        );
    }

    /// A store in a fresh temporary folder (removed by the caller).
    async fn temp_store(label: &str) -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "skillhost-upstream-pacing-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let url = skillhost_state::StoreUrl::Sqlite {
            path: dir.join("state.db"),
        };
        (Store::open(&url).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn a_shared_pacer_refuses_like_the_in_memory_one() {
        let (store, dir) = temp_store("refusal").await;
        let pacing = Pacing {
            per_minute: 1,
            per_hour: 100,
            time_scale: 1.0,
        };
        let shared = SharedPacer::new(store, "tenant", "app", pacing);
        let deadline = Instant::now() + Duration::from_secs(2);
        shared.admit(deadline).await.unwrap();
        let Err(PacingFailure::Refused(refusal)) = shared.admit(deadline).await else {
            panic!("the second call of a 1-per-minute pacer was admitted");
        };
        assert_eq!(refusal.window, Window::Minute);
        // One minute with the 2% margin, less the moment since the first call.
        assert!(
            refusal.wait > Duration::from_secs(61) && refusal.wait <= Duration::from_millis(61_200),
            "{:?}",
            refusal.wait
        );
        assert!(
            refusal.remaining > Duration::from_millis(1900)
                && refusal.remaining <= Duration::from_secs(2),
            "{:?}",
            refusal.remaining
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_shared_pacer_waits_for_the_window_within_the_deadline() {
        let (store, dir) = temp_store("wait").await;
        // 3 calls per "minute" of 200 ms (350 ms with the least margin).
        let shared = SharedPacer::new(
            store,
            "tenant",
            "app",
            Pacing {
                per_minute: 3,
                per_hour: 100,
                time_scale: 300.0,
            },
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let start = Instant::now();
        for _ in 0..3 {
            shared.admit(deadline).await.unwrap();
        }
        assert!(start.elapsed() < Duration::from_millis(100));
        shared.admit(deadline).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(350));
        let _ = std::fs::remove_dir_all(dir);
    }
}
