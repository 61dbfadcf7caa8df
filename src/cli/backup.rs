//! `certgate backup FILE`: a consistent copy of `data_dir/certgate.db`, taken while servers and
//! commands go on writing. With the signing keys and the CA files it is all of `data_dir`
//! (the README's operations section says how to restore).

use std::path::PathBuf;

use super::common::Common;
use super::CliError;
use crate::db::Db;

/// Names this command in messages.
const CMD: &str = "certgate backup";

#[derive(clap::Args)]
pub(super) struct BackupArgs {
    /// Where to write the copy; it must not exist (a backup never overwrites).
    pub file: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

pub(super) fn run(args: &BackupArgs) -> Result<(), CliError> {
    let config = args.common.load()?;
    let dir = args.common.data_dir(config.as_ref());
    let db = Db::open(&dir).map_err(|e| CliError::failed(CMD, e))?;
    db.backup(&args.file)
        .map_err(|e| CliError::failed(CMD, e))?;
    println!(
        "backed up {} to {} (mode 0600). To restore: stop certgate, copy it to {} (removing any certgate.db-wal and -shm beside it), and copy back the keys/ directory and ca.pem, ca.key from your file backup",
        db.path().display(),
        args.file.display(),
        db.path().display()
    );
    Ok(())
}
