//! The embedded database: `data_dir/certgate.db`, SQLite in WAL mode. It holds what certgate
//! must not lose or let grow forever: revocations, the built-in CA's issued and revoked
//! certificates, and enrollment links (signing keys stay files, 0600).
//!
//! The server and every command that writes state open it at once: SQLite serialises writers
//! (each write takes the lock up front and waits up to [`BUSY`] for it), and readers never wait.
//! A write returns only once its transaction is on disk (`synchronous = FULL`), so "revoked" is
//! said only of a revocation that survives a power cut. The schema is created and migrated here
//! ([`schema`]); the files earlier versions kept are imported once ([`legacy`]). Each module
//! owns the queries on its own tables; this one owns the file.

pub mod legacy;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use legacy::Imported;
pub use rusqlite;

/// The file, in `data_dir`.
pub const FILE: &str = "certgate.db";

/// How long a write waits for another process's write to finish before it fails. Writes take
/// milliseconds; only a stuck process holds the lock this long.
pub const BUSY: Duration = Duration::from_secs(10);

/// What went wrong with the database, naming the file and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct DbError {
    pub path: PathBuf,
    pub problem: String,
}

impl DbError {
    fn new(path: &Path, problem: impl std::fmt::Display) -> Self {
        Self {
            path: path.to_path_buf(),
            problem: problem.to_string(),
        }
    }

    /// A failed statement, said so an operator knows whether to wait or to act.
    fn sql(path: &Path, e: &rusqlite::Error) -> Self {
        let problem = match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => format!(
                "another process held the database for more than {} s ({e}); try again, and look for a stuck certgate",
                BUSY.as_secs()
            ),
            Some(rusqlite::ErrorCode::DiskFull) => {
                format!("{e}: free space on its disk (nothing was written)")
            }
            Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::PermissionDenied) => format!(
                "{e}: certgate needs to write it (and its -wal and -shm files): check the owner and mode"
            ),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => format!(
                "{e}: restore it from a backup (`certgate backup`; see the README's operations section)"
            ),
            _ => e.to_string(),
        };
        Self::new(path, problem)
    }
}

/// The open database: one connection, shared by the threads of one process.
#[derive(Debug)]
pub struct Db {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// A second connection for [`Db::write_relaxed`], opened at its first use and kept at
    /// `synchronous = NORMAL`: the main one never leaves FULL.
    relaxed: Mutex<Option<Connection>>,
    imported: Imported,
}

impl Db {
    /// Opens (creating it, mode 0600) `data_dir/certgate.db`, brings its schema up to date and
    /// imports the files of an earlier certgate found in `data_dir`.
    ///
    /// # Errors
    /// When `data_dir` does not exist, the file cannot be opened or is not a certgate database,
    /// its schema is newer than this certgate, or an old file cannot be imported.
    pub fn open(data_dir: &Path) -> Result<Self, DbError> {
        let path = data_dir.join(FILE);
        if !data_dir.is_dir() {
            return Err(DbError::new(
                data_dir,
                "no such data directory (give --config or --data-dir: the one certgate serves from)",
            ));
        }
        create_private(&path)?;
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| DbError::sql(&path, &e))?;
        configure(&conn).map_err(|e| DbError::sql(&path, &e))?;
        schema::migrate(&mut conn, &path)?;
        let imported = legacy::import(&mut conn, data_dir, &path)?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
            relaxed: Mutex::new(None),
            imported,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What this open imported from an earlier certgate's files (for `check-config` and the log).
    pub fn imported(&self) -> &Imported {
        &self.imported
    }

