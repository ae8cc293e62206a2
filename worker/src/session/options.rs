//! What `dmtl worker` is asked to do: the task it offers, where the
//! coordinator is, and the changes it makes to the run's config (its own data
//! root, device and threads).

use std::path::{Path, PathBuf};
use std::time::Duration;

use dmtl_core::config::{toml_string, Config};
use dmtl_proto::v1;

use crate::WorkerError;

/// The task a worker offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerTask {
    Seg,
    Depth,
    Both,
}

impl WorkerTask {
    pub(super) fn to_proto(self) -> v1::Task {
        match self {
            WorkerTask::Seg => v1::Task::Seg,
            WorkerTask::Depth => v1::Task::Depth,
            WorkerTask::Both => v1::Task::Both,
        }
    }
}

impl std::str::FromStr for WorkerTask {
    type Err = WorkerError;
    fn from_str(s: &str) -> Result<Self, WorkerError> {
        match s {
            "seg" => Ok(WorkerTask::Seg),
            "depth" => Ok(WorkerTask::Depth),
            "both" => Ok(WorkerTask::Both),
            _ => Err(WorkerError::UnknownTask(s.to_string())),
        }
    }
}

/// What `dmtl worker` is asked to do.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// `http://host:port` or `https://host:port`.
    pub coordinator: String,
    pub task: WorkerTask,
    /// Overrides the config's `train.device`.
    pub device: Option<String>,
    /// Overrides the config's `data.root` (the same images, mounted elsewhere).
    pub data_root: Option<PathBuf>,
    /// Overrides the config's `train.threads`.
    pub threads: Option<usize>,
    pub token: String,
    /// CA certificate (PEM) that signed the coordinator's certificate.
    pub tls_ca: Option<PathBuf>,
    /// Host name reported to the coordinator.
    pub host: String,
    /// How long to keep retrying an unreachable coordinator before giving up.
    pub give_up_after: Duration,
}

impl WorkerOptions {
    /// The `key=value` overrides this worker applies to the run's config:
    /// `data.root`, `train.device` and `train.threads` where they are set.
    pub(super) fn overrides(&self) -> Vec<String> {
        let mut overrides = Vec::new();
        if let Some(root) = &self.data_root {
            overrides.push(format!("data.root={}", toml_string(&root.display().to_string())));
        }
        if let Some(d) = &self.device {
            overrides.push(format!("train.device={}", toml_string(d)));
        }
        if let Some(t) = self.threads {
            overrides.push(format!("train.threads={t}"));
        }
        overrides
    }

    /// The run's config (the coordinator's TOML) as this worker trains it,
    /// with its [`overrides`](Self::overrides).
    pub(super) fn local_config(&self, toml: &str) -> Result<Config, WorkerError> {
        Ok(Config::from_toml_str(toml, Path::new("<coordinator's config>"), &self.overrides())?)
    }
}

#[cfg(test)]
mod tests {
    use dmtl_core::config::tiny::Tiny;

    use super::*;

    fn options() -> WorkerOptions {
        WorkerOptions {
            coordinator: "http://127.0.0.1:1".into(),
            task: WorkerTask::Seg,
            device: None,
            data_root: None,
            threads: None,
            token: "t".into(),
            tls_ca: None,
            host: "h".into(),
            give_up_after: Duration::from_secs(1),
        }
    }

    fn coordinator_toml() -> String {
        Tiny::new("masked").toml(Path::new("/coordinator/data"))
    }

    #[test]
    fn a_worker_without_local_settings_trains_the_coordinators_config_unchanged() {
        assert!(options().overrides().is_empty());
        let config = options().local_config(&coordinator_toml()).unwrap();
        assert_eq!(config, Config::from_toml_str(&coordinator_toml(), Path::new("c.toml"), &[]).unwrap());
    }

    #[test]
    fn a_data_root_with_quotes_backslashes_and_a_combining_accent_reaches_the_config_as_written() {
        let root = "/mnt/a \"b\" \\c/cafe\u{301}";
        let opts = WorkerOptions { data_root: Some(PathBuf::from(root)), ..options() };
        assert_eq!(opts.local_config(&coordinator_toml()).unwrap().data.root, root);
    }

    #[test]
    fn the_device_and_threads_override_the_coordinators() {
        let opts = WorkerOptions { device: Some("cuda:1".into()), threads: Some(3), ..options() };
        let config = opts.local_config(&coordinator_toml()).unwrap();
        assert_eq!((config.train.device.as_str(), config.train.threads), ("cuda:1", 3));
    }

    #[test]
    fn a_task_is_seg_depth_or_both_and_anything_else_is_named_in_the_error() {
        assert_eq!("depth".parse::<WorkerTask>().unwrap(), WorkerTask::Depth);
        assert_eq!("both".parse::<WorkerTask>().unwrap().to_proto(), v1::Task::Both);
        let err = "sge".parse::<WorkerTask>().unwrap_err().to_string();
        assert_eq!(err, "must be seg, depth or both (got `sge`)");
    }
}
