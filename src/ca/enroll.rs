//! One-time enrollment links, in the database's `enrollments` table: only the SHA-256 of the
//! link's secret is kept, with the user, device and expiry. A link works once: using it
//! deletes its row in one statement, which succeeds for exactly one request.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rusqlite::{params, OptionalExtension as _, Row};
use serde::{Deserialize, Serialize};

use super::store::StoreError;
use crate::db::Db;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Validity of the certificate it will issue.
    pub days: i64,
    pub expires_at: i64,
}

/// The links of one data directory. The database is opened at its first use.
pub struct EnrollStore {
    dir: PathBuf,
    db: OnceLock<Arc<Db>>,
}

fn enrollment(row: &Row<'_>) -> rusqlite::Result<Enrollment> {
    Ok(Enrollment {
        user: row.get(0)?,
        device: row.get(1)?,
        days: row.get(2)?,
        expires_at: row.get(3)?,
    })
}

/// The key of a link secret's row; `None` for anything that is not one of ours (so nothing
/// a visitor types reaches the database).
fn hash(secret: &str) -> Option<String> {
    let ok = secret.len() == 22
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
        hex::encode(digest)
    })
}

impl EnrollStore {
    /// Does no I/O: the database is opened when a link is first created or looked up.
    pub fn new(data_dir: &std::path::Path) -> Self {
        Self {
            dir: data_dir.to_path_buf(),
            db: OnceLock::new(),
        }
    }

    fn db(&self) -> Result<&Db, StoreError> {
        if let Some(db) = self.db.get() {
            return Ok(db);
        }
        let opened = Arc::new(Db::open(&self.dir)?);
        Ok(self.db.get_or_init(|| opened))
    }

    /// Creates a link secret for `enrollment`.
    ///
    /// # Errors
    /// When the row cannot be written.
    pub fn create(&self, enrollment: &Enrollment) -> Result<String, StoreError> {
        let db = self.db()?;
        let failed = |problem: &str| StoreError::File {
            path: db.path().to_path_buf(),
            problem: problem.to_string(),
        };
        let secret = crate::jwt::random_id()
            .ok_or_else(|| failed("the system random number generator failed"))?;
        let key = hash(&secret).ok_or_else(|| failed("the new link's secret is malformed"))?;
        db.write(|tx| {
            tx.execute(
                "INSERT INTO enrollments (secret_hash, user, device, days, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key, enrollment.user, enrollment.device, enrollment.days, enrollment.expires_at],
            )
        })?;
        Ok(secret)
    }

