//! Published snapshots (weights, teacher) and serving them by version.

use bytes::Bytes;

use super::{Hub, HubError};

/// Which snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    Weights,
    Teacher,
}

/// A published snapshot: safetensors bytes of a version.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: u64,
    /// The round whose merge produced it (0: before the first merge).
    pub round: u64,
    pub bytes: Bytes,
}

impl Hub {
    /// The snapshot of `kind` at `version`, if it is the one published.
    pub fn snapshot(&self, name: &str, kind: SnapshotKind, version: u64) -> Result<Snapshot, HubError> {
        self.parse_name(name)?;
        let st = self.lock();
        let held = match kind {
            SnapshotKind::Weights => st.weights.as_ref(),
            SnapshotKind::Teacher => st.teacher.as_ref(),
        };
        match held {
            Some(s) if s.version == version => Ok(s.clone()),
            Some(s) => Err(HubError::Superseded(format!(
                "{} version {version} is not held (the current one is {})",
                if kind == SnapshotKind::Weights { "weights" } else { "teacher" },
                s.version
            ))),
            None => Err(HubError::NotFound("no snapshot of that kind is published".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::testing::{hub, registration};
    use super::{HubError, Snapshot, SnapshotKind};
    use crate::scheduler::Task;

    #[test]
    fn a_snapshot_not_yet_published_is_refused_as_not_found() {
        let (hub, _rx) = hub();
        let a = hub.register(registration(Task::Seg, "h")).unwrap();
        for kind in [SnapshotKind::Weights, SnapshotKind::Teacher] {
            assert!(matches!(hub.snapshot(&a.worker, kind, 1), Err(HubError::NotFound(_))), "{kind:?}");
        }
    }

    #[test]
    fn only_the_published_version_is_served_and_another_is_superseded() {
        let (hub, _rx) = hub();
        let a = hub.register(registration(Task::Seg, "h")).unwrap();
        hub.lock().weights = Some(Snapshot { version: 3, round: 2, bytes: Bytes::from_static(b"w3") });
        let s = hub.snapshot(&a.worker, SnapshotKind::Weights, 3).unwrap();
        assert_eq!((s.version, s.round, &s.bytes[..]), (3, 2, &b"w3"[..]));
        match hub.snapshot(&a.worker, SnapshotKind::Weights, 2) {
            Err(HubError::Superseded(m)) => assert_eq!(m, "weights version 2 is not held (the current one is 3)"),
            other => panic!("expected Superseded, got {other:?}"),
        }
        assert!(matches!(hub.snapshot(&a.worker, SnapshotKind::Teacher, 3), Err(HubError::NotFound(_))));
    }

    #[test]
    fn a_snapshot_is_refused_to_an_unknown_worker() {
        let (hub, _rx) = hub();
        hub.lock().weights = Some(Snapshot { version: 1, round: 0, bytes: Bytes::new() });
        assert!(matches!(hub.snapshot("seg-1.nope", SnapshotKind::Weights, 1), Err(HubError::UnknownWorker(_))));
    }
}
