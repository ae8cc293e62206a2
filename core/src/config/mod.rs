//! Configuration: TOML files with a `version` key, unknown keys rejected,
//! `--set key=value` overrides, every value validated with its key's name.

pub mod diff;
mod error;
mod literal;
mod overrides;
mod schema;
pub mod tiny;
mod validate;

use std::path::Path;

pub use error::ConfigError;
pub use literal::toml_string;
pub use schema::*;
pub use validate::validate;

fn apply_overrides(table: &toml::Table, overrides: &[String], origin: &Path) -> Result<String, ConfigError> {
    let mut table = table.clone();
    for arg in overrides {
        overrides::apply(&mut table, arg)?;
    }
    toml::to_string(&table).map_err(|e| ConfigError::Parse { path: origin.to_path_buf(), message: e.to_string() })
}

impl Config {
    /// Reads `path`, applies `overrides` (`key=value`), parses and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::from_toml_str(&text, path, overrides)
    }

    /// Parses TOML text (`origin` names it in errors), applies overrides, validates.
    pub fn from_toml_str(text: &str, origin: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        let parse_err = |e: toml::de::Error| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        };
        // Parse the file as written first, so that errors point into it.
        let table: toml::Table = toml::from_str(text).map_err(parse_err)?;
        if !table.contains_key("version") {
            return Err(ConfigError::MissingVersion { path: origin.to_path_buf(), expected: CONFIG_VERSION });
        }
        let mut config: Config = toml::from_str(text).map_err(parse_err)?;
        if !overrides.is_empty() {
            let merged = apply_overrides(&table, overrides, origin)?;
            config = toml::from_str(&merged).map_err(|e| {
                // Name the override that breaks the config on its own, if one does.
                let culprit = overrides
                    .iter()
                    .find(|arg| {
                        apply_overrides(&table, std::slice::from_ref(*arg), origin)
                            .map(|t| toml::from_str::<Config>(&t).is_err())
                            .unwrap_or(true)
                    })
                    .cloned()
                    .unwrap_or_else(|| overrides.join(" "));
                ConfigError::Override { arg: culprit, message: e.message().to_string() }
            })?;
        }
        validate(&config)?;
        Ok(config)
    }

    /// The resolved config as TOML (what is saved in the run directory).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serialises")
    }

    /// The encoder's total stride: inputs must be multiples of it.
    pub fn stride(&self) -> usize {
        1 << self.model.blocks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, &PathBuf::from("test.toml"), &[])
    }

    #[test]
    fn a_file_with_only_the_version_gets_every_default() {
        let c = parse("version = 1").unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn the_resolved_config_round_trips_through_toml() {
        let mut c = Config::default();
        c.method.kind = MethodKind::MaskedDistill;
        c.distill.teacher = TeacherKind::Ema;
        let back = parse(&c.to_toml()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn a_typo_in_a_key_is_rejected_with_the_key_name() {
        let e = parse("version = 1\n[train]\nlearning_rate = 0.1\n").unwrap_err().to_string();
        assert!(e.contains("learning_rate") && e.contains("test.toml"), "{e}");
    }

    #[test]
    fn a_missing_version_is_rejected() {
        let e = parse("seed = 3").unwrap_err().to_string();
        assert!(e.contains("`version` is missing"), "{e}");
    }

    #[test]
    fn an_unknown_version_is_rejected() {
        let e = parse("version = 7").unwrap_err().to_string();
        assert!(e.contains("`version`") && e.contains("got 7"), "{e}");
    }

    #[test]
    fn an_out_of_range_value_names_its_key() {
        for (text, key) in [
            ("version = 1\n[train]\nlr = -1.0", "train.lr"),
            ("version = 1\n[data]\nheight = 50", "data.height"),
            ("version = 1\n[distill]\nema_decay = 1.0", "distill.ema_decay"),
            ("version = 1\n[distill]\ntemperature = 0.0", "distill.temperature"),
            ("version = 1\n[train]\ndevice = \"gpu\"", "train.device"),
            ("version = 1\n[model]\nblocks = []", "model.blocks"),
            ("version = 1\n[method]\nswitch_every = 0", "method.switch_every"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text} -> {e}");
        }
    }

    #[test]
    fn an_unknown_method_or_class_count_is_rejected_with_the_value() {
        let e = parse("version = 1\n[method]\nkind = \"distil\"").unwrap_err().to_string();
        assert!(e.contains("distil"), "{e}");
        let e = parse("version = 1\n[data]\nclasses = 8").unwrap_err().to_string();
        assert!(e.contains("got 8"), "{e}");
    }

    #[test]
    fn the_precision_and_layout_keys_parse_and_bad_values_are_refused_naming_the_key() {
        let c =
            parse("version = 1\n[train]\nprecision = \"bf16\"\nchannels_last = true\ncudnn_benchmark = false").unwrap();
        assert_eq!((c.train.precision, c.train.channels_last, c.train.cudnn_benchmark), (Precision::Bf16, true, false));
        let d = Config::default().train;
        assert_eq!((d.precision, d.channels_last, d.cudnn_benchmark), (Precision::Fp32, false, true));
        for (text, value) in [
            ("version = 1\n[train]\nprecision = \"fp16\"", "fp16"),
            ("version = 1\n[train]\nchannels_last = \"yes\"", "yes"),
            ("version = 1\n[train]\ncudnn_benchmark = 1", "1"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            let key = text.lines().last().unwrap().split(' ').next().unwrap();
            assert!(e.contains(key) && e.contains(value), "{text} -> {e}");
        }
        let path = PathBuf::from("x.toml");
        let e = Config::from_toml_str("version = 1", &path, &["train.precision=fp8".into()]).unwrap_err().to_string();
        assert!(e.contains("train.precision") && e.contains("fp8"), "{e}");
        assert_eq!("bf16".parse::<Precision>(), Ok(Precision::Bf16));
        assert!("half".parse::<Precision>().unwrap_err().contains("half"));
    }

    #[test]
    fn overrides_go_through_the_same_checks() {
        let path = PathBuf::from("x.toml");
        let ok = Config::from_toml_str("version = 1", &path, &["train.steps=7".into()]).unwrap();
        assert_eq!(ok.train.steps, 7);
        let e = Config::from_toml_str("version = 1", &path, &["train.stepz=7".into()]).unwrap_err().to_string();
        assert!(e.contains("stepz"), "{e}");
        let e = Config::from_toml_str("version = 1", &path, &["train.lr=0".into()]).unwrap_err().to_string();
        assert!(e.contains("train.lr"), "{e}");
    }
}
