//! The distributed engine as processes: `dmtl local` leaves the run directory
//! of `dmtl train`; a worker killed with SIGKILL mid-run does not stop the
//! run (no round merged twice, its shard redistributed); a coordinator killed
//! and restarted with `--resume` finishes the run from its checkpoint, found
//! again by workers that retry; bad invocations fail with clear errors.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use dmtl_proto::connect::{channel, BearerToken};
use dmtl_proto::v1::{self, event::Kind, monitor_client::MonitorClient};

const TOKEN: &str = "process-test-token";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config_with(dir: &Path, method: &str, steps: usize, extra: &str) -> std::path::PathBuf {
    let path = tiny_config(dir, method, dataset());
    let text = std::fs::read_to_string(&path).unwrap().replace("steps = 40", &format!("steps = {steps}"));
    let text = format!("{text}\n[distributed]\nheartbeat_interval_ms = 100\nheartbeat_timeout_ms = 1000\n{extra}\n");
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(args: &[&str], log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    dmtl()
        .args(args)
        .env("DMTL_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn coordinator(config: &Path, port: u16, run_dir: &Path, resume: bool, log: &Path) -> Child {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "coordinator",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        &listen,
        "--run-dir",
        run_dir.to_str().unwrap(),
    ];
    if resume {
        args.push("--resume");
    }
    spawn(&args, log)
}

fn worker(port: u16, task: &str, log: &Path) -> Child {
    let url = format!("http://127.0.0.1:{port}");
    spawn(&["worker", "--coordinator", &url, "--task", task, "--threads", "1", "--give-up-after-s", "60"], log)
}

fn wait_exit(child: &mut Child, within: Duration, what: &str, log: &Path) -> std::process::ExitStatus {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("{what} did not exit within {within:?}:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

type Monitor = MonitorClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, BearerToken>>;

/// A monitor client and its event stream, once the coordinator answers.
async fn watch(port: u16) -> (Monitor, tonic::Streaming<v1::Event>) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let ch = channel(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let mut m = MonitorClient::with_interceptor(ch, BearerToken::new(TOKEN).unwrap());
        match m.watch(v1::WatchRequest {}).await {
            Ok(s) => return (m, s.into_inner()),
            Err(e) if Instant::now() < until => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the coordinator never answered: {e}"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn dmtl_local_leaves_the_run_directory_of_dmtl_train() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), "masked", 20, "");
    let run_dir = dir.path().join("run");
    let out = run(&["local", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("seg mIoU"), "the final table is printed");
    for file in ["config.toml", "split.json", "metrics.jsonl", "final.json", "workers/seg-0.log", "workers/depth-0.log"]
    {
        assert!(run_dir.join(file).exists(), "{file}");
    }
    let fin = read_json(&run_dir.join("final.json"));
    assert_eq!(fin["method"], "masked");
    assert_eq!(fin["steps"], 20);
    assert_eq!(fin["images_seen"], 80, "20 steps of 4 images");
    let lines = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2, "evaluations at steps 10 and 20");
    let checkpoints: Vec<_> = std::fs::read_dir(run_dir.join("checkpoints")).unwrap().collect();
    assert_eq!(checkpoints.len(), 1, "a checkpoint at step 20");
}

#[test]
fn a_worker_killed_mid_run_does_not_stop_it_and_its_shard_goes_to_the_others() {
    const STEPS: u64 = 80;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), "masked", STEPS as usize, "");
    let run_dir = dir.path().join("run");
    let port = free_port();
    let clog = dir.path().join("coordinator.log");
    let mut coord = coordinator(&config, port, &run_dir, false, &clog);
    let mut workers: Vec<Child> = ["seg", "seg", "depth"]
        .iter()
        .enumerate()
        .map(|(i, t)| worker(port, t, &dir.path().join(format!("w{i}.log"))))
        .collect();

    let (versions, lost, status_after) = runtime().block_on(async {
        let (mut monitor, mut events) = watch(port).await;
        let mut versions = Vec::new();
        let mut lost = Vec::new();
        let mut killed = false;
        let mut since_lost = 0;
        let mut status_after = None;
        while let Some(e) = events.message().await.unwrap() {
            match e.kind.unwrap() {
                Kind::RoundMerged(r) => {
                    versions.push(r.weights_version);
                    if versions.len() == 15 && !killed {
                        workers[0].kill().unwrap(); // SIGKILL: no Leave, no goodbye
                        killed = true;
                    }
                    if !lost.is_empty() {
                        since_lost += 1;
                        if since_lost == 3 {
                            let s = monitor.get_status(v1::GetStatusRequest {}).await.unwrap().into_inner();
                            status_after = Some(s);
                        }
                    }
                }
                Kind::WorkerLost(w) => lost.push(w),
                Kind::RunFinished(f) => {
                    assert_eq!(f.state, v1::RunState::Finished as i32, "{}", f.error);
                    break;
                }
                _ => {}
            }
        }
        (versions, lost, status_after)
    });
    let status = wait_exit(&mut coord, Duration::from_secs(60), "the coordinator", &clog);
    assert!(status.success(), "{}", std::fs::read_to_string(&clog).unwrap());
    for w in workers.iter_mut() {
        let _ = w.kill();
        let _ = w.wait();
    }

    // Every step merged exactly once: one new weights version per step, none skipped or repeated.
    assert_eq!(versions, (1..=STEPS).collect::<Vec<_>>(), "one merge per step");
    assert_eq!(read_json(&run_dir.join("final.json"))["steps"], STEPS);
    assert_eq!(lost.len(), 1, "one worker lost: {lost:?}");
    assert_eq!(lost[0].task, v1::Task::Seg as i32);
    assert!(lost[0].reason.contains("heartbeat"), "{}", lost[0].reason);
    let status = status_after.expect("a status after the loss");
    let seg: Vec<_> = status
        .workers
        .iter()
        .filter(|w| w.task == v1::Task::Seg as i32 && w.state != v1::WorkerState::Lost as i32)
        .collect();
    assert_eq!(seg.len(), 1);
    assert_eq!(seg[0].shard_size, 24, "the survivor holds all 24 images of D_seg");
}

#[test]
fn a_coordinator_killed_and_restarted_with_resume_finishes_the_run_with_the_same_workers() {
    const STEPS: u64 = 60;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), "masked", STEPS as usize, "");
    let text = std::fs::read_to_string(&config).unwrap().replace("checkpoint_every = 20", "checkpoint_every = 10");
    std::fs::write(&config, text).unwrap();
    let run_dir = dir.path().join("run");
    let port = free_port();
    let log1 = dir.path().join("coordinator-1.log");
    let mut coord = coordinator(&config, port, &run_dir, false, &log1);
    let wlogs = [dir.path().join("seg.log"), dir.path().join("depth.log")];
    let mut workers = [worker(port, "seg", &wlogs[0]), worker(port, "depth", &wlogs[1])];

    runtime().block_on(async {
        let (_m, mut events) = watch(port).await;
        while let Some(e) = events.message().await.unwrap() {
            if let Some(Kind::CheckpointWritten(c)) = e.kind {
                if c.round >= 20 {
                    break;
                }
            }
        }
    });
    coord.kill().unwrap();
    coord.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500)); // the workers now retry with backoff

    let log2 = dir.path().join("coordinator-2.log");
    let mut coord = coordinator(&config, port, &run_dir, true, &log2);
    let status = wait_exit(&mut coord, Duration::from_secs(120), "the restarted coordinator", &log2);
    let log = std::fs::read_to_string(&log2).unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains("resumed from"), "{log}");
    for (w, l) in workers.iter_mut().zip(&wlogs) {
        let status = wait_exit(w, Duration::from_secs(30), "a worker", l);
        assert!(status.success(), "{}", std::fs::read_to_string(l).unwrap());
    }
    assert_eq!(read_json(&run_dir.join("final.json"))["steps"], STEPS);
    let steps: Vec<u64> = std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [10, 20, 30, 40, 50, 60], "one evaluation per 10 steps, none repeated");
}

