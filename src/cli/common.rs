//! The options several subcommands share (`--config`, `--data-dir`), defined once, and loading
//! the configuration they name.

use std::path::{Path, PathBuf};

use crate::config::{self, Config, Problems, Source};

/// The data directory when neither `--data-dir` nor a configuration names one.
const DEFAULT_DATA_DIR: &str = "certgate-data";

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
    config::load(&source, overrides(data_dir))
}

/// Environment overrides, then the command line's, which win.
pub(super) fn overrides(data_dir: Option<&Path>) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    if let Some(dir) = data_dir {
        vars.push(("CERTGATE__DATA_DIR".into(), dir.display().to_string()));
    }
    vars
}
