//! One-time enrollment links. Only the SHA-256 of the link's secret is kept on disk
//! (`data_dir/enroll/<hash>.json`, 0600), with the user, device and expiry. A link works
//! once: using it removes the record, which succeeds for exactly one request.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store::StoreError;
use crate::jwt::keys::{create_private_dir, write_private};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Validity of the certificate it will issue.
    pub days: i64,
    pub expires_at: i64,
}

pub struct EnrollStore {
    dir: PathBuf,
}

fn file_err(path: &Path, problem: impl std::fmt::Display) -> StoreError {
    StoreError::File {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

impl EnrollStore {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("enroll"),
        }
    }

    /// The record's file for a link secret; `None` for anything that is not one of ours.
    fn path(&self, secret: &str) -> Option<PathBuf> {
        let ok = secret.len() == 22
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| {
            let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
            self.dir.join(format!("{}.json", hex::encode(hash)))
        })
    }

    /// Creates a link secret for `enrollment`.
    ///
    /// # Errors
    /// When the record cannot be written.
    pub fn create(&self, enrollment: &Enrollment) -> Result<String, StoreError> {
        create_private_dir(&self.dir).map_err(|e| file_err(&self.dir, e))?;
        let secret = crate::jwt::random_id()
            .ok_or_else(|| file_err(&self.dir, "the system random number generator failed"))?;
        let path = self
            .path(&secret)
            .ok_or_else(|| file_err(&self.dir, "bad secret"))?;
        let json = serde_json::to_vec(enrollment).map_err(|e| file_err(&path, e))?;
        write_private(&path, &json).map_err(|e| file_err(&path, e))?;
        Ok(secret)
    }

    /// The enrollment behind a link, if it is still usable (an expired one is removed).
    pub fn peek(&self, secret: &str, now: i64) -> Option<Enrollment> {
        let path = self.path(secret)?;
        let record: Enrollment = serde_json::from_slice(&fs::read(&path).ok()?).ok()?;
        if record.expires_at <= now {
            let _ = fs::remove_file(&path);
            return None;
        }
        Some(record)
    }

    /// Puts back a link whose use failed before anything was handed out.
    pub fn restore(&self, secret: &str, enrollment: &Enrollment) {
        if let (Some(path), Ok(json)) = (self.path(secret), serde_json::to_vec(enrollment)) {
            if let Err(e) = write_private(&path, &json) {
                tracing::error!(error = %e, "cannot restore an enrollment link after a failed issue");
            }
        }
    }

    /// Uses the link: only one caller ever gets `Some`.
    pub fn consume(&self, secret: &str, now: i64) -> Option<Enrollment> {
        let record = self.peek(secret, now)?;
        let path = self.path(secret)?;
        fs::remove_file(path).ok().map(|()| record)
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

    #[test]
    fn a_link_works_once_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = EnrollStore::new(dir.path());
        let secret = store.create(&bob(1_000)).unwrap();
        assert_eq!(store.peek(&secret, 10), Some(bob(1_000)));
        assert_eq!(store.consume(&secret, 10), Some(bob(1_000)));
        assert_eq!(store.consume(&secret, 10), None, "second use");
        let late = store.create(&bob(1_000)).unwrap();
        assert_eq!(store.consume(&late, 1_000), None, "expired");
        assert_eq!(store.peek("../../etc/passwd", 0), None);
        // Only the hash is on disk.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("enroll"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names
            .iter()
            .all(|n| !n.contains(&secret) && !n.contains(&late)));
    }
}
