//! Prometheus text metrics over plain HTTP (`--metrics-listen`): any GET
//! answers the current figures in the text exposition format (0.0.4).

use std::fmt::Write as _;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::hub::{Hub, RunState, StatusView, WorkerActivity};

/// The metrics of a status snapshot, in the text exposition format.
pub fn render(s: &StatusView) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let run = &s.run;
    let state =
        [RunState::WaitingForWorkers, RunState::Running, RunState::Stopping, RunState::Finished, RunState::Failed]
            .map(|st| (format!("{{state=\"{}\"}}", st.as_str()), f64::from(u8::from(st == run.state))));
    metric("dmtl_run_state", "gauge", "1 for the run's current state.", &state);
    metric("dmtl_step", "gauge", "Training steps merged.", &[(String::new(), run.step as f64)]);
    metric("dmtl_total_steps", "gauge", "Training steps of the run.", &[(String::new(), run.total_steps as f64)]);
    metric("dmtl_round", "gauge", "The current round number.", &[(String::new(), run.round as f64)]);
    metric(
        "dmtl_rounds_merged_total",
        "counter",
        "Rounds merged by this coordinator process.",
        &[(String::new(), run.rounds_merged as f64)],
    );
    let t = &run.timing;
    metric(
        "dmtl_round_seconds",
        "gauge",
        "The last round: opened to next weights published.",
        &[(String::new(), t.last_round_s)],
    );
    metric(
        "dmtl_merge_seconds",
        "gauge",
        "The last round: last accepted update to next weights published.",
        &[(String::new(), t.last_merge_s)],
    );
    metric("dmtl_round_seconds_sum", "counter", "Round durations, summed.", &[(String::new(), t.sum_round_s)]);
    metric("dmtl_images_seen_total", "counter", "Training images merged.", &[(String::new(), run.images_seen as f64)]);
    if let Some(l) = &run.latest_losses {
        let mut v = vec![("{loss=\"total\"}".to_string(), l.total)];
        for (name, x) in
            [("seg", l.seg), ("depth", l.depth), ("distill_seg", l.distill_seg), ("distill_depth", l.distill_depth)]
        {
            if let Some(x) = x {
                v.push((format!("{{loss=\"{name}\"}}"), x));
            }
        }
        metric("dmtl_train_loss", "gauge", "Train losses of the last merged round.", &v);
    }
    if let Some(m) = &run.latest_metrics {
        let v = [
            ("miou", m.seg.miou),
            ("pixel_acc", m.seg.pixel_acc),
            ("abs_err", m.depth.abs_err),
            ("rel_err", m.depth.rel_err),
            ("delta1", m.depth.delta1),
        ]
        .map(|(k, x)| (format!("{{metric=\"{k}\"}}"), x));
        metric("dmtl_val_metric", "gauge", "Validation metrics of the last evaluation.", &v);
    }
    let live: Vec<_> =
        s.workers.iter().filter(|w| !matches!(w.activity, WorkerActivity::Lost | WorkerActivity::Left)).collect();
    for task in ["seg", "depth", "both"] {
        let n = live.iter().filter(|w| w.task.as_str() == task).count();
        metric("dmtl_workers", "gauge", "Live workers per task.", &[(format!("{{task=\"{task}\"}}"), n as f64)]);
    }
    let ips: Vec<(String, f64)> =
        live.iter().map(|w| (format!("{{worker=\"{}\",task=\"{}\"}}", w.name, w.task), w.images_per_s)).collect();
    metric("dmtl_worker_images_per_second", "gauge", "Training throughput each worker reports.", &ips);
    out
}

/// Serves `render(hub.status())` to every connection until the task is aborted.
pub async fn serve(listener: TcpListener, hub: Arc<Hub>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { continue };
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = if path == "/metrics" || path == "/" {
                ("200 OK", render(&hub.status()))
            } else {
                ("404 Not Found", "not found; metrics are at /metrics\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}
