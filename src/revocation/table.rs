//! The embedded store: the `revocations` table of `data_dir/certgate.db`, one [`Entry`] (as
//! JSON) per row, in the order written. The server, `certgate revoke` and a second certgate
//! on the host all write it at once; each reader remembers the last row it read, so following
//! it is one indexed query a few times a second.
//!
//! Rows that can no longer decide anything are pruned ([`Table::prune`]): a token id once its
//! token has expired (then the token fails its own expiry check first, see `jwt::LEEWAY`), and
//! a user's or device's cut-off once a later one of the same key covers everything it did.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::params;

use super::Entry;
use crate::cert::Serial;
use crate::db::Db;

#[derive(Debug)]
pub struct Table {
    db: Arc<Db>,
    /// The last `seq` read; `None` before the first read.
    read_to: Mutex<Option<i64>>,
}

/// What one [`Table::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub expired: usize,
    pub superseded: usize,
}

impl Table {
    pub fn new(db: Arc<Db>) -> Self {
        Self {
            db,
            read_to: Mutex::new(None),
        }
    }

    /// Left in `data_dir` by a certgate that keeps revocations in Redis, so that a tool
    /// writing to this directory's table (which that certgate never reads) refuses.
    pub fn redis_marker(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("revocations-are-in-redis")
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Writes one entry; on `Ok` it is on disk and every reader will see it.
    ///
    /// # Errors
    /// When the database cannot be written; the message names it.
    pub fn append(&self, entry: &Entry) -> Result<(), String> {
        let json = serde_json::to_string(entry).map_err(|e| e.to_string())?;
        let expires = match entry {
            Entry::Jti { until, .. } => Some(*until),
            _ => None,
        };
        self.db
            .write(|tx| {
                tx.execute(
                    "INSERT OR IGNORE INTO revocations (entry, expires) VALUES (?1, ?2)",
                    params![json, expires],
                )
            })
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Hands `each` the entries written since the last call (all of them on the first), in
    /// the order written. Read in batches, each parsed straight from SQLite's buffer: a start
    /// with a million rows never holds them all as text at once.
    ///
    /// # Errors
    /// When the database cannot be read, or a row is not an entry: revocations that cannot be
    /// read must not be taken as none. The entries before that row were handed over, and the
    /// next call starts at that row again.
    ///
    /// Before a read of more than a batch (the first, or a burst another process wrote), hands
    /// `reserve` how many live token ids are coming, so the view makes room once.
    pub fn read_new(
        &self,
        now: i64,
        mut reserve: impl FnMut(usize),
        mut each: impl FnMut(&[Entry]),
    ) -> Result<(), String> {
        const BATCH: i64 = 4096;
        let mut read_to = self.read_to.lock().unwrap_or_else(PoisonError::into_inner);
        if read_to.is_none() {
            reserve(self.live_jti_rows(0, now)?);
        }
        let mut counted = read_to.is_none();
        loop {
            let from = read_to.unwrap_or(0);
            let mut bad = None;
            let batch = self
                .db
                .read(|conn| {
                    let mut query = conn.prepare_cached(
                        "SELECT seq, entry FROM revocations WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    )?;
                    let mut rows = query.query(params![from, BATCH])?;
                    let mut batch = Vec::new();
                    while let Some(row) = rows.next()? {
                        let seq: i64 = row.get(0)?;
                        let text = row.get_ref(1)?.as_str().unwrap_or("");
                        match parse_row(text) {
                            Ok(entry) => batch.push((seq, entry)),
                            Err(e) => {
                                bad = Some((seq, e));
                                break;
                            }
                        }
                    }
                    Ok(batch)
                })
                .map_err(|e| e.to_string())?;
            let full = batch.len() as i64 == BATCH;
            if let Some(&(last, _)) = batch.last() {
                if full && !counted {
                    counted = true;
                    reserve(self.live_jti_rows(from, now)?);
                }
                let entries: Vec<Entry> = batch.into_iter().map(|(_, e)| e).collect();
                each(&entries);
                *read_to = Some(last);
            } else if read_to.is_none() {
                *read_to = Some(0);
            }
            if let Some((seq, e)) = bad {
                return Err(format!(
                    "{}: revocations row {seq} is not a revocation: {e}",
                    self.path().display()
                ));
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Deletes the rows that can no longer decide anything as of `now` (see the module docs).
    ///
    /// # Errors
    /// When the database cannot be read or written.
    pub fn prune(&self, now: i64) -> Result<Pruned, String> {
        let horizon = now.saturating_sub(crate::jwt::LEEWAY);
        self.db
            .write(|tx| {
                let expired = tx.execute(
                    "DELETE FROM revocations WHERE expires IS NOT NULL AND expires <= ?1",
                    [horizon],
                )?;
                let superseded = superseded(tx)?;
                let mut delete = tx.prepare("DELETE FROM revocations WHERE seq = ?1")?;
                for seq in &superseded {
                    delete.execute([seq])?;
                }
                Ok(Pruned {
                    expired,
                    superseded: superseded.len(),
                })
            })
            .map_err(|e| e.to_string())
    }

    /// Token-id rows after row `from` whose tokens have not expired as of `now`: one count
    /// over the `expires` index.
    fn live_jti_rows(&self, from: i64, now: i64) -> Result<usize, String> {
        let horizon = now.saturating_sub(crate::jwt::LEEWAY);
        self.db
            .read(|c| {
                c.query_row(
                    "SELECT count(*) FROM revocations INDEXED BY revocations_expires \
                     WHERE expires > ?1 AND seq > ?2",
                    params![horizon, from],
                    |r| r.get::<_, i64>(0),
                )
            })
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(|e| e.to_string())
    }

    /// Rows in the table (for tests and `check-config`).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn rows(&self) -> Result<i64, String> {
        self.db
            .read(|c| c.query_row("SELECT count(*) FROM revocations", [], |r| r.get(0)))
            .map_err(|e| e.to_string())
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }
}

/// One row's entry. Nearly every row is a token id: those are read straight into their fields
/// (serde reads an internally tagged enum through a buffer of the whole object first, which
/// a start with a million rows pays for a million times); anything else, or a token id in a
/// spelling the fast path does not take, goes through [`Entry`]'s own reader.
pub(super) fn parse_row(text: &str) -> serde_json::Result<Entry> {
    #[derive(serde::Deserialize)]
    struct Jti<'a> {
        kind: &'a str,
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
        until: i64,
    }
    match serde_json::from_str::<Jti<'_>>(text) {
        Ok(Jti {
            kind: "jti",
            id,
            until,
        }) => Ok(Entry::Jti {
            id: id.into_owned(),
            until,
        }),
        _ => serde_json::from_str(text),
    }
}

/// The user and device cut-offs covered by a later one of the same key (a cut-off ends every
/// token issued up to it, so the latest covers all earlier ones). Locks are kept: each also
/// ends tokens, and their order with unlocks decides whether the user is locked.
fn superseded(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<Vec<i64>> {
    // Everything but token ids: one row per user, device, serial or lock an operator acted on.
    let mut query = tx.prepare("SELECT seq, entry FROM revocations WHERE expires IS NULL")?;
    let rows = query.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    // key → (cut-off, seq) of the latest so far.
    let mut latest: HashMap<(bool, String), (i64, i64)> = HashMap::new();
    let mut covered = Vec::new();
    for row in rows {
        let (seq, json) = row?;
        let key_cutoff = match serde_json::from_str::<Entry>(&json) {
            Ok(Entry::User { id, at, at_ms }) => ((true, id), Entry::cutoff_ms(at, at_ms)),
            Ok(Entry::Device { id, at, at_ms }) => (
                (false, Serial::canonical(&id).into_owned()),
                Entry::cutoff_ms(at, at_ms),
            ),
            // Not ours to judge here: left as it is (the reader says what is wrong with it).
            _ => continue,
        };
        let (key, cutoff) = key_cutoff;
        match latest.get_mut(&key) {
            Some(best) if best.0 >= cutoff => covered.push(seq),
            Some(best) => {
                covered.push(best.1);
                *best = (cutoff, seq);
            }
            None => {
                latest.insert(key, (cutoff, seq));
            }
        }
    }
    Ok(covered)
}
