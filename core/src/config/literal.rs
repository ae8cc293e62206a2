//! TOML literals for `--set key=value` overrides built from values that are
//! not typed by a user (paths, device names).

/// `s` as a TOML string literal: quoted, with quotes, backslashes and control
/// characters escaped, so that an override gives back exactly `s`.
pub fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_with_quotes_backslashes_and_a_combining_accent_parses_back_to_itself() {
        for s in ["plain", r#"/d/a "b" \c"#, "e\u{301}", "tab\tand\u{1b}escape"] {
            let table: toml::Table = format!("v = {}", toml_string(s)).parse().unwrap();
            assert_eq!(table["v"].as_str(), Some(s));
        }
    }
}