    /// The enrollment behind a link, if it is still usable.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn peek(&self, secret: &str, now: i64) -> Result<Option<Enrollment>, StoreError> {
        let Some(key) = hash(secret) else {
            return Ok(None);
        };
        Ok(self.db()?.read(|conn| {
            conn.query_row(
                "SELECT user, device, days, expires_at FROM enrollments WHERE secret_hash = ?1 AND expires_at > ?2",
                params![key, now],
                enrollment,
            )
            .optional()
        })?)
    }

    /// Puts back a link whose use failed before anything was handed out.
    pub fn restore(&self, secret: &str, enrollment: &Enrollment) {
        let Some(key) = hash(secret) else {
            return;
        };
        let restored = self.db().and_then(|db| {
            Ok(db.write(|tx| {
                tx.execute(
                    "INSERT OR REPLACE INTO enrollments (secret_hash, user, device, days, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![key, enrollment.user, enrollment.device, enrollment.days, enrollment.expires_at],
                )
            })?)
        });
        if let Err(e) = restored {
            tracing::error!(error = %e, "cannot restore an enrollment link after a failed issue");
        }
    }

    /// Uses the link: only one caller ever gets `Some` (one `DELETE`, which one caller wins).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn consume(&self, secret: &str, now: i64) -> Result<Option<Enrollment>, StoreError> {
        let Some(key) = hash(secret) else {
            return Ok(None);
        };
        Ok(self.db()?.write(|tx| {
            tx.query_row(
                "DELETE FROM enrollments WHERE secret_hash = ?1 AND expires_at > ?2 RETURNING user, device, days, expires_at",
                params![key, now],
                enrollment,
            )
            .optional()
        })?)
    }

    /// Deletes the links that expired by `now` (the server does so periodically): returns how
    /// many.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn prune(&self, now: i64) -> Result<usize, StoreError> {
        Ok(self
            .db()?
            .write(|tx| tx.execute("DELETE FROM enrollments WHERE expires_at <= ?1", [now]))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bob(expires_at: i64) -> Enrollment {
        Enrollment {
            user: "bob".into(),
            device: Some("watch".into()),
            days: 30,
            expires_at,
        }
    }

    fn rows(dir: &std::path::Path) -> Vec<String> {
        Db::open(dir)
            .unwrap()
            .read(|c| {
                let mut stmt = c.prepare("SELECT secret_hash FROM enrollments")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                rows.collect()
            })
            .unwrap()
    }

    #[test]
    fn a_link_works_once_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = EnrollStore::new(dir.path());
        let secret = store.create(&bob(1_000)).unwrap();
        assert_eq!(store.peek(&secret, 10).unwrap(), Some(bob(1_000)));
        assert_eq!(store.consume(&secret, 10).unwrap(), Some(bob(1_000)));
        assert_eq!(store.consume(&secret, 10).unwrap(), None, "second use");
        assert_eq!(store.peek(&secret, 10).unwrap(), None, "used");
        let late = store.create(&bob(1_000)).unwrap();
        assert_eq!(store.peek(&late, 1_000).unwrap(), None, "expired");
        assert_eq!(store.consume(&late, 1_000).unwrap(), None, "expired");
        assert_eq!(store.peek("../../etc/passwd", 0).unwrap(), None);
        assert_eq!(store.consume("' OR 1=1 --", 0).unwrap(), None);
        // Only the hash is stored.
        let stored = rows(dir.path());
        assert_eq!(stored, [hash(&late).unwrap()]);
        assert!(stored.iter().all(|h| h != &secret && h != &late));
        // A link whose use failed is back, once.
        store.restore(&secret, &bob(1_000));
        assert_eq!(store.consume(&secret, 10).unwrap(), Some(bob(1_000)));
        assert_eq!(store.consume(&secret, 10).unwrap(), None);
    }

    #[test]
    fn a_link_used_by_eight_processes_at_once_is_won_by_exactly_one() {
        let dir = tempfile::tempdir().unwrap();
        let secret = EnrollStore::new(dir.path()).create(&bob(1_000)).unwrap();
        let start = std::sync::Barrier::new(8);
        let won: Vec<Option<Enrollment>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        // Each its own connection, as separate workers and processes have.
                        let store = EnrollStore::new(dir.path());
                        assert_eq!(store.peek(&secret, 10).unwrap(), Some(bob(1_000)));
                        start.wait();
                        store.consume(&secret, 10).unwrap()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(won.iter().flatten().count(), 1, "{won:?}");
        assert!(rows(dir.path()).is_empty());
    }

    #[test]
    fn expired_links_are_pruned_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = EnrollStore::new(dir.path());
        let old = store.create(&bob(100)).unwrap();
        store.create(&bob(200)).unwrap();
        let live = store.create(&bob(300)).unwrap();
        assert_eq!(store.prune(99).unwrap(), 0);
        assert_eq!(
            store.prune(200).unwrap(),
            2,
            "expiry at 200 is expired at 200"
        );
        assert_eq!(store.prune(200).unwrap(), 0);
        assert_eq!(rows(dir.path()), [hash(&live).unwrap()]);
        // Pruned is gone even for a clock that says it is still valid.
        assert_eq!(store.peek(&old, 50).unwrap(), None);
        assert_eq!(store.peek(&live, 250).unwrap(), Some(bob(300)));
    }
}