#[test]
fn distributed_commands_refuse_bad_input_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), "masked", 10, "");
    let c = config.to_str().unwrap();
    let run_dir = dir.path().join("run");
    let r = run_dir.to_str().unwrap();

    let out = dmtl().args(["coordinator", "--config", c, "--run-dir", r]).env_remove("DMTL_TOKEN").output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no token"), "{}", stderr(&out));

    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let out = run(&["coordinator", "--config", c, "--run-dir", r, "--token-file", empty.to_str().unwrap()]);
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));

    // Why: this build lacks the feature, or (a `nccl` build) this machine has no GPU.
    // (A `nccl` build on a GPU machine starts the plane: nothing to refuse.)
    if !(cfg!(feature = "nccl") && tch::Cuda::is_available()) {
        let nccl = config_with(dir.path(), "masked", 10, "data_plane = \"nccl\"");
        let out = Command::new(env!("CARGO_BIN_EXE_dmtl"))
            .args(["coordinator", "--config", nccl.to_str().unwrap(), "--run-dir", r, "--listen", "127.0.0.1:0"])
            .env("DMTL_TOKEN", TOKEN)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(stderr(&out).contains("distributed.data_plane"), "{}", stderr(&out));
        let why = if cfg!(feature = "nccl") { "no CUDA device was found" } else { "`nccl` cargo feature" };
        assert!(stderr(&out).contains(why), "{}", stderr(&out));
    }

    let out = Command::new(env!("CARGO_BIN_EXE_dmtl"))
        .args(["worker", "--coordinator", &format!("http://127.0.0.1:{}", free_port()), "--task", "seg"])
        .args(["--give-up-after-s", "1"])
        .env("DMTL_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));

    let out = run(&["worker", "--coordinator", "http://127.0.0.1:1", "--task", "colour"]);
    assert!(stderr(&out).contains("seg, depth or both"), "{}", stderr(&out));

    let out = Command::new(env!("CARGO_BIN_EXE_dmtl"))
        .args(["status", "--coordinator", &format!("http://127.0.0.1:{}", free_port())])
        .env("DMTL_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("GetStatus"), "{}", stderr(&out));
}

#[test]
fn status_and_watch_show_a_running_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), "masked", 150, "");
    let run_dir = dir.path().join("run");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let clog = dir.path().join("coordinator.log");
    let mut coord = coordinator(&config, port, &run_dir, false, &clog);
    let watch_out = dir.path().join("watch.log");
    let mut watcher = spawn(&["watch", "--coordinator", &url, "--status-every-s", "0"], &watch_out);
    let mut workers =
        [worker(port, "seg", &dir.path().join("seg.log")), worker(port, "depth", &dir.path().join("depth.log"))];
    // Once both workers train, `status --json` shows them.
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let out = dmtl().args(["status", "--coordinator", &url, "--json"]).env("DMTL_TOKEN", TOKEN).output().unwrap();
        if out.status.success() {
            let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if s["step"].as_u64().unwrap_or(0) > 5 && s["workers"].as_array().map_or(0, Vec::len) == 2 {
                break s;
            }
        }
        assert!(Instant::now() < until, "no running status in time");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["method"], "masked");
    assert_eq!(status["state"], "running");
    assert_eq!(status["total_rounds"], 150);
    let tasks: Vec<&str> = status["workers"].as_array().unwrap().iter().map(|w| w["task"].as_str().unwrap()).collect();
    assert!(tasks.contains(&"seg") && tasks.contains(&"depth"), "{tasks:?}");
    assert!(status["latest_losses"]["total"].as_f64().is_some());
    let table = dmtl().args(["status", "--coordinator", &url]).env("DMTL_TOKEN", TOKEN).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(table.contains("masked") && table.contains("worker") && table.contains("img/s"), "{table}");
    let wrong = dmtl().args(["status", "--coordinator", &url]).env("DMTL_TOKEN", "wrong").output().unwrap();
    assert!(!wrong.status.success());
    assert!(stderr(&wrong).contains("wrong token"), "{}", stderr(&wrong));

    assert!(wait_exit(&mut coord, Duration::from_secs(120), "the coordinator", &clog).success());
    assert!(wait_exit(&mut watcher, Duration::from_secs(10), "dmtl watch", &watch_out).success());
    for w in workers.iter_mut() {
        let _ = w.wait();
    }
    let log = std::fs::read_to_string(&watch_out).unwrap();
    for needle in
        ["round 150 merged", "evaluated after round", "checkpoint after round", "run finished after 150 rounds"]
    {
        assert!(log.contains(needle), "`{needle}` is missing from dmtl watch:\n{log}");
    }
}
