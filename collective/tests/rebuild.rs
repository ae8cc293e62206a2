//! Losing a worker: the survivors' all-reduce fails (the in-process backend
//! times out where NCCL would hang until aborted), the coordinator's next
//! round names a new generation over the live workers (new id, dense ranks),
//! the survivors drop the old communicator and join the new one without
//! restarting, and a member that joins is brought to the group's state.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use dmtl_collective::group::{Communicator, Groups, Membership, UniqueId};
use dmtl_collective::local::{local_group, LocalCollective};
use dmtl_collective::sync::broadcast_state;
use dmtl_collective::{all_reduce_merge, Collective, CollectiveError, MergeLayout};
use dmtl_core::config::TrainConfig;
use dmtl_core::optim::Optimizer;
use dmtl_core::train::{apply, compute_update, merge};
use tch::{Device, Tensor};

/// Stands in for NCCL's bootstrap: the members of each generation, taken by rank.
struct Fabric(Mutex<BTreeMap<u64, Vec<Option<LocalCollective>>>>);

impl Fabric {
    fn join(&self, m: &Membership) -> Result<LocalCollective, String> {
        let mut gens = self.0.lock().unwrap();
        let members = gens.entry(m.generation).or_insert_with(|| {
            local_group(m.world_size as usize, Duration::from_millis(300)).into_iter().map(Some).collect()
        });
        members[m.rank as usize].take().ok_or_else(|| format!("rank {} joined twice", m.rank))
    }
}

#[test]
fn survivors_rebuild_the_group_with_dense_ranks_and_merge_again() {
    let fabric = Fabric(Mutex::new(BTreeMap::new()));
    let mut groups = Groups::default();
    let m = model(1);
    let teacher = model(2);
    let layout = MergeLayout::of(&m);
    let workers = [(SEG, 2), (SEG, 2), (DEPTH, 2)];
    let names = ["depth-0", "seg-0", "seg-1"];

    // Generation 1 over three workers; depth-0 (rank 0) dies before the collective.
    let g1 = groups.for_round(&names, || Ok::<_, ()>(UniqueId([1; 128]))).unwrap().clone();
    let ups = updates(&m, &teacher, &workers, 1);
    let mut comms: Vec<Communicator<LocalCollective>> = (0..3).map(|_| Communicator::default()).collect();
    let errors: Vec<CollectiveError> = std::thread::scope(|s| {
        let handles: Vec<_> = comms
            .iter_mut()
            .zip(names)
            .zip(ups)
            .filter(|((_, name), _)| *name != "depth-0")
            .map(|((comm, name), u)| {
                let (fabric, layout, membership) = (&fabric, &layout, g1.membership(name).unwrap());
                s.spawn(move || {
                    let c = comm.ensure(membership, |m| fabric.join(m)).unwrap();
                    let e = all_reduce_merge(c, layout, &u, Device::Cpu).unwrap_err();
                    comm.abort();
                    e
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        errors.iter().all(|e| matches!(e, CollectiveError::Timeout { .. } | CollectiveError::Aborted { .. })),
        "{errors:?}"
    );

    // The next round: generation 2 over the survivors, ranks 0 and 1.
    let live = ["seg-0", "seg-1"];
    let g2 = groups.for_round(&live, || Ok::<_, ()>(UniqueId([2; 128]))).unwrap().clone();
    assert_eq!((g2.generation, g2.world_size()), (2, 2));
    assert_ne!(g2.unique_id, g1.unique_id);
    assert_eq!((g2.rank_of("seg-0"), g2.rank_of("seg-1")), (Some(0), Some(1)));

    let ups = updates(&m, &teacher, &workers[..2], 2);
    let want = merge(&ups.iter().collect::<Vec<_>>()).unwrap();
    let want: BTreeMap<String, Tensor> = want.grads;
    let merged: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = comms[1..]
            .iter_mut()
            .zip(live)
            .zip(ups)
            .map(|((comm, name), u)| {
                let (fabric, layout, membership) = (&fabric, &layout, g2.membership(name).unwrap());
                s.spawn(move || {
                    let c = comm.ensure(membership, |m| fabric.join(m)).unwrap();
                    assert_eq!(c.world_size(), 2);
                    all_reduce_merge(c, layout, &u, Device::Cpu).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for got in &merged {
        for (name, w) in &want {
            assert!(got.grads[name].allclose(w, 1e-5, 1e-6, false), "{name}");
        }
    }
    assert!(comms[1..].iter().all(|c| c.generation() == Some(2)));
}

type State = (BTreeMap<String, Tensor>, BTreeMap<String, Tensor>);

fn state_of(m: &dmtl_core::model::Model, opt: &Optimizer) -> State {
    (m.variables().into_iter().map(|(n, t)| (n, t.copy())).collect(), opt.state_tensors())
}

#[test]
fn a_joining_member_receives_the_weights_and_optimizer_state_of_the_source() {
    let config = TrainConfig::default();
    // Rank 0 survived three steps; rank 1 joins with other weights and no optimizer state.
    let history: Vec<_> = (0..3).map(|step| batch(2, step)).collect();
    let next = [batch(2, 9), batch(2, 9)];
    let group = local_group(2, Duration::from_secs(30));
    // Each member: (state after the broadcast, state after one more identical step).
    let states: Vec<(State, State)> = std::thread::scope(|s| {
        let handles: Vec<_> = group
            .into_iter()
            .zip(next)
            .zip([history, Vec::new()])
            .map(|((c, next), history)| {
                let config = &config;
                s.spawn(move || {
                    let teacher = model(2);
                    let m = model(if c.rank() == 0 { 1 } else { 5 });
                    let mut opt = Optimizer::new(config);
                    for b in &history {
                        let u = compute_update(&m, b, &SEG_DISTILL, DISTILL, Some(&teacher)).unwrap();
                        apply(&m, &mut opt, &u, 1e-2);
                    }
                    broadcast_state(&c, 0, &m, &mut opt, Device::Cpu).unwrap();
                    let after_broadcast = state_of(&m, &opt);
                    let u = compute_update(&m, &next, &SEG_DISTILL, DISTILL, Some(&teacher)).unwrap();
                    apply(&m, &mut opt, &u, 1e-2);
                    (after_broadcast, state_of(&m, &opt))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let same = |x: &BTreeMap<String, Tensor>, y: &BTreeMap<String, Tensor>, what: &str| {
        assert!(!x.is_empty(), "{what}: empty");
        assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{what}");
        for (n, t) in x {
            assert!(t.to_kind(tch::Kind::Double).equal(&y[n].to_kind(tch::Kind::Double)), "{what}: {n}");
        }
    };
    let ((w0, o0), (w0n, o0n)) = &states[0];
    let ((w1, o1), (w1n, o1n)) = &states[1];
    same(w0, w1, "weights");
    same(o0, o1, "optimizer state");
    same(w0n, w1n, "weights after a step");
    same(o0n, o1n, "optimizer state after a step");
}
