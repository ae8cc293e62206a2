//! The `nccl` plane's merge (one sum all-reduce of weighted parts) equals the
//! `grpc` plane's (`core::train::merge` on the coordinator), for every
//! method's workers; and replicas that each apply the all-reduced update
//! train the same weights as the coordinator's merge + apply. Run on the
//! in-process backend, so on CPU.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use dmtl_collective::local::local_group;
use dmtl_collective::{all_reduce_merge, Collective, MergeLayout};
use dmtl_core::config::TrainConfig;
use dmtl_core::optim::Optimizer;
use dmtl_core::train::{apply, compute_update, merge, Update};
use tch::{Device, Tensor};

/// Every worker's all-reduced merge, each computed on its own thread.
fn all_reduce_each(layout: &MergeLayout, updates: Vec<Update>) -> Vec<Update> {
    let group = local_group(updates.len(), Duration::from_secs(30));
    std::thread::scope(|s| {
        let handles: Vec<_> = group
            .into_iter()
            .zip(updates)
            .map(|(c, u)| s.spawn(move || all_reduce_merge(&c, layout, &u, Device::Cpu).expect("merge")))
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

fn assert_same_tensors(what: &str, got: &BTreeMap<String, Tensor>, want: &BTreeMap<String, Tensor>) {
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}: names");
    for (name, w) in want {
        let g = &got[name];
        assert_eq!(g.size(), w.size(), "{what}: {name}");
        let diff = (g - w).abs().max().double_value(&[]);
        let scale = w.abs().max().double_value(&[]).max(1e-3);
        assert!(diff <= 1e-5 * scale, "{what}: {name} differs by {diff} (scale {scale})");
    }
}

#[test]
fn the_all_reduced_merge_equals_the_coordinators_merge_for_every_method() {
    let m = model(1);
    let teacher = model(2);
    let layout = MergeLayout::of(&m);
    for (seed, (method, workers)) in methods().into_iter().enumerate() {
        let ups = updates(&m, &teacher, &workers, seed as i64);
        let want = merge(&ups.iter().collect::<Vec<_>>()).unwrap();
        for (rank, got) in all_reduce_each(&layout, ups).iter().enumerate() {
            let what = format!("{method}, rank {rank}");
            assert_same_tensors(&what, &got.grads, &want.grads);
            assert_same_tensors(&what, &got.buffers, &want.buffers);
            assert_eq!(got.samples, want.samples, "{what}");
            let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                (a, b) => a.is_none() && b.is_none(),
            };
            let (g, w) = (&got.losses, &want.losses);
            assert!(
                close(g.seg, w.seg)
                    && close(g.depth, w.depth)
                    && close(g.distill_seg, w.distill_seg)
                    && close(g.distill_depth, w.distill_depth)
                    && close(Some(g.total), Some(w.total)),
                "{what}: losses {g:?} vs {w:?}"
            );
        }
    }
}

#[test]
fn a_worker_without_images_contributes_nothing() {
    let m = model(1);
    let teacher = model(2);
    let layout = MergeLayout::of(&m);
    let mut ups = updates(&m, &teacher, &[(SEG, 2), (DEPTH, 2)], 7);
    let want = merge(&ups.iter().collect::<Vec<_>>()).unwrap();
    ups.push(Update { grads: BTreeMap::new(), buffers: BTreeMap::new(), samples: 0, losses: Default::default() });
    let got = all_reduce_each(&layout, ups);
    assert_same_tensors("idle third worker", &got[2].grads, &want.grads);
}

#[test]
fn an_update_with_a_tensor_the_model_lacks_is_refused_before_the_collective() {
    let m = model(1);
    let layout = MergeLayout::of(&m);
    let group = local_group(1, Duration::from_secs(1));
    let mut grads = BTreeMap::new();
    grads.insert("encoder.nope".to_string(), Tensor::zeros([1], (tch::Kind::Float, Device::Cpu)));
    let u = Update { grads, buffers: BTreeMap::new(), samples: 1, losses: Default::default() };
    let e = all_reduce_merge(&group[0], &layout, &u, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("encoder.nope"), "{e}");
}

/// A few sync-SGD steps of `masked-distill` (both heads trained by both task
/// groups, Adam): the grpc plane (the coordinator merges and applies) against
/// the nccl plane (every replica all-reduces and applies with its own optimizer).
#[test]
fn replicas_that_apply_the_all_reduced_update_train_the_coordinators_weights() {
    const STEPS: i64 = 4;
    let workers = [(SEG_DISTILL, 2), (DEPTH_DISTILL, 3)];
    let config = TrainConfig::default();
    let lr = 1e-2;

    // grpc plane: one model, merge + apply.
    let reference = model(1);
    let teacher = model(2);
    let mut opt = Optimizer::new(&config);
    for step in 0..STEPS {
        let ups = updates(&reference, &teacher, &workers, step);
        apply(&reference, &mut opt, &merge(&ups.iter().collect::<Vec<_>>()).unwrap(), lr);
    }

    // nccl plane: one replica per worker, same seed, own optimizer.
    let layout = MergeLayout::of(&reference);
    let group = local_group(workers.len(), Duration::from_secs(60));
    let mut per_step: Vec<Vec<_>> = (0..STEPS).map(|step| batches(&workers, step)).collect();
    let replicas: Vec<BTreeMap<String, Tensor>> = std::thread::scope(|s| {
        let handles: Vec<_> = group
            .into_iter()
            .rev()
            .map(|c| {
                // This worker's images of every step (taken from the back: ranks in reverse).
                let mine: Vec<_> = per_step.iter_mut().map(|b| b.pop().expect("one batch per worker")).collect();
                let (layout, config, losses) = (&layout, &config, workers[c.rank()].0);
                s.spawn(move || {
                    let replica = model(1);
                    let teacher = model(2);
                    let mut opt = Optimizer::new(config);
                    for b in &mine {
                        let u = compute_update(&replica, b, &losses, DISTILL, Some(&teacher)).unwrap();
                        let merged = all_reduce_merge(&c, layout, &u, Device::Cpu).unwrap();
                        apply(&replica, &mut opt, &merged, lr);
                    }
                    replica.variables().into_iter().map(|(n, t)| (n, t.copy())).collect()
                })
            })
            .collect();
        let mut out: Vec<_> = handles.into_iter().map(|h| h.join().expect("replica")).collect();
        out.reverse();
        out
    });
    let want = reference.variables();
    for (rank, got) in replicas.iter().enumerate() {
        for (name, w) in &want {
            let diff = (&got[name] - w).abs().max().double_value(&[]);
            assert!(diff <= 1e-4, "rank {rank}: {name} differs from the grpc plane by {diff}");
        }
    }
    for (name, t) in &replicas[0] {
        assert!(t.equal(&replicas[1][name]), "replicas disagree on {name}");
    }
}
