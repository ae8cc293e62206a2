//! The worker's life: register, then round after round (wait → pull →
//! train → push) with heartbeats alongside; register again when the
//! coordinator forgets the worker, leave when the run is finished.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use dmtl_collective::Backend;
use dmtl_proto::connect::{client, Client};
use dmtl_proto::v1;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Code;

use super::convert::work_of;
use super::grpc::{GrpcRound, Held, Pulled};
use super::heartbeat::{heartbeats, Shared};
use super::nccl::{NcclRound, NcclTimes};
use super::register::{register, training_thread, Registration, Session};
use super::retry::{recover, transient, Backoff, Recovery};
use super::summary::Laps;
use super::{WorkerOptions, WorkerSummary};
use crate::trainer::{Job, RoundWork, TrainerHandle};
use crate::WorkerError;

/// Runs a worker until the run is finished (or `stop` turns true).
pub async fn run(opts: WorkerOptions, stop: watch::Receiver<bool>) -> Result<WorkerSummary, WorkerError> {
    let client = client(&opts.coordinator, opts.tls_ca.as_ref(), &opts.token)?;
    let mut worker = Worker {
        opts,
        client,
        shared: Shared::new(),
        summary: WorkerSummary::default(),
        backoff: Backoff::new(),
        heartbeat: None,
        stop,
    };
    worker.sessions().await?;
    if let Some(t) = worker.heartbeat.take() {
        t.abort();
    }
    Ok(worker.summary)
}

/// A worker's connection, counters and heartbeat task, across sessions.
struct Worker {
    opts: WorkerOptions,
    client: Client,
    shared: Arc<Shared>,
    summary: WorkerSummary,
    backoff: Backoff,
    heartbeat: Option<JoinHandle<()>>,
    stop: watch::Receiver<bool>,
}

/// How a session ended.
enum SessionEnd {
    /// Register again (the coordinator forgot the worker or asked for it).
    Rejoin,
    /// The run is finished, or the worker was asked to stop.
    Done,
}

/// What waiting for a round gave.
enum Waited {
    Round(v1::RoundInfo),
    /// No round yet (or the wait failed and the backoff was waited out): wait again.
    Again,
    End(SessionEnd),
}

/// How one pass of the round loop ended.
enum Step {
    /// The round was run (its update counted or not).
    Ran,
    /// No round was run: wait for the next one.
    Again,
    End(SessionEnd),
}

impl Worker {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Registration after registration, until the run is finished or `stop`;
    /// the training thread is kept while the run's config stays the same.
    async fn sessions(&mut self) -> Result<(), WorkerError> {
        let mut trainer: Option<(String, TrainerHandle)> = None;
        let mut previous = String::new();
        while !self.stopped() {
            let session = match register(&mut self.client, &self.opts, &previous, &mut self.backoff).await? {
                Registration::Registered(session) => session,
                Registration::Retry => continue,
                Registration::Finished => break,
            };
            self.summary.registrations += 1;
            previous = session.worker.clone();
            self.shared.begin_session(&session.worker);
            let handle = training_thread(&mut trainer, &self.opts, &session).await?;
            if let Some(t) = self.heartbeat.take() {
                t.abort();
            }
            self.heartbeat =
                Some(tokio::spawn(heartbeats(self.client.clone(), self.shared.clone(), session.heartbeat)));
            if let SessionEnd::Done = self.rounds(&session, handle).await? {
                break;
            }
        }
        Ok(())
    }

    /// One session's rounds.
    async fn rounds(&mut self, session: &Session, handle: &TrainerHandle) -> Result<SessionEnd, WorkerError> {
        let mut held = Held::nothing();
        let mut last_round = 0u64;
        loop {
            if self.stopped() {
                return Ok(SessionEnd::Done);
            }
            if self.shared.rejoin_asked() {
                tracing::warn!(worker = %session.worker, "the coordinator asks this worker to register again");
                return Ok(SessionEnd::Rejoin);
            }
            let mut laps = Laps::start();
            let info = match self.wait_round(session, last_round).await? {
                Waited::Round(info) => info,
                Waited::Again => continue,
                Waited::End(end) => return Ok(end),
            };
            let work = work_of(&info)?;
            self.shared.round.store(info.round, Ordering::SeqCst);
            laps.lap(&mut self.summary.time.wait_s);
            self.shared.set_state(v1::WorkerState::Pulling);
            if let Some(shards) = &info.shards {
                let indices: Vec<usize> =
                    shards.shards.iter().flat_map(|s| s.indices.iter().map(|&i| i as usize)).collect();
                handle.call(|reply| Job::Shard { indices, reply }).await?;
                laps.lap(&mut self.summary.time.pull_s); // loading the shard's images
            }
            // The first batch is built on the training thread while the weights travel.
            handle.submit(Job::Prepare { work: work.clone() });
            let step = match session.backend {
                Some(backend) => self.nccl_round(session, handle, backend, &info, work, &mut laps).await?,
                None => self.grpc_round(session, handle, &info, &work, &mut held, &mut laps).await?,
            };
            match step {
                Step::Ran => last_round = info.round,
                Step::Again => {}
                Step::End(end) => return Ok(end),
            }
        }
    }

