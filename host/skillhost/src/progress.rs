//! A one-line progress report on a terminal's stderr while a dataset streams: requests sent and
//! rows received, redrawn at most four times a second and erased at the end.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skillhost_upstream::outbound::BoundConnection;

/// The progress line of one run.
pub struct Progress {
    connection: Option<Arc<BoundConnection>>,
    rows: u64,
    last: Instant,
    shown: bool,
}

impl Progress {
    /// Progress of a run whose calls go through `connection`.
    pub fn new(connection: Option<Arc<BoundConnection>>) -> Self {
        Progress {
            connection,
            rows: 0,
            last: Instant::now(),
            shown: false,
        }
    }

    /// Counts one row; redraws if a quarter second passed.
    pub fn row(&mut self) {
        self.rows += 1;
        if self.last.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let requests = self.connection.as_ref().map_or(0, |c| c.requests_sent());
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[Kskillhost: {requests} requests, {} rows…",
            self.rows
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.shown {
            let _ = write!(crate::errlog::StderrWriter, "\r\x1b[K");
        }
    }
}