    /// Runs `f` on the connection (reads see the last committed state).
    ///
    /// # Errors
    /// The failed statement, naming the file.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&conn).map_err(|e| DbError::sql(&self.path, &e))
    }

    /// Runs `f` in a transaction that holds the write lock from its start, and commits it: when
    /// this returns `Ok`, what `f` wrote is on disk.
    ///
    /// # Errors
    /// The failed statement (nothing of `f` is kept), naming the file.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        write_with(&mut conn, f).map_err(|e| DbError::sql(&self.path, &e))
    }

    /// [`Self::write`] for records whose loss in a power cut costs a person a new sign-in and
    /// never lets anyone in (an OpenID Connect code or token being issued): committed to the
    /// write-ahead log without waiting for the disk (`synchronous = NORMAL`), so it survives a
    /// crash of certgate but not of the machine. Revocations never come through here.
    ///
    /// # Errors
    /// As [`Self::write`].
    pub fn write_relaxed<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        let mut relaxed = self.relaxed()?;
        let Some(conn) = relaxed.as_mut() else {
            return Err(DbError::new(&self.path, "no connection for relaxed writes"));
        };
        write_with(conn, f).map_err(|e| DbError::sql(&self.path, &e))
    }

    /// [`Self::read`] on the connection of [`Self::write_relaxed`]: for a read just before such
    /// a write, which then never waits behind a long read on the main connection (the grant
    /// sweep reads every live grant).
    ///
    /// # Errors
    /// The failed statement, naming the file.
    pub fn read_relaxed<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        let relaxed = self.relaxed()?;
        let Some(conn) = relaxed.as_ref() else {
            return Err(DbError::new(&self.path, "no connection for relaxed writes"));
        };
        f(conn).map_err(|e| DbError::sql(&self.path, &e))
    }

    /// The connection of [`Self::write_relaxed`], opened at its first use.
    fn relaxed(&self) -> Result<std::sync::MutexGuard<'_, Option<Connection>>, DbError> {
        let mut relaxed = self.relaxed.lock().unwrap_or_else(PoisonError::into_inner);
        if relaxed.is_none() {
            let conn = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .and_then(|conn| {
                configure(&conn)?;
                conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
                Ok(conn)
            })
            .map_err(|e| DbError::sql(&self.path, &e))?;
            *relaxed = Some(conn);
        }
        Ok(relaxed)
    }

    /// Gives back the space of deleted rows and trims the write-ahead log (after pruning).
    ///
    /// # Errors
    /// The failed statement.
    pub fn compact(&self) -> Result<(), DbError> {
        self.read(|conn| {
            // It frees pages one step at a time: step it to the end.
            let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
            let mut steps = vacuum.query([])?;
            while steps.next()?.is_some() {}
            drop(steps);
            // A checkpoint that cannot finish now (a reader is busy) is done the next time.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        })
    }

    /// A consistent copy of the whole database in `file` (which must not exist), taken while
    /// other processes go on writing: it holds every transaction committed before it started.
    ///
    /// # Errors
    /// When `file` exists or cannot be written.
    pub fn backup(&self, file: &Path) -> Result<(), DbError> {
        if file.exists() {
            return Err(DbError::new(
                file,
                "exists already; give a new file name (a backup never overwrites)",
            ));
        }
        let target = file
            .to_str()
            .ok_or_else(|| DbError::new(file, "is not valid UTF-8; give a plainer file name"))?;
        self.read(|conn| conn.execute("VACUUM INTO ?1", [target]).map(|_| ()))
            .map_err(|e| DbError::new(file, e.problem))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| DbError::new(file, e))?;
        }
        Ok(())
    }
}

/// The database of a data directory, opened at its first use: for stores that are made often
/// (per request) and may not need it at all.
#[derive(Debug, Clone)]
pub struct Lazy {
    data_dir: PathBuf,
    /// Shared by clones: a clone made after the open does not open again.
    db: std::sync::OnceLock<std::sync::Arc<Db>>,
}

impl Lazy {
    /// Does no I/O.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            db: std::sync::OnceLock::new(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The database, opened now if it is not yet (two threads racing both open it; one wins).
    ///
    /// # Errors
    /// As [`Db::open`].
    pub fn get(&self) -> Result<&Db, DbError> {
        if let Some(db) = self.db.get() {
            return Ok(db);
        }
        let opened = std::sync::Arc::new(Db::open(&self.data_dir)?);
        Ok(self.db.get_or_init(|| opened))
    }
}

/// `f` in an immediate transaction, committed.
fn write_with<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// The settings every connection needs. `synchronous = FULL`: a commit is fsynced before it
/// returns, which is what "acknowledged means durable" takes in WAL mode.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY)?;
    // Only takes effect on a database without tables (the first open): pruned rows give their
    // pages back with `incremental_vacuum`.
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!(
                "cannot switch to WAL mode (got {mode}): is the data directory on a network file system?"
            )),
        ));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = 4194304;
         PRAGMA foreign_keys = ON;",
    )
}

/// Creates the file with mode 0600 if it does not exist (SQLite gives its -wal and -shm files
/// the same mode). An existing file is never opened here: closing any descriptor of it drops
/// every POSIX lock this process holds on it, those of its open connections too, and another
/// process could then checkpoint and delete the write-ahead log under them.
fn create_private(path: &Path) -> Result<(), DbError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(file) => {
            drop(file);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(DbError::new(path, e)),
    }
}

#[cfg(test)]
mod tests;
