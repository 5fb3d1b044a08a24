//! What the server reports about itself: when it started, its metrics and its logs.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::logs::Logs;
use crate::metrics::Metrics;

/// The server's clock, metrics and logs, shared by the pipeline and the handlers.
#[derive(Debug)]
pub struct Telemetry {
    started: Instant,
    started_at: OffsetDateTime,
    pub(crate) metrics: Metrics,
    pub(crate) logs: Logs,
}

impl Telemetry {
    /// Starts the clock.
    pub fn new(logs: Logs) -> Telemetry {
        Telemetry {
            started: Instant::now(),
            started_at: OffsetDateTime::now_utc(),
            metrics: Metrics::new(),
            logs,
        }
    }

    /// How long the server has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// When the server started.
    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }

    /// The logs.
    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// The request metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
