//! The coordinator's gRPC services, in-process on 127.0.0.1:0: the round trip
//! of a snapshot and an update, every rejection, tensors above 64 MB, status
//! and watch during a run, health, and the equivalence of one seg + one depth
//! worker over gRPC with single-process training.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use dmtl_coordinator::engine::EngineEnd;
use dmtl_coordinator::{Coordinator, TlsFiles};
use dmtl_core::checkpoint::Checkpoint;
use dmtl_core::config::Config;
use dmtl_core::model::Model;
use dmtl_core::train::wire::{encode_update, load_weights};
use dmtl_core::train::{train, LossValues, Silent, Update};
use dmtl_proto::v1::{self, monitor_client::MonitorClient, UpdateChunk};
use dmtl_proto::{chunk_messages, receive};
use dmtl_worker::client::{channel, client, BearerToken, Client};
use dmtl_worker::WorkerTask;
use tch::{Device, Kind, Tensor};
use tonic::Code;

mod common;
use common::*;

fn rpc(c: &Coordinator) -> Client {
    client(&url(c), None, TOKEN).unwrap()
}

async fn register(client: &mut Client, task: v1::Task) -> String {
    let r = client
        .register(v1::RegisterRequest {
            task: task as i32,
            device: "cpu".into(),
            host: "test".into(),
            threads: 1,
            version: env!("CARGO_PKG_VERSION").into(),
            previous_worker_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    r.worker_id
}

async fn wait_round(client: &mut Client, worker: &str, last: u64) -> v1::RoundInfo {
    loop {
        let info = client
            .wait_round(v1::WaitRoundRequest { worker_id: worker.into(), last_round: last, max_wait_ms: 5000 })
            .await
            .unwrap()
            .into_inner();
        if info.plan.is_some() || info.finished {
            return info;
        }
    }
}

async fn pull(client: &mut Client, worker: &str, kind: v1::SnapshotKind, version: u64) -> Bytes {
    let mut s = client
        .pull_snapshot(v1::PullSnapshotRequest { worker_id: worker.into(), kind: kind as i32, version })
        .await
        .unwrap()
        .into_inner();
    receive(&mut s, 1 << 40).await.unwrap().1
}

async fn push(
    client: &mut Client,
    worker: &str,
    info: &v1::RoundInfo,
    payload: Vec<u8>,
    samples: u64,
) -> Result<v1::PushUpdateResponse, tonic::Status> {
    let header = v1::UpdateHeader {
        worker_id: worker.into(),
        round: info.round,
        weights_version: info.weights_version,
        samples,
        kind: v1::UpdateKind::Gradients as i32,
        losses: Some(v1::TrainLosses { total: 1.0, ..Default::default() }),
        encoding: v1::PayloadEncoding::Safetensors as i32,
    };
    let messages = chunk_messages::<UpdateChunk>(header, Bytes::from(payload), 1 << 20);
    client.push_update(tokio_stream::iter(messages)).await.map(|r| r.into_inner())
}

/// A model shaped like the run's, holding `weights`.
fn model_of(config: &Config, weights: &[u8]) -> Model {
    let m = Model::new(&config.model, config.data.classes.num_classes(), Device::Cpu, 0);
    load_weights(weights, &m).unwrap();
    m
}

/// An update with a gradient of `value` for every parameter.
fn update_of(model: &Model, value: f64, samples: usize) -> Update {
    let grads: BTreeMap<String, Tensor> =
        model.parameters().iter().map(|(n, p)| (n.clone(), p.detach().zeros_like() + value)).collect();
    Update { grads, buffers: BTreeMap::new(), samples, losses: LossValues { total: 1.0, ..Default::default() } }
}

#[test]
fn a_worker_pulls_the_weights_and_its_update_is_merged_into_the_next_version() {
    runtime().block_on(async {
        let run = tempfile::tempdir().unwrap();
        let mut cfg = config("full", 2, "");
        cfg.distributed.heartbeat_timeout_ms = 600_000; // this test's client sends no heartbeats
        let coord = start(cfg.clone(), run.path()).await;
        let mut c = rpc(&coord);
        let worker = register(&mut c, v1::Task::Both).await;
        let info = wait_round(&mut c, &worker, 0).await;
        assert_eq!(info.round, 1);
        let plan = info.plan.clone().unwrap();
        assert_eq!((plan.first_step, plan.steps, plan.parts.len()), (0, 1, 1));
        assert_eq!(plan.parts[0].count, 4, "one worker computes the whole batch");
        let shards = info.shards.clone().expect("the first round carries the shard");
        assert_eq!(shards.shards[0].indices.len(), 24, "full: every training image");

        let weights = pull(&mut c, &worker, v1::SnapshotKind::Weights, info.weights_version).await;
        let model = model_of(&cfg, &weights);
        let update = update_of(&model, 0.5, 4);
        let r = push(&mut c, &worker, &info, encode_update(&update).unwrap(), 4).await.unwrap();
        assert!(r.accepted, "{}", r.reason);

        let next = wait_round(&mut c, &worker, info.round).await;
        assert_eq!(next.round, 2);
        assert_eq!(next.weights_version, info.weights_version + 1);
        assert!(next.shards.is_none(), "an unchanged shard is not sent again");
        let merged = pull(&mut c, &worker, v1::SnapshotKind::Weights, next.weights_version).await;
        let after = model_of(&cfg, &merged);
        let moved =
            model.parameters().into_iter().map(|(n, p)| (p - &after.parameters()[&n]).abs().max().double_value(&[]));
        assert!(moved.fold(0.0, f64::max) > 1e-4, "the merged step moved the weights");
        coord.stop();
        let _ = coord.wait().await;
    });
}

#[test]
fn every_bad_request_is_refused_with_a_status_that_says_why_and_the_model_is_unchanged() {
    runtime().block_on(async {
        let run = tempfile::tempdir().unwrap();
        let mut cfg = config("full", 3, "");
        cfg.distributed.heartbeat_timeout_ms = 600_000; // this test's client sends no heartbeats
        let coord = start(cfg.clone(), run.path()).await;

        // No token, wrong token.
        let plain = dmtl_proto::v1::coordinator_client::CoordinatorClient::new(channel(&url(&coord), None).unwrap());
        let req = || v1::RegisterRequest {
            task: v1::Task::Both as i32,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        assert_eq!(plain.clone().register(req()).await.unwrap_err().code(), Code::Unauthenticated);
        let mut wrong = client(&url(&coord), None, "not-the-token").unwrap();
        let err = wrong.register(req()).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err}");
        let mut monitor = MonitorClient::new(channel(&url(&coord), None).unwrap());
        assert_eq!(monitor.get_status(v1::GetStatusRequest {}).await.unwrap_err().code(), Code::Unauthenticated);

        let mut c = rpc(&coord);
        // A task the method does not train; an unspecified task; another version.
        let seg = c.register(v1::RegisterRequest { task: v1::Task::Seg as i32, ..req() }).await.unwrap_err();
        assert_eq!(seg.code(), Code::InvalidArgument);
        assert!(seg.message().contains("task `seg`"), "{}", seg.message());
        let none = c.register(v1::RegisterRequest { task: 0, ..req() }).await.unwrap_err();
        assert!(none.message().contains("`task`"), "{}", none.message());
        let old = c.register(v1::RegisterRequest { version: "0.0.1".into(), ..req() }).await.unwrap_err();
        assert_eq!(old.code(), Code::FailedPrecondition);

        let worker = register(&mut c, v1::Task::Both).await;
        let info = wait_round(&mut c, &worker, 0).await;
        let weights = pull(&mut c, &worker, v1::SnapshotKind::Weights, info.weights_version).await;
        let model = model_of(&cfg, &weights);
        let good = update_of(&model, 0.1, 4);

        let mut nan = update_of(&model, 0.1, 4);
        let first = nan.grads.keys().next().unwrap().clone();
        nan.grads.insert(first.clone(), nan.grads[&first].full_like(f64::NAN));
        let mut shape = update_of(&model, 0.1, 4);
        shape.grads.insert(first.clone(), Tensor::zeros([3], (Kind::Float, Device::Cpu)));
        let mut unknown = update_of(&model, 0.1, 4);
        unknown.grads.insert("encoder.no_such_layer.weight".into(), Tensor::zeros([3], (Kind::Float, Device::Cpu)));
        let mut dtype = update_of(&model, 0.1, 4);
        dtype.grads.insert(first.clone(), dtype.grads[&first].to_kind(Kind::Double));
        for (what, update, needle) in [
            ("NaN", &nan, "NaN"),
            ("wrong shape", &shape, "shape"),
            ("unknown parameter", &unknown, "not a parameter"),
            ("wrong dtype", &dtype, "dtype"),
        ] {
            let err = push(&mut c, &worker, &info, encode_update(update).unwrap(), 4).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err}");
            assert!(err.message().contains(needle), "{what}: {}", err.message());
        }
        let err = push(&mut c, &worker, &info, b"not safetensors".to_vec(), 4).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "garbage: {err}");
        let err = push(&mut c, &worker, &info, encode_update(&good).unwrap(), 5).await.unwrap_err();
        assert!(err.message().contains("samples"), "a header that lies about its samples: {}", err.message());
        let err = push(&mut c, "both-77.0000", &info, encode_update(&good).unwrap(), 4).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "unknown worker: {err}");
        let stale = v1::RoundInfo { round: info.round + 5, ..info.clone() };
        let r = push(&mut c, &worker, &stale, encode_update(&good).unwrap(), 4).await.unwrap();
        assert!(!r.accepted && r.reason.contains("closed"), "a round that is not open: {}", r.reason);

        // Nothing above touched the model.
        let status = coord.hub.status();
        assert_eq!(status.run.step, 0);
        let again = pull(&mut c, &worker, v1::SnapshotKind::Weights, info.weights_version).await;
        assert_eq!(again, weights, "the published weights are unchanged");

        // The good update is merged once; a second copy is refused.
        let r = push(&mut c, &worker, &info, encode_update(&good).unwrap(), 4).await.unwrap();
        assert!(r.accepted, "{}", r.reason);
        let r = push(&mut c, &worker, &info, encode_update(&good).unwrap(), 4).await.unwrap();
        assert!(!r.accepted, "a duplicate is never merged twice");
        let next = wait_round(&mut c, &worker, info.round).await;
        assert_eq!(next.weights_version, info.weights_version + 1);
        let err = c
            .pull_snapshot(v1::PullSnapshotRequest {
                worker_id: worker.clone(),
                kind: v1::SnapshotKind::Weights as i32,
                version: info.weights_version,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Aborted, "a superseded version: {err}");
        assert_eq!(coord.hub.status().run.step, 1);
        coord.stop();
        let _ = coord.wait().await;
    });
}

