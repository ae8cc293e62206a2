//! What a session does when an RPC fails: which errors are worth retrying,
//! the backoff between tries, and when the coordinator has forgotten the
//! worker (it registers again).

use std::time::{Duration, Instant};

use tonic::{Code, Status};

use super::WorkerOptions;
use crate::WorkerError;

/// Errors worth retrying: the coordinator is (re)starting or the network hiccupped.
pub(super) fn transient(s: &Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted)
        || (s.code() == Code::Internal && s.message().contains("h2"))
}

/// Exponential backoff from 100 ms to 5 s.
pub(super) struct Backoff {
    next: Duration,
    since: Option<Instant>,
}

impl Backoff {
    pub(super) fn new() -> Backoff {
        Backoff { next: Duration::from_millis(100), since: None }
    }

    pub(super) fn reset(&mut self) {
        *self = Backoff::new();
    }

    /// Sleeps the next backoff interval, or gives up once the coordinator has
    /// been unreachable for `opts.give_up_after`.
    pub(super) async fn wait(&mut self, opts: &WorkerOptions, last: &Status) -> Result<(), WorkerError> {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() > opts.give_up_after {
            return Err(WorkerError::Unreachable {
                url: opts.coordinator.clone(),
                seconds: since.elapsed().as_secs(),
                last: last.message().to_string(),
            });
        }
        tracing::debug!(wait_ms = self.next.as_millis() as u64, error = %last.message(), "coordinator unreachable; retrying");
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        Ok(())
    }
}

/// What a session does after an RPC of a round failed and it did not give up.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Recovery {
    /// The coordinator no longer knows this worker: register again.
    Rejoin,
    /// The backoff was waited out: go on with the next round.
    Retried,
}

/// After a round's RPC failed with `status`: `NotFound` (the coordinator
/// forgot this worker) asks for a new registration, a transient error waits
/// out the backoff (or gives up, unreachable), anything else is a refusal.
pub(super) async fn recover(
    status: Status,
    opts: &WorkerOptions,
    backoff: &mut Backoff,
) -> Result<Recovery, WorkerError> {
    if status.code() == Code::NotFound {
        return Ok(Recovery::Rejoin);
    }
    if transient(&status) {
        backoff.wait(opts, &status).await?;
        return Ok(Recovery::Retried);
    }
    Err(WorkerError::Refused { url: opts.coordinator.clone(), status: status.to_string() })
}
