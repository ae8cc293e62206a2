//! `--set key=value` overrides, applied to the TOML table before it is parsed,
//! so that an override goes through exactly the same checks as the file.

use super::ConfigError;

/// Applies `key=value` (dotted key, TOML value; a bare word is taken as a string).
pub fn apply(table: &mut toml::Table, arg: &str) -> Result<(), ConfigError> {
    let err = |message: &str| ConfigError::Override { arg: arg.to_string(), message: message.into() };
    let (key, raw) = arg.split_once('=').ok_or_else(|| err("expected key=value"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(err("the key is empty or has an empty part"));
    }
    let value = parse_value(raw.trim());
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("split yields at least one part");
    let mut node = table;
    for part in parts {
        let entry = node.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry.as_table_mut().ok_or_else(|| err(&format!("`{part}` is a value, not a table")))?;
    }
    node.insert(last.to_string(), value);
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dotted_key_sets_a_nested_value_with_its_toml_type() {
        let mut t = toml::Table::new();
        apply(&mut t, "train.lr=0.01").unwrap();
        apply(&mut t, "model.blocks=[2, 2]").unwrap();
        apply(&mut t, "method.kind=masked-distill").unwrap();
        assert_eq!(t["train"]["lr"].as_float(), Some(0.01));
        assert_eq!(t["model"]["blocks"].as_array().unwrap().len(), 2);
        assert_eq!(t["method"]["kind"].as_str(), Some("masked-distill"));
    }

    #[test]
    fn an_override_without_equals_sign_is_rejected_with_the_argument() {
        let mut t = toml::Table::new();
        let e = apply(&mut t, "train.lr").unwrap_err().to_string();
        assert!(e.contains("train.lr") && e.contains("key=value"), "{e}");
    }

    #[test]
    fn overriding_inside_a_plain_value_is_rejected() {
        let mut t: toml::Table = "seed = 1".parse().unwrap();
        let e = apply(&mut t, "seed.x=1").unwrap_err().to_string();
        assert!(e.contains("`seed` is a value"), "{e}");
    }
}
