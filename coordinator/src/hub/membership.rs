//! Who is in the run: registration, worker names, leaving.

use super::{state::unix_ms, Admission, EventKind, Hub, HubError, Registration, RunState, WorkerActivity, WorkerInfo};
use crate::scheduler::{SchedulerError, Task, WorkerId};

impl Hub {
    /// The name handed out for worker `id`: `<task>-<id>.<incarnation>`.
    fn name_of(&self, task: Task, id: WorkerId) -> String {
        format!("{}-{}.{}", task.as_str(), id.0, self.incarnation)
    }

    /// The id of a worker name handed out by this coordinator process.
    pub fn parse_name(&self, name: &str) -> Result<WorkerId, HubError> {
        let unknown = || HubError::UnknownWorker(name.to_string());
        let (rest, incarnation) = name.rsplit_once('.').ok_or_else(unknown)?;
        if incarnation != self.incarnation {
            return Err(unknown());
        }
        let (_, n) = rest.rsplit_once('-').ok_or_else(unknown)?;
        let id = WorkerId(n.parse().map_err(|_| unknown())?);
        match self.lock().workers.get(&id) {
            Some(w) if w.name == name => Ok(id),
            _ => Err(unknown()),
        }
    }

    /// Admits a worker of the same version while the run is not over; every
    /// registration (a rejoin too) gets a new name.
    pub fn register(&self, r: Registration) -> Result<Admission, HubError> {
        let ours = env!("CARGO_PKG_VERSION");
        if r.version != ours {
            return Err(HubError::FailedPrecondition(format!(
                "worker version {} differs from the coordinator's {ours}",
                r.version
            )));
        }
        let now = self.now_ms();
        let mut st = self.lock();
        if matches!(st.run.state, RunState::Finished | RunState::Failed) {
            return Err(HubError::FailedPrecondition("the run is finished".into()));
        }
        let id = st.scheduler.register(r.task, now).map_err(|e| match e {
            SchedulerError::NoPool(task) => HubError::InvalidArgument(format!(
                "task `{task}` has no images in method `{}` (it trains {})",
                self.facts.method,
                st.scheduler.pools().tasks().map(Task::as_str).collect::<Vec<_>>().join(" and ")
            )),
            other => HubError::Internal(other.to_string()),
        })?;
        let name = self.name_of(r.task, id);
        st.workers.insert(
            id,
            WorkerInfo {
                id,
                name: name.clone(),
                task: r.task,
                host: r.host.clone(),
                device: r.device,
                threads: r.threads,
                activity: WorkerActivity::Starting,
                last_heartbeat_unix_ms: unix_ms(),
                images_per_s: 0.0,
                shard_size: 0,
                last_round: 0,
                sent_shard: None,
            },
        );
        let kind = match r.previous {
            Some(previous) => EventKind::WorkerRejoined { worker: name.clone(), task: r.task, host: r.host, previous },
            None => EventKind::WorkerJoined { worker: name.clone(), task: r.task, host: r.host },
        };
        tracing::info!(worker = %name, task = %r.task, "worker registered");
        self.emit(&mut st, kind);
        drop(st);
        self.wake();
        Ok(Admission { worker: name, task: r.task, facts: self.facts.clone() })
    }

