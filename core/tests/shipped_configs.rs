//! Every config shipped in `configs/` parses and validates.

use std::path::Path;

use dmtl_core::config::{Config, MethodKind};

fn configs_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(configs_in(&p));
        } else if p.extension().is_some_and(|e| e == "toml") {
            out.push(p);
        }
    }
    out
}

#[test]
fn every_shipped_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let files = configs_in(&root);
    assert!(files.len() >= 7, "{files:?}");
    for f in files {
        Config::load(&f, &[]).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn there_is_one_method_config_per_method_differing_only_in_method_and_distill() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/methods");
    let base = Config::load(&dir.join("full.toml"), &[]).unwrap();
    for kind in MethodKind::ALL {
        let c = Config::load(&dir.join(format!("{kind}.toml")), &[]).unwrap();
        assert_eq!(c.method.kind, kind);
        assert_eq!((&c.data, &c.model, &c.train, c.seed), (&base.data, &base.model, &base.train, base.seed), "{kind}");
    }
}

#[test]
fn the_experiment_configs_cover_every_method_and_differ_only_in_method_and_distill() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/experiments");
    let base = Config::load(&dir.join("full.toml"), &[]).unwrap();
    let mut kinds = Vec::new();
    for f in configs_in(&dir) {
        let c = Config::load(&f, &[]).unwrap();
        kinds.push(c.method.kind);
        assert_eq!((&c.data, &c.model, &c.train, c.seed), (&base.data, &base.model, &base.train, base.seed), "{f:?}");
    }
    for kind in MethodKind::ALL {
        assert!(kinds.contains(&kind), "no experiment config for {kind}");
    }
}

#[test]
fn the_benchmark_suites_share_one_augmented_setup_that_evaluates_at_every_phase_end() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/benchmark");
    let base = Config::load(&dir.join("methods/full.toml"), &[]).unwrap();
    assert!(base.data.augment.flip && base.data.augment.max_scale > 1.0, "augmentation is on for every method");
    let mut kinds = Vec::new();
    for f in configs_in(&dir) {
        let c = Config::load(&f, &[]).unwrap();
        kinds.push(c.method.kind);
        assert_eq!((&c.data, &c.model, &c.train, c.seed), (&base.data, &base.model, &base.train, base.seed), "{f:?}");
        assert!(
            c.method.switch_every.is_multiple_of(c.train.eval_every),
            "{f:?}: an evaluation at the end of every phase (forgetting)"
        );
    }
    for kind in MethodKind::ALL {
        assert!(kinds.contains(&kind), "no benchmark config for {kind}");
    }
}
