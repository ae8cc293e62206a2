//! Heartbeats and long-polled round offers.

use std::time::Duration;

use super::{state::unix_ms, Hub, HubError, RoundOffer, RunState, WorkerActivity};
use crate::scheduler::WorkerId;

/// The longest a `WaitRound` call is held open.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

impl Hub {
    /// A heartbeat. `Ok(None)`: the worker must register again; otherwise the
    /// current round.
    pub fn heartbeat(
        &self,
        name: &str,
        round: u64,
        images_per_s: f64,
        activity: WorkerActivity,
    ) -> Result<Option<u64>, HubError> {
        let id = match self.parse_name(name) {
            Ok(id) => id,
            Err(HubError::UnknownWorker(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let now = self.now_ms();
        let mut st = self.lock();
        if st.scheduler.heartbeat(id, now).is_err() {
            return Ok(None);
        }
        let current = st.run.round;
        if let Some(w) = st.workers.get_mut(&id) {
            w.last_heartbeat_unix_ms = unix_ms();
            if images_per_s.is_finite() && images_per_s >= 0.0 {
                w.images_per_s = images_per_s;
            }
            w.activity = activity;
            w.last_round = w.last_round.max(round);
        }
        Ok(Some(current))
    }

    /// Long-polls for the next round after `last_round`.
    pub async fn wait_round(&self, name: &str, last_round: u64, max_wait: Duration) -> Result<RoundOffer, HubError> {
        let id = self.parse_name(name)?;
        let max_wait = max_wait.min(MAX_WAIT);
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut rx = self.round_tx.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(offer) = self.offer(id, last_round)? {
                return Ok(offer);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => {
                    return Ok(RoundOffer::Retry { last_round, after: Duration::from_millis(50) });
                }
            }
        }
    }

    /// The offer for worker `id` now, if there is one: the run is over, or its
    /// share of an open round after `last_round` (with its shard if it changed).
    fn offer(&self, id: WorkerId, last_round: u64) -> Result<Option<RoundOffer>, HubError> {
        let mut st = self.lock();
        if matches!(st.run.state, RunState::Finished | RunState::Failed) {
            return Ok(Some(RoundOffer::Finished));
        }
        if !st.scheduler.membership().is_live(id) {
            return Err(HubError::UnknownWorker(st.workers.get(&id).map_or(String::new(), |w| w.name.clone())));
        }
        let Some(round) = st.open.as_ref().filter(|o| o.round > last_round).and_then(|o| o.assignments.get(&id)) else {
            return Ok(None);
        };
        let round = round.clone();
        let w = st.workers.get_mut(&id).expect("a live worker is known");
        let shards = match &w.sent_shard {
            Some((_, sent)) if **sent == *round.shard => None,
            previous => {
                let version = previous.as_ref().map_or(1, |(v, _)| v + 1);
                w.sent_shard = Some((version, round.shard.clone()));
                Some((version, round.shard.clone()))
            }
        };
        w.shard_size = round.shard.len();
        Ok(Some(RoundOffer::Run { round, shards }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use dmtl_core::method::{Losses, Pool};

    use super::super::testing::{hub, registration};
    use super::super::{HubError, OpenRound, RoundOffer, RunState, UpdateKind, WorkerActivity, WorkerRound};
    use crate::scheduler::{Task, WorkerId};

    fn share(round: u64, shard: Vec<usize>) -> WorkerRound {
        WorkerRound {
            round,
            weights_version: round,
            teacher_version: 0,
            method: "alternate".into(),
            phase: 0,
            first_step: round,
            steps: 1,
            pool: Pool::Seg,
            count: 2,
            losses: Losses { seg: true, ..Default::default() },
            first_draw: 0,
            update_kind: UpdateKind::Gradients,
            shard: Arc::new(shard),
            nccl: None,
        }
    }

    fn open(hub: &super::Hub, id: WorkerId, round: WorkerRound) {
        let assignments = BTreeMap::from([(id, round.clone())]);
        hub.lock().open = Some(OpenRound { round: round.round, assignments });
    }

    #[test]
    fn a_heartbeat_from_an_unknown_worker_asks_it_to_register_again() {
        let (hub, _rx) = hub();
        assert!(matches!(hub.heartbeat("seg-1.nope", 0, 1.0, WorkerActivity::Waiting), Ok(None)));
        let a = hub.register(registration(Task::Seg, "h")).unwrap();
        hub.leave(&a.worker, "bye").unwrap();
        assert!(matches!(hub.heartbeat(&a.worker, 0, 1.0, WorkerActivity::Waiting), Ok(None)), "a gone worker too");
    }

    #[test]
    fn a_heartbeat_records_activity_speed_and_round_and_answers_the_current_round() {
        let (hub, _rx) = hub();
        let a = hub.register(registration(Task::Seg, "h")).unwrap();
        hub.lock().run.round = 4;
        assert_eq!(hub.heartbeat(&a.worker, 3, 12.5, WorkerActivity::Training).unwrap(), Some(4));
        assert_eq!(hub.heartbeat(&a.worker, 2, f64::NAN, WorkerActivity::Pushing).unwrap(), Some(4));
        let st = hub.lock();
        let w = &st.workers[&WorkerId(1)];
        assert_eq!((w.activity, w.images_per_s, w.last_round), (WorkerActivity::Pushing, 12.5, 3));
    }

    #[tokio::test]
    async fn wait_round_from_an_unknown_worker_is_refused_as_unknown_worker() {
        let (hub, _rx) = hub();
        let answer = hub.wait_round("seg-1.nope", 0, Duration::from_millis(1)).await;
        assert!(matches!(&answer, Err(HubError::UnknownWorker(n)) if n == "seg-1.nope"), "{answer:?}");
        let a = hub.register(registration(Task::Seg, "h")).unwrap();
        hub.leave(&a.worker, "bye").unwrap();
        let answer = hub.wait_round(&a.worker, 0, Duration::from_millis(1)).await;
        assert!(matches!(&answer, Err(HubError::UnknownWorker(n)) if *n == a.worker), "{answer:?}");
    }

    #[tokio::test]
    async fn wait_round_sends_the_shard_only_when_it_changed() {
        let (hub, _rx) = hub();
        let a = hub.register(registration(Task::Seg, "h")).unwrap();
        let id = hub.parse_name(&a.worker).unwrap();
        let wait = |last| hub.wait_round(&a.worker, last, Duration::from_millis(1));
        assert!(matches!(wait(0).await.unwrap(), RoundOffer::Retry { last_round: 0, .. }), "no round open");
        open(&hub, id, share(1, vec![0, 1]));
        let RoundOffer::Run { round, shards } = wait(0).await.unwrap() else { panic!("round 1 is open") };
        assert_eq!((round.round, shards), (1, Some((1, Arc::new(vec![0, 1])))));
        assert!(matches!(wait(1).await.unwrap(), RoundOffer::Retry { last_round: 1, .. }), "round 1 was offered");
        open(&hub, id, share(2, vec![0, 1]));
        assert!(matches!(wait(1).await.unwrap(), RoundOffer::Run { shards: None, .. }), "same shard");
        open(&hub, id, share(3, vec![2, 3]));
        let RoundOffer::Run { shards, .. } = wait(2).await.unwrap() else { panic!("round 3 is open") };
        assert_eq!(shards, Some((2, Arc::new(vec![2, 3]))));
        assert_eq!(hub.lock().workers[&id].shard_size, 2);
        hub.lock().run.state = RunState::Finished;
        assert!(matches!(wait(3).await.unwrap(), RoundOffer::Finished));
    }
}