#[test]
fn a_snapshot_and_an_update_above_64_mb_travel_through_the_services_in_chunks() {
    runtime().block_on(async {
        let run = tempfile::tempdir().unwrap();
        let mut cfg = config("full", 1, "");
        cfg.model.width = 300;
        cfg.distributed.heartbeat_timeout_ms = 600_000; // this test's client sends no heartbeats
        cfg.train.eval_every = 100;
        let coord = start(cfg.clone(), run.path()).await;
        let mut c = rpc(&coord);
        let worker = register(&mut c, v1::Task::Both).await;
        let info = wait_round(&mut c, &worker, 0).await;
        let weights = pull(&mut c, &worker, v1::SnapshotKind::Weights, info.weights_version).await;
        assert!(weights.len() > 64 << 20, "the snapshot is {} bytes", weights.len());
        let model = model_of(&cfg, &weights);
        let payload = encode_update(&update_of(&model, 0.01, 4)).unwrap();
        assert!(payload.len() > 64 << 20, "the update is {} bytes", payload.len());
        let r = push(&mut c, &worker, &info, payload, 4).await.unwrap();
        assert!(r.accepted, "{}", r.reason);
        let end = coord.wait().await.unwrap();
        assert!(matches!(end, EngineEnd::Finished(_)));
    });
}

