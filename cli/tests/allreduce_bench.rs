//! `dmtl allreduce-bench`: the timing and bandwidth report on CPU threads
//! (`--backend local`), and the NCCL backend refusing to run where it cannot.

mod common;

use common::*;

#[test]
fn the_local_backend_reports_algorithm_and_bus_bandwidth() {
    let out = run(&["allreduce-bench", "--backend", "local", "--gpus", "3", "--mib", "1", "--iters", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("over 3 members") && text.contains("busbw"), "{text}");
}

#[test]
fn the_step_check_keeps_replicas_identical_and_close_to_the_one_device_merge() {
    let out = run(&[
        "allreduce-bench",
        "--backend",
        "local",
        "--gpus",
        "2",
        "--mib",
        "1",
        "--iters",
        "1",
        "--step-check",
        "2",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("2 replicas x 2 steps") && text.contains("replicas differ by 0.0e0"), "{text}");
}

#[test]
fn the_nccl_backend_says_why_it_cannot_run_here() {
    if tch::Cuda::is_available() {
        return; // a GPU machine: deploy/gpu-check.sh runs the real thing
    }
    let out = run(&["allreduce-bench", "--mib", "1"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    let expected = if cfg!(feature = "nccl") { "no CUDA device was found" } else { "`nccl` cargo feature" };
    assert!(err.contains(expected), "{err}");
}