    /// Waits for the round after `last_round`: the round to run, or why there
    /// is none (wait again, register again, or the run is finished: leave).
    async fn wait_round(&mut self, session: &Session, last_round: u64) -> Result<Waited, WorkerError> {
        self.shared.set_state(v1::WorkerState::Waiting);
        let wait = v1::WaitRoundRequest { worker_id: session.worker.clone(), last_round, max_wait_ms: 10_000 };
        let info = match self.client.wait_round(wait).await {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::NotFound => return Ok(Waited::End(SessionEnd::Rejoin)),
            Err(s) if transient(&s) => {
                self.backoff.wait(&self.opts, &s).await?;
                return Ok(Waited::Again);
            }
            Err(s) => return Err(WorkerError::Refused { url: self.opts.coordinator.clone(), status: s.to_string() }),
        };
        self.backoff.reset();
        if info.finished {
            let leave = v1::LeaveRequest { worker_id: session.worker.clone(), reason: "finished".into() };
            let _ = self.client.leave(leave).await;
            return Ok(Waited::End(SessionEnd::Done));
        }
        if info.plan.is_none() {
            if info.retry_after_ms > 0 {
                tokio::time::sleep(Duration::from_millis(u64::from(info.retry_after_ms))).await;
            }
            return Ok(Waited::Again);
        }
        Ok(Waited::Round(info))
    }

    /// A grpc-plane round: pull, train, push.
    async fn grpc_round(
        &mut self,
        session: &Session,
        handle: &TrainerHandle,
        info: &v1::RoundInfo,
        work: &RoundWork,
        held: &mut Held,
        laps: &mut Laps,
    ) -> Result<Step, WorkerError> {
        let time = &mut self.summary.time;
        let mut round =
            GrpcRound { client: &mut self.client, worker: &session.worker, chunk_bytes: session.chunk_bytes, handle };
        let pulled = match round.pull(info, held).await {
            Err(WorkerError::Rpc(s)) if transient(&s) => {
                self.backoff.wait(&self.opts, &s).await?;
                Pulled::Superseded
            }
            Err(WorkerError::Rpc(s)) => return self.after_failure(s).await,
            pulled => pulled?,
        };
        laps.lap(&mut time.pull_s);
        if pulled == Pulled::Superseded {
            return Ok(Step::Again);
        }
        self.shared.set_state(v1::WorkerState::Training);
        let result = round.train(work).await?;
        self.shared.images_per_s.store(result.images_per_s.to_bits(), Ordering::SeqCst);
        // The local model moved (local SGD) or will be replaced: the next round pulls again.
        held.weights = u64::MAX;
        laps.lap(&mut time.train_s);
        self.shared.set_state(v1::WorkerState::Pushing);
        let samples = result.samples;
        let pushed = round.push(info, work, result).await;
        laps.lap(&mut time.push_s);
        match pushed {
            Ok(true) => self.count(samples),
            Ok(false) => {}
            Err(WorkerError::Rpc(s)) => return self.after_failure(s).await,
            Err(e) => return Err(e),
        }
        Ok(Step::Ran)
    }

    /// An nccl-plane round (session/nccl.rs): the step is merged among the
    /// workers; its pulls, collectives and push are not training time.
    async fn nccl_round(
        &mut self,
        session: &Session,
        handle: &TrainerHandle,
        backend: Backend,
        info: &v1::RoundInfo,
        work: RoundWork,
        laps: &mut Laps,
    ) -> Result<Step, WorkerError> {
        self.shared.set_state(v1::WorkerState::Training);
        let mut round = NcclRound {
            client: &mut self.client,
            worker: &session.worker,
            chunk_bytes: session.chunk_bytes,
            handle,
            backend,
            coordinator_round: &self.shared.coordinator_round,
        };
        let mut times = NcclTimes::default();
        let done = round.run(info, work, &mut times).await;
        let t = &mut self.summary.time;
        laps.lap(&mut t.train_s);
        t.train_s -= times.pull_s + times.collective_s + times.push_s;
        t.pull_s += times.pull_s;
        t.collective_s += times.collective_s;
        t.push_s += times.push_s;
        match done {
            Ok(Some(images)) => self.count(images),
            Ok(None) => {}
            Err(WorkerError::Rpc(s)) => return self.after_failure(s).await,
            Err(e) => return Err(e),
        }
        Ok(Step::Ran)
    }

    /// A merged round of `images` images.
    fn count(&mut self, images: u64) {
        self.summary.rounds += 1;
        self.summary.images += images;
    }

    /// After a round's RPC failed: register again, or (the backoff waited
    /// out) count the round as run and go on.
    async fn after_failure(&mut self, status: tonic::Status) -> Result<Step, WorkerError> {
        Ok(match recover(status, &self.opts, &mut self.backoff).await? {
            Recovery::Rejoin => Step::End(SessionEnd::Rejoin),
            Recovery::Retried => Step::Ran,
        })
    }
}