    /// A worker leaves: it is marked `Left` and its leaving is an event.
    pub fn leave(&self, name: &str, reason: &str) -> Result<(), HubError> {
        let id = self.parse_name(name)?;
        let mut st = self.lock();
        if st.scheduler.leave(id).is_ok() {
            let w = st.workers.get_mut(&id).expect("a registered worker is known");
            w.activity = WorkerActivity::Left;
            let (worker, task, host) = (w.name.clone(), w.task, w.host.clone());
            tracing::info!(worker = %worker, reason, "worker left");
            self.emit(&mut st, EventKind::WorkerLost { worker, task, host, reason: format!("left: {reason}") });
        }
        drop(st);
        self.wake();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{hub, registration};
    use super::super::{EventKind, HubError, RunState, WorkerActivity};
    use crate::scheduler::Task;

    #[test]
    fn register_admits_a_worker_and_returns_the_run_facts() {
        let (hub, _rx) = hub();
        let a = hub.register(registration(Task::Seg, "host-a")).unwrap();
        assert_eq!(a.task, Task::Seg);
        assert!(a.worker.starts_with("seg-1."), "{}", a.worker);
        let id = hub.parse_name(&a.worker).unwrap();
        assert_eq!(id.0, 1);
        let f = &a.facts;
        assert_eq!(
            (f.run_id.as_str(), f.config_toml.as_str(), f.dataset_size, f.local_steps, f.chunk_bytes, f.nccl),
            ("toy-run", "seed = 7\n", 6, 2, 4096, false)
        );
        assert_eq!((f.heartbeat_interval_ms, f.heartbeat_timeout_ms), (500, 3000));
        let st = hub.lock();
        let w = &st.workers[&id];
        assert_eq!((w.host.as_str(), w.activity), ("host-a", WorkerActivity::Starting));
    }

    #[test]
    fn registering_again_with_the_previous_name_admits_a_new_worker_and_records_a_rejoin() {
        let (hub, _rx) = hub();
        let first = hub.register(registration(Task::Depth, "host-a")).unwrap();
        let mut events = hub.subscribe();
        let again = hub
            .register(super::Registration {
                previous: Some(first.worker.clone()),
                ..registration(Task::Depth, "host-a")
            })
            .unwrap();
        assert_ne!(again.worker, first.worker);
        // Both names stay known: the old one until it is lost or leaves.
        assert_eq!(hub.parse_name(&first.worker).unwrap().0, 1);
        assert_eq!(hub.parse_name(&again.worker).unwrap().0, 2);
        assert_eq!(hub.status().workers.len(), 2);
        match events.try_recv().unwrap().kind {
            EventKind::WorkerRejoined { worker, previous, .. } => {
                assert_eq!((worker, previous), (again.worker, first.worker));
            }
            other => panic!("expected a rejoin, got {other:?}"),
        }
    }

    #[test]
    fn register_refuses_another_version_a_task_without_images_and_a_finished_run() {
        let (hub, _rx) = hub();
        let old = super::Registration { version: "0.0.0-old".into(), ..registration(Task::Seg, "h") };
        assert!(matches!(hub.register(old), Err(HubError::FailedPrecondition(m)) if m.contains("0.0.0-old")));
        let both = hub.register(registration(Task::Both, "h"));
        assert!(matches!(&both, Err(HubError::InvalidArgument(m)) if m.contains("trains seg and depth")), "{both:?}");
        hub.lock().run.state = RunState::Finished;
        let late = hub.register(registration(Task::Seg, "h"));
        assert!(matches!(late, Err(HubError::FailedPrecondition(m)) if m == "the run is finished"));
    }

    #[test]
    fn leave_marks_the_worker_left_and_reports_it() {
        let (hub, _rx) = hub();
        let a = hub.register(registration(Task::Seg, "host-a")).unwrap();
        let mut events = hub.subscribe();
        hub.leave(&a.worker, "done").unwrap();
        let id = hub.parse_name(&a.worker).unwrap();
        assert_eq!(hub.lock().workers[&id].activity, WorkerActivity::Left);
        assert!(!hub.lock().scheduler.membership().is_live(id));
        match events.try_recv().unwrap().kind {
            EventKind::WorkerLost { worker, reason, .. } => {
                assert_eq!((worker, reason.as_str()), (a.worker, "left: done"))
            }
            other => panic!("expected the leave, got {other:?}"),
        }
    }

    #[test]
    fn parse_name_refuses_a_malformed_or_foreign_name() {
        let (hub, _rx) = hub();
        let a = hub.register(registration(Task::Seg, "h")).unwrap();
        let (stem, incarnation) = a.worker.rsplit_once('.').unwrap();
        for name in [
            "",
            "seg-1",
            "seg.x",
            &format!("seg-x.{incarnation}"),
            &format!("seg-2.{incarnation}"),
            &format!("depth-1.{incarnation}"),
            &format!("{stem}.other"),
        ] {
            match hub.parse_name(name) {
                Err(HubError::UnknownWorker(n)) => assert_eq!(n, name),
                other => panic!("`{name}`: expected UnknownWorker, got {other:?}"),
            }
        }
    }
}