#[test]
fn one_seg_and_one_depth_worker_over_grpc_reproduce_single_process_masked_training() {
    const STEPS: usize = 10;
    let cfg = config("masked", STEPS, "");
    let single = tempfile::tempdir().unwrap();
    train(&cfg, single.path(), false, &mut Silent).unwrap();
    let expected = checkpoint(single.path(), STEPS);

    let run = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let coord = start(cfg.clone(), run.path()).await;
        for summary in seg_and_depth_to_the_end(coord).await {
            assert_eq!(summary.rounds, STEPS as u64, "every round merged this worker's update once");
        }
    });
    let got = checkpoint(run.path(), STEPS);
    let worst = worst_diff(&expected.model, &got.model);
    assert!(worst.0 <= 1e-4, "`{}` differs by {}", worst.1, worst.0);
    assert_eq!(got.state.draws, expected.state.draws, "the draw counters continue the same way");
    for file in ["config.toml", "split.json", "metrics.jsonl", "final.json"] {
        assert!(run.path().join(file).exists(), "{file}");
    }
    let single_metrics = std::fs::read_to_string(single.path().join("metrics.jsonl")).unwrap();
    let dist_metrics = std::fs::read_to_string(run.path().join("metrics.jsonl")).unwrap();
    assert_eq!(single_metrics.lines().count(), dist_metrics.lines().count());
}

