//! The tiny configs that the test suites of every crate train with: a
//! 6-wide model with two stages on 32×64 images, batch 4, one thread. Each
//! suite sets what it varies; the rest is shared here, so that a change of
//! the config schema is made once.

use std::path::Path;

use super::{Config, ConfigError};

/// A tiny config; [`Tiny::new`] gives the common values.
#[derive(Debug, Clone)]
pub struct Tiny<'a> {
    pub method: &'a str,
    pub seed: u64,
    pub switch_every: usize,
    /// `[distill] teacher`, when set.
    pub teacher: Option<&'a str>,
    pub steps: usize,
    pub eval_every: usize,
    pub checkpoint_every: usize,
    /// More `[train]` lines (`lr = 5e-3`, …).
    pub train_extra: &'a str,
    /// Text appended at the end: more tables, or keys of the last one.
    pub tail: &'a str,
}

impl<'a> Tiny<'a> {
    pub fn new(method: &'a str) -> Self {
        Tiny {
            method,
            seed: 9,
            switch_every: 4,
            teacher: None,
            steps: 12,
            eval_every: 4,
            checkpoint_every: 4,
            train_extra: "",
            tail: "",
        }
    }

    /// The TOML text, reading the dataset at `root`.
    pub fn toml(&self, root: &Path) -> String {
        let distill = self.teacher.map(|t| format!("[distill]\nteacher = \"{t}\"\n")).unwrap_or_default();
        let train_extra = if self.train_extra.is_empty() { String::new() } else { format!("{}\n", self.train_extra) };
        format!(
            "version = 1\nseed = {seed}\n[data]\nroot = {root}\nheight = 32\nwidth = 64\nload_threads = 1\n\
             [model]\nwidth = 6\nblocks = [1, 1]\n[method]\nkind = \"{method}\"\nswitch_every = {switch}\n\
             {distill}[train]\nsteps = {steps}\nbatch_size = 4\n{train_extra}eval_every = {eval}\n\
             checkpoint_every = {ckpt}\nthreads = 1\n{tail}",
            seed = self.seed,
            root = toml::Value::String(root.display().to_string()),
            method = self.method,
            switch = self.switch_every,
            steps = self.steps,
            eval = self.eval_every,
            ckpt = self.checkpoint_every,
            tail = self.tail,
        )
    }

    /// The config itself (`origin` names it in errors).
    pub fn config(&self, root: &Path, origin: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(&self.toml(root), Path::new(origin), &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_config_is_valid_for_every_method_and_carries_what_was_set() {
        for method in ["full", "half", "alternate", "distill", "masked", "masked-distill"] {
            let tiny = Tiny { teacher: Some("ema"), steps: 24, train_extra: "lr = 5e-3", ..Tiny::new(method) };
            let c = tiny.config(Path::new("/data"), "tiny.toml").unwrap();
            assert_eq!(c.method.kind.to_string(), method);
            assert_eq!((c.seed, c.train.steps, c.train.batch_size, c.model.width), (9, 24, 4, 6));
            assert_eq!(c.train.lr, 5e-3);
            assert_eq!(c.distill.teacher, crate::config::TeacherKind::Ema);
        }
    }

    #[test]
    fn a_root_with_quotes_and_backslashes_is_written_as_a_toml_string() {
        let root = r#"/data/a "quoted" \ folder"#;
        let c = Tiny::new("full").config(Path::new(root), "tiny.toml").unwrap();
        assert_eq!(c.data.root, root);
    }

    #[test]
    fn the_tail_may_add_keys_to_a_table_it_opens() {
        let tail = "[distributed]\nheartbeat_timeout_ms = 2000\ndata_plane = \"nccl\"\n";
        let c = Tiny { tail, ..Tiny::new("masked") }.config(Path::new("/data"), "tiny.toml").unwrap();
        assert_eq!(c.distributed.heartbeat_timeout_ms, 2000);
        assert_eq!(c.distributed.data_plane.to_string(), "nccl");
    }
}
