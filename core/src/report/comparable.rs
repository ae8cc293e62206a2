//! Checking that runs may be compared: their configs may differ only in the
//! method, its distillation knobs and the seed (and in where and how fast they
//! ran); the first other key that differs is named.

use std::path::Path;

use super::error::ReportError;
use super::runs::RunRecord;
use crate::config::Config;
use crate::run_dir::RUNTIME_KEYS;

/// Config keys that may differ between the runs of one report: the method,
/// its distillation knobs and the seed. Everything else must be equal.
pub const VARYING_KEYS: [&str; 3] = ["method", "distill", "seed"];

/// Checks that the runs differ only in method, distillation knobs and seed;
/// otherwise names the key and two runs that differ.
pub fn check_comparable(runs: &[RunRecord]) -> Result<(), ReportError> {
    let configs: Vec<(&Path, &Config)> = runs.iter().map(|r| (r.dir.as_path(), &r.config)).collect();
    check_configs(&configs)
}

/// [`check_comparable`] for configs named by a path (a run directory or a config file).
pub fn check_configs(configs: &[(&Path, &Config)]) -> Result<(), ReportError> {
    let Some((first_path, first)) = configs.first() else { return Ok(()) };
    // Where and how fast a run ran does not change what it measures.
    let ignore: Vec<&str> = VARYING_KEYS.iter().chain(&RUNTIME_KEYS).copied().collect();
    let base = first.to_table();
    for (path, config) in &configs[1..] {
        if let Some(d) = crate::config::diff::first_difference(&base, &config.to_table(), &ignore) {
            let (a, b) = d.values();
            return Err(ReportError::Input(format!(
                "mixed configs: `{}` is {a} in {} but {b} in {}; runs compared together may differ only in \
                 [method], [distill] and seed",
                d.key,
                first_path.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MethodKind, TeacherKind};

    #[test]
    fn runs_differing_in_method_distillation_seed_or_device_may_be_compared() {
        let a = Config::default();
        let mut b = Config::default();
        b.method.kind = MethodKind::MaskedDistill;
        b.distill.teacher = TeacherKind::Ema;
        b.seed += 1;
        b.train.device = "cuda:0".into();
        b.data.root = "/elsewhere".into();
        check_configs(&[(Path::new("a"), &a), (Path::new("b"), &b)]).expect("comparable");
    }

    #[test]
    fn runs_differing_in_another_key_are_refused_naming_the_key_and_both_runs() {
        let a = Config::default();
        let mut b = Config::default();
        b.train.lr = 0.5;
        let e = check_configs(&[(Path::new("run-a"), &a), (Path::new("run-b"), &b)]).expect_err("mixed");
        let e = e.to_string();
        assert!(e.contains("`train.lr`") && e.contains("0.5") && e.contains("run-a") && e.contains("run-b"), "{e}");
    }
}