#[test]
fn status_watch_health_and_prometheus_follow_a_run() {
    runtime().block_on(async {
        let run = tempfile::tempdir().unwrap();
        let cfg = config("alternate", 8, "");
        let coord = start(cfg.clone(), run.path()).await;
        let ch = channel(&url(&coord), None).unwrap();

        let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
        for service in ["", "dmtl.v1.Coordinator"] {
            let r = health
                .check(tonic_health::pb::HealthCheckRequest { service: service.into() })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
        }

        let mut monitor = MonitorClient::with_interceptor(ch, BearerToken::new(TOKEN).unwrap());
        let mut events = monitor.watch(v1::WatchRequest {}).await.unwrap().into_inner();
        let status = monitor.get_status(v1::GetStatusRequest {}).await.unwrap().into_inner();
        assert_eq!(status.method, "alternate");
        assert_eq!(status.state, v1::RunState::WaitingForWorkers as i32);
        assert_eq!(status.total_rounds, 8);

        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let seg = tokio::spawn(dmtl_worker::run(worker_options(&coord, WorkerTask::Seg), stop.clone()));
        let depth = tokio::spawn(dmtl_worker::run(worker_options(&coord, WorkerTask::Depth), stop));

        let mut seen = Vec::new();
        let mut mid_status = None;
        while let Some(e) = events.message().await.unwrap() {
            let kind = e.kind.clone().unwrap();
            if let v1::event::Kind::RoundMerged(r) = &kind {
                if r.round == 3 {
                    mid_status = Some(monitor.get_status(v1::GetStatusRequest {}).await.unwrap().into_inner());
                    let url = format!("http://{}/metrics", coord.metrics_addr.unwrap());
                    let text = http_get(&url).await;
                    assert!(text.contains("dmtl_step "), "{text}");
                    assert!(text.contains("dmtl_workers{task=\"seg\"} 1"), "{text}");
                }
            }
            let last = matches!(kind, v1::event::Kind::RunFinished(_));
            seen.push(e);
            if last {
                break;
            }
        }
        let mid = mid_status.expect("a status during the run");
        assert_eq!(mid.state, v1::RunState::Running as i32);
        assert_eq!(mid.workers.len(), 2);
        assert!(mid.latest_losses.is_some());
        let count = |f: fn(&v1::event::Kind) -> bool| seen.iter().filter(|e| f(e.kind.as_ref().unwrap())).count();
        assert_eq!(count(|k| matches!(k, v1::event::Kind::WorkerJoined(_))), 2);
        assert_eq!(count(|k| matches!(k, v1::event::Kind::RoundMerged(_))), 8);
        assert_eq!(count(|k| matches!(k, v1::event::Kind::Evaluated(_))), 2);
        assert_eq!(count(|k| matches!(k, v1::event::Kind::CheckpointWritten(_))), 2);
        let rounds: Vec<u64> = seen
            .iter()
            .filter_map(|e| match e.kind.as_ref().unwrap() {
                v1::event::Kind::RoundMerged(r) => Some(r.round),
                _ => None,
            })
            .collect();
        assert!(rounds.windows(2).all(|w| w[0] < w[1]), "rounds merge once each, in order: {rounds:?}");
        let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        match seen.last().unwrap().kind.as_ref().unwrap() {
            v1::event::Kind::RunFinished(f) => {
                assert_eq!(f.state, v1::RunState::Finished as i32);
                assert!(f.final_metrics.is_some());
            }
            other => panic!("the last event is {other:?}"),
        }
        coord.wait().await.unwrap();
        seg.await.unwrap().unwrap();
        depth.await.unwrap().unwrap();
    });
}

