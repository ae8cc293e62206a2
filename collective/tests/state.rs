//! What the nccl plane's rounds need beyond the merge: the training state as
//! one buffer (rank 0 → coordinator → a group without a holder), the teacher
//! copied to new members, and the in-process backend that the service tests
//! select through the test hook (rendezvous by unique id, abort from outside).

mod common;

use std::time::{Duration, Instant};

use common::*;
use dmtl_collective::backend::Backend;
use dmtl_collective::group::{Membership, UniqueId};
use dmtl_collective::local::local_group;
use dmtl_collective::sync::broadcast_teacher;
use dmtl_collective::CollectiveError;
use dmtl_core::config::{DistillConfig, TeacherKind, TrainConfig};
use dmtl_core::method::Teacher;
use dmtl_core::model::Model;
use dmtl_core::optim::Optimizer;
use dmtl_core::train::state_bytes::{encode_state, load_state};
use dmtl_core::train::{apply, merge};
use tch::{Device, Tensor};

fn max_diff(a: &Model, b: &Model) -> f64 {
    let (a, b) = (a.variables(), b.variables());
    a.iter().map(|(n, t)| (t - &b[n]).abs().max().double_value(&[])).fold(0.0, f64::max)
}

fn teacher_of(m: &Model) -> Teacher {
    let config = dmtl_core::config::ModelConfig { width: 4, blocks: vec![1, 1], decoder_ratio: 1.0 };
    Teacher::new(m, &config, &DistillConfig { teacher: TeacherKind::Ema, ema_decay: 0.9, ..Default::default() })
}

/// A model, its optimizer after one step, and a teacher refreshed at step 7.
fn trained(seed: u64) -> (Model, Optimizer, Teacher) {
    let m = model(seed);
    let mut teacher = teacher_of(&model(seed + 100));
    let mut opt = Optimizer::new(&TrainConfig::default());
    let ups = updates(&m, &teacher.model, &[(SEG, 2), (DEPTH, 2)], seed as i64);
    apply(&m, &mut opt, &merge(&ups.iter().collect::<Vec<_>>()).unwrap(), 0.01);
    teacher.refresh(&m, 7);
    (m, opt, teacher)
}

#[test]
fn the_training_state_travels_as_one_buffer_and_a_bad_one_changes_nothing() {
    let (m, opt, teacher) = trained(1);
    let bytes = encode_state(&m, &opt, Some(&teacher)).unwrap();

    let (other, mut other_opt, mut other_teacher) =
        (model(2), Optimizer::new(&TrainConfig::default()), teacher_of(&model(3)));
    load_state(&bytes, &other, &mut other_opt, Some(&mut other_teacher)).unwrap();
    assert_eq!(max_diff(&m, &other), 0.0);
    assert_eq!(max_diff(&teacher.model, &other_teacher.model), 0.0);
    assert_eq!(other_teacher.refreshed_at, 7);
    let (a, b) = (opt.state_tensors(), other_opt.state_tensors());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(a.iter().all(|(n, t)| (t - &b[n]).abs().max().double_value(&[]) == 0.0));

    // A NaN anywhere: refused, naming the tensor, and nothing is loaded.
    let mut poisoned = m.variables();
    let name = poisoned.keys().next().unwrap().clone();
    poisoned.insert(name.clone(), poisoned[&name].full_like(f64::NAN));
    let (third, mut third_opt) = (model(4), Optimizer::new(&TrainConfig::default()));
    let before = model(4);
    let nan = model(1);
    nan.load_tensors(&poisoned).unwrap();
    let bad = encode_state(&nan, &opt, None).unwrap();
    let e = load_state(&bad, &third, &mut third_opt, None).unwrap_err().to_string();
    assert!(e.contains(&name) && e.contains("NaN"), "{e}");
    assert_eq!(max_diff(&third, &before), 0.0);
    assert!(third_opt.state_tensors().is_empty());
}

#[test]
fn a_new_member_gets_the_sources_teacher_and_its_refresh_step() {
    let (_, _, mut source) = trained(1);
    let mut joining = teacher_of(&model(9));
    let group = local_group(2, Duration::from_secs(10));
    std::thread::scope(|s| {
        let (ca, cb, src) = (&group[0], &group[1], &mut source);
        let h = s.spawn(move || broadcast_teacher(ca, 0, src, Device::Cpu).unwrap());
        broadcast_teacher(cb, 0, &mut joining, Device::Cpu).unwrap();
        h.join().unwrap();
    });
    assert_eq!(max_diff(&source.model, &joining.model), 0.0);
    assert_eq!(joining.refreshed_at, 7);
}

#[test]
fn the_in_process_backend_meets_by_unique_id_and_is_aborted_from_outside() {
    let backend = Backend::InProcess { timeout: Duration::from_secs(30) };
    let id = backend.new_unique_id().unwrap();
    assert_ne!(id, backend.new_unique_id().unwrap(), "every generation gets its own id");
    let member = |rank| Membership { generation: 1, unique_id: id, rank, world_size: 2 };
    let sums: Vec<f32> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2u32)
            .map(|rank| {
                s.spawn(move || {
                    let j = backend.join(Device::Cpu, &member(rank)).unwrap();
                    let mut t = Tensor::from_slice(&[rank as f32 + 1.0]);
                    j.collective.all_reduce_sum(&mut t).unwrap();
                    t.double_value(&[0]) as f32
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sums, vec![3.0, 3.0]);

    // A member waiting on one that never comes: the abort handle ends it at once.
    let lone = Membership { generation: 2, unique_id: UniqueId([7; 128]), rank: 0, world_size: 2 };
    let j = backend.join(Device::Cpu, &lone).unwrap();
    let abort = j.abort.clone();
    let started = Instant::now();
    let e = std::thread::scope(|s| {
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            abort();
        });
        j.collective.all_reduce_sum(&mut Tensor::from_slice(&[1.0f32])).unwrap_err()
    });
    assert!(matches!(e, CollectiveError::Aborted { rank: 0 }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
