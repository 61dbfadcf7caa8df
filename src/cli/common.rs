//! The options several subcommands share (`--config`, `--data-dir`), defined once, and loading
//! the configuration they name.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::{self, Config, Problem, Problems, Source};

/// The data directory when neither `--data-dir` nor a configuration names one.
const DEFAULT_DATA_DIR: &str = "certgate-data";

/// The environment variables that override configuration keys (`CERTGATE__LISTEN__HTTP`).
const OVERRIDE_PREFIX: &str = "CERTGATE__";

/// `--config`. Global: a subcommand's subcommands take it too (`certgate ca list --config …`).
#[derive(clap::Args)]
#[group(skip)]
pub(super) struct ConfigFile {
    /// The configuration file (TOML).
    #[arg(long, global = true, env = "CERTGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `--config` and `--data-dir`.
#[derive(clap::Args)]
#[group(skip)]
pub(super) struct Common {
    #[command(flatten)]
    pub file: ConfigFile,
    /// The data directory (default: the config's data_dir, else ./certgate-data).
    #[arg(long, global = true, env = "CERTGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

// === impl Common ===

impl Common {
    /// The configuration `--config` names, if any (`--data-dir` does not change it).
    ///
    /// # Errors
    /// Every problem of that configuration.
    pub fn load(&self) -> Result<Option<Config>, Problems> {
        self.file
            .config
            .as_deref()
            .map(|path| load(path, None))
            .transpose()
    }

    /// `--data-dir`, else the configuration's `data_dir`, else `./certgate-data`.
    pub fn data_dir(&self, config: Option<&Config>) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| config.map(|c| c.data_dir.clone()))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

/// `--data-dir`, else `./certgate-data`: for commands that run without a configuration.
pub(super) fn data_dir_or_default(data_dir: Option<PathBuf>) -> PathBuf {
    data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

/// The configuration in `path`, with the environment's overrides and, when given, `data_dir`.
///
/// # Errors
/// Every problem of that configuration.
pub(super) fn load(path: &Path, data_dir: Option<&Path>) -> Result<Config, Problems> {
    let source = Source::file(path)?;
    config::load(&source, overrides(data_dir)?)
}

/// Environment overrides, then the command line's, which win.
///
/// # Errors
/// A `CERTGATE__…` variable that is not UTF-8.
pub(super) fn overrides(data_dir: Option<&Path>) -> Result<Vec<(String, String)>, Problems> {
    let mut vars = utf8_vars(std::env::vars_os())?;
    if let Some(dir) = data_dir {
        vars.push(("CERTGATE__DATA_DIR".into(), dir.display().to_string()));
    }
    Ok(vars)
}

/// The variables as text. One that is not UTF-8 is left out (`std::env::vars` would panic),
/// unless it is an override: then it is a problem, never silently ignored.
fn utf8_vars(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Vec<(String, String)>, Problems> {
    let mut text = Vec::new();
    let mut problems = Vec::new();
    for (name, value) in vars {
        match (name.to_str(), value.to_str()) {
            (Some(name), Some(value)) => text.push((name.to_string(), value.to_string())),
            _ => {
                let name = name.to_string_lossy();
                if name.starts_with(OVERRIDE_PREFIX) {
                    problems.push(Problem::new(
                        name,
                        "not valid UTF-8",
                        "give the value as UTF-8 text",
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(text)
    } else {
        Err(Problems(problems))
    }
}

// Non-UTF-8 names and values are spelled as bytes on Unix.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn bytes(b: &[u8]) -> OsString {
        use std::os::unix::ffi::OsStrExt as _;
        std::ffi::OsStr::from_bytes(b).to_os_string()
    }

    #[test]
    fn a_variable_that_is_not_utf8_is_left_out() {
        let vars = utf8_vars([
            (bytes(b"JUNK"), bytes(b"\xff")),
            (bytes(b"\xff"), bytes(b"x")),
            ("CERTGATE__LISTEN__HTTP".into(), "127.0.0.1:1".into()),
        ]);
        assert_eq!(
            vars,
            Ok(vec![(
                "CERTGATE__LISTEN__HTTP".into(),
                "127.0.0.1:1".into()
            )])
        );
    }

    #[test]
    fn an_override_that_is_not_utf8_is_a_problem_naming_it() {
        let Err(problems) = utf8_vars([(bytes(b"CERTGATE__DATA_DIR"), bytes(b"/d\xff"))]) else {
            panic!("accepted");
        };
        assert_eq!(problems.0.len(), 1);
        assert!(problems
            .to_string()
            .starts_with("CERTGATE__DATA_DIR: not valid UTF-8"));
    }
}
