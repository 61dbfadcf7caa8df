//! `CERTGATE__SECTION__KEY=value` overrides, applied onto the parsed file before validation.
//! A value is read as a TOML value when it is one (`true`, `3`, `["a", "b"]`), else as a string.

use super::{Problem, Problems};

const PREFIX: &str = "CERTGATE__";

pub fn apply_overrides(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), Problems> {
    let mut problems = Vec::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            problems.push(Problem::new(
                name.clone(),
                "malformed override name",
                "use CERTGATE__SECTION__KEY, e.g. CERTGATE__LISTEN__HTTP",
            ));
            continue;
        }
        if let Err(problem) = set(table, &path, parse_value(&value)) {
            problems.push(Problem::new(name.clone(), problem, ""));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problems(problems))
    }
}

fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    toml::from_str::<toml::Table>(&doc)
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut current = table;
    for part in parents {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "`{part}` is not a section, cannot override a key in it"
                ))
            }
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_set_typed_values_in_sections() {
        let mut t = toml::Table::new();
        apply_overrides(
            &mut t,
            vars(&[
                ("CERTGATE__LISTEN__HTTP", "127.0.0.1:1"),
                ("CERTGATE__IDENTITY__ALLOW_UNLISTED", "true"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(t["listen"]["http"].as_str(), Some("127.0.0.1:1"));
        assert_eq!(t["identity"]["allow_unlisted"].as_bool(), Some(true));
        assert!(!t.contains_key("other"));
    }

    #[test]
    fn malformed_override_names_the_variable() {
        let mut t = toml::Table::new();
        let err = apply_overrides(&mut t, vars(&[("CERTGATE__LISTEN__", "x")])).unwrap_err();
        assert_eq!(err.0[0].key, "CERTGATE__LISTEN__");
    }
}
