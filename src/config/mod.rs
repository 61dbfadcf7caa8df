//! Configuration in two stages (as ripgrep does): [`raw`] is the file as written, [`Config`]
//! is what the rest of certgate may rely on. Every problem is collected and reported at once,
//! each as `key: problem (hint)`, so an operator fixes a file in one pass.

mod env;
mod listen;
pub mod raw;
mod validate;

use std::path::{Path, PathBuf};

pub use crate::settings::{Problem, Problems};
pub use listen::Listen;
pub use validate::Config;

/// Where the configuration text came from; relative paths in it resolve against `base_dir`.
pub struct Source {
    pub text: String,
    pub origin: String,
    pub base_dir: PathBuf,
}

impl Source {
    /// Reads a config file.
    ///
    /// # Errors
    /// A [`Problems`] naming the file when it cannot be read.
    pub fn file(path: &Path) -> Result<Self, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem::new(
                "--config",
                format!("cannot read {}: {e}", path.display()),
                "check the path, or run `certgate serve` without --config for the quickstart",
            )])
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Self {
            text,
            origin: path.display().to_string(),
            base_dir,
        })
    }
}

/// Parses, applies `CERTGATE__SECTION__KEY` overrides from `vars`, and validates.
///
/// # Errors
/// Every problem found, each naming its key.
pub fn load(
    source: &Source,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, Problems> {
    let mut table: toml::Table = toml::from_str(&source.text).map_err(|e| {
        Problems(vec![Problem::new(
            source.origin.clone(),
            format!("not valid TOML: {}", e.message()),
            e.span()
                .map(|s| format!("at byte {}", s.start))
                .unwrap_or_default(),
        )])
    })?;
    env::apply_overrides(&mut table, vars)?;

    let mut unknown = Vec::new();
    let value = toml::Value::Table(table);
    let raw: raw::RawConfig = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        value,
        &mut |path: serde_ignored::Path<'_>| unknown.push(path.to_string()),
    ))
    .map_err(|e| {
        let key = e.path().to_string();
        Problems(vec![Problem::new(
            key,
            e.into_inner().message().to_string(),
            "see config/certgate.example.toml for the expected type",
        )])
    })?;
    let mut problems: Vec<Problem> = unknown
        .into_iter()
        .map(|k| {
            Problem::new(
                k,
                "unknown key",
                "check the spelling against config/certgate.example.toml",
            )
        })
        .collect();
    match validate::validate(raw, &source.base_dir, &source.origin) {
        Ok(config) if problems.is_empty() => Ok(config),
        Ok(_) => Err(Problems(problems)),
        Err(Problems(more)) => {
            problems.extend(more);
            Err(Problems(problems))
        }
    }
}
