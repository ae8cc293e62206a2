//! The README's properties, checked after every event of random event
//! sequences (register, heartbeat, time passing, expire, leave, begin, push,
//! finish, abandon), including the refused ones.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;

/// Heartbeat timeout of the runs: a few ticks of silence lose a worker.
const TIMEOUT_MS: u64 = 100;
/// The id of a worker that never registered.
const STRANGER: WorkerId = WorkerId(1_000_000);

#[derive(Debug, Clone)]
enum Event {
    Register(Task),
    /// Worker picked by index among the registered (or a stranger).
    Heartbeat(u8),
    /// Every registered worker heartbeats (gone ones are refused).
    HeartbeatAll,
    Tick(u64),
    Expire,
    Leave(u8),
    /// Begin the round after the last one begun, plus `skip`.
    Begin(Vec<Task>, u64),
    /// Begin the last round begun again (must be refused).
    BeginAgain,
    /// Push for the open (or last) round plus `delta`.
    Push(u8, i8),
    /// A participant of the open round pushes for it.
    PushParticipant(u8),
    Finish,
    Abandon,
}

#[derive(Debug, Clone)]
struct Scenario {
    pools: TaskPools,
    config: SchedulerConfig,
    events: Vec<Event>,
}

fn event() -> impl Strategy<Value = Event> {
    let tasks = prop::sample::subsequence(Task::ALL.to_vec(), 1..=3);
    prop_oneof![
        3 => prop::sample::select(Task::ALL.to_vec()).prop_map(Event::Register),
        2 => any::<u8>().prop_map(Event::Heartbeat),
        3 => Just(Event::HeartbeatAll),
        3 => (0u64..80).prop_map(Event::Tick),
        2 => Just(Event::Expire),
        1 => any::<u8>().prop_map(Event::Leave),
        3 => (tasks, 0u64..3).prop_map(|(t, skip)| Event::Begin(t, skip)),
        1 => Just(Event::BeginAgain),
        3 => (any::<u8>(), -1i8..=1).prop_map(|(w, d)| Event::Push(w, d)),
        6 => any::<u8>().prop_map(Event::PushParticipant),
        3 => Just(Event::Finish),
        1 => Just(Event::Abandon),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let pools = (prop::sample::subsequence(Task::ALL.to_vec(), 1..=3), prop::collection::vec(1usize..40, 3)).prop_map(
        |(tasks, sizes)| {
            tasks.into_iter().zip(sizes).fold(TaskPools::new(), |pools, (task, n)| {
                // Distinct, non-contiguous image ids per task.
                let base = 1000 * (task as usize + 1);
                pools.with(task, (0..n).map(|i| base + 3 * i).collect())
            })
        },
    );
    let config = (1usize..3, 0u64..400).prop_map(|(min_workers_per_task, round_deadline_ms)| SchedulerConfig {
        min_workers_per_task,
        round_deadline_ms,
    });
    (pools, config, prop::collection::vec(event(), 1..150)).prop_map(|(pools, config, events)| Scenario {
        pools,
        config,
        events,
    })
}

/// A scheduler under test plus what the checks remember of its history.
struct Run {
    s: Scheduler,
    now: u64,
    ids: Vec<WorkerId>,
    /// Every output, for the determinism check.
    trace: Vec<String>,
    /// (worker, round) of every accepted update.
    accepted: BTreeSet<(WorkerId, u64)>,
    /// The round open when each worker registered.
    joined_during: BTreeMap<WorkerId, Option<u64>>,
    /// Each worker's shard in the last round that began.
    last_shard: BTreeMap<WorkerId, (Task, Vec<usize>)>,
    /// Images of lost or departed workers not yet re-planned, by task.
    orphans: BTreeMap<Task, BTreeSet<usize>>,
    gone: BTreeSet<WorkerId>,
}

impl Run {
    fn new(scenario: &Scenario) -> Self {
        Run {
            s: Scheduler::new(scenario.config, scenario.pools.clone()).unwrap(),
            now: 0,
            ids: Vec::new(),
            trace: Vec::new(),
            accepted: BTreeSet::new(),
            joined_during: BTreeMap::new(),
            last_shard: BTreeMap::new(),
            orphans: BTreeMap::new(),
            gone: BTreeSet::new(),
        }
    }

    fn worker(&self, pick: u8) -> WorkerId {
        let n = self.ids.len();
        match usize::from(pick) % (n + 1) {
            k if k < n => self.ids[k],
            _ => STRANGER,
        }
    }

    fn open_round(&self) -> Option<u64> {
        self.s.open_round().map(|p| p.round)
    }

    fn lose(&mut self, lost: &[WorkerId]) {
        for id in lost {
            self.gone.insert(*id);
            if let Some((task, images)) = self.last_shard.remove(id) {
                self.orphans.entry(task).or_default().extend(images);
            }
        }
    }

    fn apply(&mut self, event: &Event) -> Result<(), TestCaseError> {
        match event {
            Event::Register(task) => {
                let result = self.s.register(*task, self.now);
                prop_assert_eq!(result.is_ok(), self.s.pools().get(*task).is_some());
                if let Ok(id) = result {
                    prop_assert!(!self.ids.contains(&id), "ids are fresh");
                    self.ids.push(id);
                    self.joined_during.insert(id, self.open_round());
                }
                self.trace.push(format!("{result:?}"));
            }
            Event::Heartbeat(pick) => {
                let id = self.worker(*pick);
                let result = self.s.heartbeat(id, self.now);
                prop_assert_eq!(result.is_ok(), self.s.membership().is_live(id));
                self.trace.push(format!("{result:?}"));
            }
            Event::HeartbeatAll => {
                for id in self.ids.clone() {
                    let result = self.s.heartbeat(id, self.now);
                    prop_assert_eq!(result.is_ok(), !self.gone.contains(&id));
                }
            }
            Event::Tick(ms) => self.now += ms,
            Event::Expire => {
                let lost = self.s.expire(self.now, TIMEOUT_MS);
                self.lose(&lost);
                self.trace.push(format!("{lost:?}"));
            }
            Event::Leave(pick) => {
                let id = self.worker(*pick);
                let was_live = self.s.membership().is_live(id);
                let result = self.s.leave(id);
                if was_live {
                    self.lose(&[id]);
                }
                self.trace.push(format!("{result:?}"));
            }
            Event::Begin(tasks, skip) => {
                let round = self.s.last_begun().map_or(1, |last| last + 1) + skip;
                // Mostly tasks that have a pool, sometimes one that has not.
                let with_pool: BTreeSet<Task> =
                    tasks.iter().copied().filter(|t| self.s.pools().get(*t).is_some()).collect();
                let active = if with_pool.is_empty() { tasks.iter().copied().collect() } else { with_pool };
                let open_before = self.open_round();
                let result = self.s.begin_round(round, &active, self.now);
                self.trace.push(format!("{result:?}"));
                match (open_before, result) {
                    (Some(open), result) => prop_assert_eq!(result, Err(SchedulerError::RoundOpen(open))),
                    (None, Err(e)) => prop_assert!(matches!(e, SchedulerError::NoPool(_)), "{e}"),
                    (None, Ok(plan)) => self.check_plan(&plan, &active)?,
                }
            }
            Event::BeginAgain => {
                if let (None, Some(last)) = (self.open_round(), self.s.last_begun()) {
                    let result = self.s.begin_round(last, &BTreeSet::from([Task::Seg]), self.now);
                    prop_assert_eq!(result, Err(SchedulerError::RoundNotAfter { round: last, last }));
                }
            }
            Event::Push(_, _) | Event::PushParticipant(_) => {
                let (id, round) = match (event, self.s.open_round()) {
                    (Event::PushParticipant(pick), Some(plan)) => {
                        let participants: Vec<WorkerId> = plan.participants().map(|(id, _)| id).collect();
                        (participants[usize::from(*pick) % participants.len()], plan.round)
                    }
                    (Event::Push(pick, delta), _) => {
                        let base = self.open_round().or(self.s.last_begun()).unwrap_or(0);
                        (self.worker(*pick), base.saturating_add_signed(i64::from(*delta)))
                    }
                    _ => return Ok(()),
                };
                let verdict = self.s.push(id, round);
                self.trace.push(format!("{verdict:?}"));
                if verdict.is_accepted() {
                    // (c) never accepted twice for the same (worker, round).
                    prop_assert!(self.accepted.insert((id, round)), "{id} accepted twice for round {round}");
                    prop_assert_eq!(self.open_round(), Some(round));
                    prop_assert!(self.s.membership().is_live(id));
                    // (d) a worker that joined after the round began is not in it.
                    prop_assert_ne!(self.joined_during.get(&id), Some(&Some(round)));
                }
            }
            Event::Finish => {
                let status = self.s.round_status(self.now);
                let round = self.open_round();
                let result = self.s.finish_round(self.now);
                self.trace.push(format!("{result:?}"));
                match (round, status) {
                    (None, _) => prop_assert_eq!(result, Err(SchedulerError::NoOpenRound)),
                    (Some(r), Some(status)) if status.is_over() => {
                        let finished = result.unwrap();
                        let merged: BTreeSet<(WorkerId, u64)> = finished.merged.iter().map(|&id| (id, r)).collect();
                        let accepted: BTreeSet<(WorkerId, u64)> =
                            self.accepted.iter().copied().filter(|&(_, round)| round == r).collect();
                        prop_assert_eq!(merged, accepted, "exactly the accepted updates are merged");
                        prop_assert!(self.s.open_round().is_none());
                    }
                    (Some(r), Some(status)) => {
                        prop_assert_eq!(result, Err(SchedulerError::NotOver { round: r, status }))
                    }
                    (Some(_), None) => prop_assert!(false, "an open round has a status"),
                }
            }
            Event::Abandon => {
                let round = self.open_round();
                let result = self.s.abandon_round();
                self.trace.push(format!("{result:?}"));
                prop_assert_eq!(result.ok(), round);
            }
        }
        self.check_state()
    }

    /// (a) coverage by live workers of the right task, (b) balance, (d) no
    /// newcomer, (e) the lost workers' images re-planned.
    fn check_plan(&mut self, plan: &RoundPlan, active: &BTreeSet<Task>) -> Result<(), TestCaseError> {
        prop_assert_eq!(plan.tasks.keys().copied().collect::<BTreeSet<_>>(), active.clone());
        for group in plan.tasks.values() {
            let pool: Vec<usize> = self.s.pools().get(group.task).unwrap().to_vec();
            let live = self.s.membership().live(group.task);
            prop_assert_eq!(&group.live, &live);
            let mut covered: Vec<usize> = group.shards.values().flatten().copied().collect();
            covered.sort_unstable();
            if live.is_empty() {
                prop_assert!(covered.is_empty());
            } else {
                prop_assert_eq!(&covered, &pool, "every image exactly once");
            }
            for id in group.shards.keys() {
                let worker = self.s.membership().get(*id).unwrap();
                prop_assert!(worker.is_live() && worker.task == group.task);
                prop_assert!(!self.gone.contains(id));
            }
            let sizes: Vec<usize> = live.iter().map(|id| group.shards.get(id).map_or(0, Vec::len)).collect();
            if let (Some(max), Some(min)) = (sizes.iter().max(), sizes.iter().min()) {
                prop_assert!(max - min <= 1, "balanced: {sizes:?}");
            }
            prop_assert_eq!(group.ready, group.shards.len() >= plan.min_workers);
        }
        if !plan.is_ready() {
            prop_assert!(self.s.open_round().is_none(), "a waiting plan opens nothing");
            return Ok(());
        }
        prop_assert_eq!(self.s.open_round(), Some(plan));
        for (id, _) in plan.participants() {
            prop_assert_ne!(self.joined_during.get(&id), Some(&Some(plan.round)));
        }
        for group in plan.tasks.values() {
            if let Some(orphans) = self.orphans.remove(&group.task) {
                let covered: BTreeSet<usize> = group.shards.values().flatten().copied().collect();
                prop_assert!(orphans.is_subset(&covered), "a lost worker's images go to the live ones");
            }
            for (id, shard) in &group.shards {
                self.last_shard.insert(*id, (group.task, shard.clone()));
            }
        }
        Ok(())
    }

    /// (g) the barrier's verdict is the one its definition gives, recomputed
    /// here from sets.
    fn check_state(&self) -> Result<(), TestCaseError> {
        let (Some(plan), Some(pushed)) = (self.s.open_round(), self.s.pushed()) else {
            return Ok(());
        };
        let members = self.s.membership();
        let mut pending = BTreeSet::new();
        let mut short = BTreeSet::new();
        let mut every_task_has_its_minimum = true;
        for group in plan.tasks.values() {
            let participants: BTreeSet<WorkerId> = group.shards.keys().copied().collect();
            let done = participants.intersection(pushed).count();
            let waiting: BTreeSet<WorkerId> =
                participants.difference(pushed).copied().filter(|id| members.is_live(*id)).collect();
            if done + waiting.len() < plan.min_workers {
                short.insert(group.task);
            }
            every_task_has_its_minimum &= done >= plan.min_workers;
            pending.extend(waiting);
        }
        let expected = if !short.is_empty() {
            RoundStatus::Stalled { short }
        } else if pending.is_empty() {
            RoundStatus::Complete
        } else if self.now >= plan.deadline && every_task_has_its_minimum {
            RoundStatus::TimedOut { stragglers: pending }
        } else {
            RoundStatus::Waiting { pending }
        };
        prop_assert_eq!(self.s.round_status(self.now), Some(expected));
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_property_holds_after_every_event(scenario in scenario()) {
        let mut run = Run::new(&scenario);
        for event in &scenario.events {
            run.apply(event)?;
        }
    }

    #[test]
    fn the_same_events_give_the_same_plans_and_verdicts(scenario in scenario()) {
        let mut first = Run::new(&scenario);
        let mut second = Run::new(&scenario);
        for event in &scenario.events {
            first.apply(event)?;
            second.apply(event)?;
        }
        prop_assert_eq!(&first.trace, &second.trace);
        prop_assert_eq!(&first.s, &second.s);
    }
}
