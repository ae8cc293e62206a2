//! The first key where two configs differ: one walk over their resolved TOML
//! tables, in sorted key order and depth first, that refuses a resumed run
//! whose config changed (`run_dir`) and a report over runs that may not be
//! compared (`report`). Each caller names the dotted keys it ignores; an
//! ignored key is skipped with everything under it.

use super::Config;

/// Where two configs differ: the dotted key and its value on each side
/// (`None` where one side lacks the key).
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The dotted key, e.g. `train.lr`.
    pub key: String,
    /// The value in the first (old) table.
    pub old: Option<toml::Value>,
    /// The value in the second (new) table.
    pub new: Option<toml::Value>,
}

impl Difference {
    /// The old and new values as TOML text, `(absent)` for a missing key.
    pub fn values(&self) -> (String, String) {
        let text = |v: &Option<toml::Value>| v.as_ref().map_or("(absent)".into(), ToString::to_string);
        (text(&self.old), text(&self.new))
    }
}

/// The first dotted key, in sorted order and depth first, whose value differs
/// between `old` and `new`; keys in `ignore` (dotted, at any depth) and all
/// under them are skipped.
pub fn first_difference(old: &toml::Table, new: &toml::Table, ignore: &[&str]) -> Option<Difference> {
    walk(old, new, "", ignore)
}

fn walk(old: &toml::Table, new: &toml::Table, prefix: &str, ignore: &[&str]) -> Option<Difference> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().find_map(|k| {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        if ignore.contains(&key.as_str()) {
            return None;
        }
        match (old.get(k), new.get(k)) {
            (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => walk(a, b, &key, ignore),
            (a, b) if a == b => None,
            (a, b) => Some(Difference { key, old: a.cloned(), new: b.cloned() }),
        }
    })
}

impl Config {
    /// The resolved config as a TOML table.
    pub fn to_table(&self) -> toml::Table {
        toml::from_str(&self.to_toml()).expect("a config round-trips")
    }

    /// The first key where `self` (old) and `other` (new) differ, ignoring
    /// the dotted keys in `ignore` (see [`first_difference`]).
    pub fn first_difference(&self, other: &Config, ignore: &[&str]) -> Option<Difference> {
        first_difference(&self.to_table(), &other.to_table(), ignore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).expect("toml")
    }

    #[test]
    fn equal_configs_have_no_difference() {
        assert_eq!(Config::default().first_difference(&Config::default(), &[]), None);
    }

    #[test]
    fn a_changed_nested_value_is_named_by_its_dotted_key_with_both_values() {
        let mut changed = Config::default();
        changed.train.lr = 0.5;
        let d = Config::default().first_difference(&changed, &[]).expect("a difference");
        assert_eq!(d.key, "train.lr");
        assert_eq!(d.new, Some(toml::Value::Float(0.5)));
        assert_eq!(d.values().1, "0.5");
    }

    #[test]
    fn the_first_difference_in_sorted_key_order_is_reported() {
        let d = first_difference(&table("b = 1\n[a]\nz = 1\ny = 1"), &table("b = 2\n[a]\nz = 2\ny = 2"), &[]);
        assert_eq!(d.map(|d| d.key).as_deref(), Some("a.y"));
    }

    #[test]
    fn ignored_keys_and_everything_under_them_are_skipped() {
        let old = table("seed = 1\n[train]\ndevice = \"cpu\"\nlr = 0.1\n[distill]\nalpha = 1");
        let new = table("seed = 2\n[train]\ndevice = \"cuda\"\nlr = 0.1\n[distill]\nalpha = 2\nbeta = 3");
        assert_eq!(first_difference(&old, &new, &["seed", "train.device", "distill"]), None);
        let d = first_difference(&old, &new, &["seed", "distill"]).expect("the device differs");
        assert_eq!(d.key, "train.device");
        assert_eq!(d.values(), ("\"cpu\"".to_string(), "\"cuda\"".to_string()));
    }

    #[test]
    fn a_key_missing_on_one_side_is_a_difference_shown_as_absent() {
        let d = first_difference(&table("[data]\nroot = \"x\""), &table("[data]"), &[]).expect("a difference");
        assert_eq!(d.key, "data.root");
        assert_eq!((d.old.is_some(), d.new.is_none()), (true, true));
        assert_eq!(d.values().1, "(absent)");
    }

    #[test]
    fn a_table_replaced_by_a_value_is_a_difference_at_its_key() {
        let d = first_difference(&table("[a]\nx = 1"), &table("a = 1"), &[]).expect("a difference");
        assert_eq!(d.key, "a");
    }
}