async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// Runs `config` to the end with in-process workers of `tasks`; returns the final step.
async fn run_with_workers(config: Config, run_dir: &Path, tasks: &[WorkerTask]) -> usize {
    let coord = start(config, run_dir).await;
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let workers: Vec<_> =
        tasks.iter().map(|&t| tokio::spawn(dmtl_worker::run(worker_options(&coord, t), stop.clone()))).collect();
    let end = coord.wait().await.unwrap();
    for w in workers {
        w.await.unwrap().unwrap();
    }
    match end {
        EngineEnd::Finished(r) => r.steps,
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_method_and_teacher_runs_distributed() {
    use WorkerTask::*;
    let cases: [(&str, &str, &[WorkerTask]); 7] = [
        ("full", "phase", &[Both]),
        ("half", "phase", &[Both, Both]),
        ("alternate", "phase", &[Seg, Depth]),
        ("distill", "phase", &[Seg, Depth]),
        ("distill", "round", &[Seg, Seg, Depth]),
        ("masked", "phase", &[Seg, Depth, Depth]),
        ("masked-distill", "ema", &[Seg, Depth]),
    ];
    runtime().block_on(async {
        for (method, teacher, tasks) in cases {
            let run = tempfile::tempdir().unwrap();
            let cfg = config(method, 10, &format!("[distill]\nteacher = \"{teacher}\""));
            let steps = run_with_workers(cfg, run.path(), tasks).await;
            assert_eq!(steps, 10, "{method} with a {teacher} teacher and workers {tasks:?}");
            let fin: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(run.path().join("final.json")).unwrap()).unwrap();
            assert_eq!(fin["images_seen"], 40, "{method}: 10 steps of 4 images, however many workers");
        }
    });
}

#[test]
fn local_sgd_rounds_push_weight_deltas_that_the_coordinator_averages() {
    let run = tempfile::tempdir().unwrap();
    // Four local steps per round; phases of 4 steps, so 12 steps are 3 rounds.
    let cfg = config("masked", 12, "local_steps = 4");
    assert_eq!(dmtl_coordinator::server::total_rounds(&cfg), 3);
    runtime().block_on(async {
        let coord = start(cfg.clone(), run.path()).await;
        let mut events = coord.hub.subscribe();
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let workers: Vec<_> = [WorkerTask::Seg, WorkerTask::Depth]
            .into_iter()
            .map(|t| tokio::spawn(dmtl_worker::run(worker_options(&coord, t), stop.clone())))
            .collect();
        let mut merged = Vec::new();
        while let Ok(e) = events.recv().await {
            match e.kind {
                dmtl_coordinator::hub::EventKind::RoundMerged { step, samples, .. } => merged.push((step, samples)),
                dmtl_coordinator::hub::EventKind::RunFinished { .. } => break,
                _ => {}
            }
        }
        assert_eq!(merged, [(4, 16), (8, 16), (12, 16)], "three rounds of four steps of four images");
        coord.wait().await.unwrap();
        for w in workers {
            assert_eq!(w.await.unwrap().unwrap().rounds, 3);
        }
    });
    let ckpt = Checkpoint::load(&run.path().join("checkpoints/step-00000012.safetensors")).unwrap();
    let initial = Model::new(&cfg.model, cfg.data.classes.num_classes(), Device::Cpu, cfg.seed).variables();
    let moved = ckpt.model.iter().map(|(n, t)| (t - &initial[n]).abs().max().double_value(&[])).fold(0.0, f64::max);
    assert!(moved > 1e-3, "the averaged deltas moved the weights by {moved}");
}

#[test]
fn workers_reach_a_tls_coordinator_with_its_ca_and_plaintext_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let (cert, pem_key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&pem_key, key.key_pair.serialize_pem()).unwrap();
    let run = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let tls = TlsFiles { cert: cert.clone(), key: pem_key };
        let coord = start_with(config("full", 3, ""), run.path(), Some(tls)).await;
        let mut plain = client(&url(&coord), None, TOKEN).unwrap();
        let err = plain
            .register(v1::RegisterRequest { task: v1::Task::Both as i32, ..Default::default() })
            .await
            .unwrap_err();
        assert_ne!(err.code(), Code::Ok, "plaintext against a TLS server fails");
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let mut opts = worker_options(&coord, WorkerTask::Both);
        opts.coordinator = format!("https://{}", coord.addr);
        opts.tls_ca = Some(cert);
        let summary = dmtl_worker::run(opts, stop).await.unwrap();
        assert_eq!(summary.rounds, 3);
        assert!(matches!(coord.wait().await.unwrap(), EngineEnd::Finished(_)));
    });
}
