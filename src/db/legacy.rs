//! The files certgate kept before the database: `revocations.jsonl`, `ca/issued.jsonl`,
//! `ca/revoked.jsonl` and `enroll/<hash>.json`. Whoever opens the database first imports
//! them, in one transaction, and keeps them renamed `….imported`, never deleted.
//!
//! Nothing can be lost between the rename and the commit: each file is first renamed
//! `….importing`, every `….importing` is imported (rows already there are skipped), and only
//! after the commit is it renamed `….imported`. A crash anywhere leaves a `….importing` that
//! the next open imports again. A file an older certgate wrote after the import (it was still
//! running) is found at its old name and imported the same way.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, Transaction};
use serde::Deserialize;

use super::{write_with, DbError};

/// What one open imported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub revocations: usize,
    pub issued: usize,
    pub revoked: usize,
    pub enrollments: usize,
    /// The old files, as they are now named.
    pub kept: Vec<PathBuf>,
}

impl Imported {
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

impl std::fmt::Display for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} revocations, {} issued certificates, {} revoked certificates, {} enrollment links",
            self.revocations, self.issued, self.revoked, self.enrollments
        )
    }
}

/// One kind of old file: where it was, and how its content becomes rows.
struct Old {
    name: &'static str,
    import: fn(&Transaction<'_>, &Path, &mut Imported) -> Result<(), String>,
}

const OLD: [Old; 4] = [
    Old {
        name: "revocations.jsonl",
        import: revocations,
    },
    Old {
        name: "ca/issued.jsonl",
        import: issued,
    },
    Old {
        name: "ca/revoked.jsonl",
        import: revoked,
    },
    Old {
        name: "enroll",
        import: enrollments,
    },
];

/// Imports every old file in `data_dir` (see the module docs).
///
/// # Errors
/// When an old file cannot be read or holds a line that is not what it should: certgate does
/// not start on revocations it could not read. The message names the file and the line.
pub(super) fn import(
    conn: &mut Connection,
    data_dir: &Path,
    db: &Path,
) -> Result<Imported, DbError> {
    let mut pending = Vec::new();
    for old in &OLD {
        let (was, importing) = names(data_dir, old.name);
        if was.exists() {
            // Another process may have renamed it a moment ago: then its `.importing` is here.
            if let Err(e) = std::fs::rename(&was, &importing) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(DbError::new(
                        &was,
                        format!("cannot rename it for the import: {e}"),
                    ));
                }
            }
        }
        if importing.exists() {
            pending.push((old, importing));
        }
    }
    let mut imported = Imported::default();
    if pending.is_empty() {
        return Ok(imported);
    }
    let mut failed = None;
    let done = write_with(conn, |tx| {
        for (old, path) in &pending {
            if let Err(e) = (old.import)(tx, path, &mut imported) {
                failed = Some(DbError::new(path, e));
                return Err(rusqlite::Error::InvalidQuery);
            }
        }
        Ok(())
    });
    if let Some(e) = failed {
        return Err(e);
    }
    done.map_err(|e| DbError::sql(db, &e))?;
    for (old, importing) in pending {
        let kept = kept_name(data_dir, old.name);
        match std::fs::rename(&importing, &kept) {
            Ok(()) => imported.kept.push(kept),
            // Imported and renamed by another process at the same time.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %importing.display(), error = %e, "imported, but cannot rename it; it will be imported again (without duplicates) at the next start")
            }
        }
    }
    if !imported.is_empty() {
        tracing::info!(event = "store_imported", db = %db.display(), what = %imported, kept = ?imported.kept, "imported the files of an earlier certgate into the database; the old files are kept, renamed");
    }
    Ok(imported)
}

fn names(data_dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        data_dir.join(name),
        data_dir.join(format!("{name}.importing")),
    )
}

/// `name.imported`, or `name.imported.2`, … when an earlier import kept one already.
fn kept_name(data_dir: &Path, name: &str) -> PathBuf {
    let first = data_dir.join(format!("{name}.imported"));
    if !first.exists() {
        return first;
    }
    (2u64..)
        .map(|n| data_dir.join(format!("{name}.imported.{n}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// The complete lines of a file, numbered from 1. A last line without its newline was cut off
/// mid-write: its writer was never told it succeeded, so it is left out (and said).
fn lines(path: &Path) -> Result<Vec<(usize, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    if complete < text.len() {
        tracing::warn!(file = %path.display(), partial = %&text[complete..], "the last line was cut off while it was written (never acknowledged); it is not imported");
    }
    Ok(text[..complete]
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect())
}

fn revocations(tx: &Transaction<'_>, path: &Path, n: &mut Imported) -> Result<(), String> {
    let mut insert = tx
        .prepare("INSERT OR IGNORE INTO revocations (entry, expires) VALUES (?1, ?2)")
        .map_err(|e| e.to_string())?;
    for (line, text) in lines(path)? {
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("line {line} is not a revocation: {e}"))?;
        let kind = value.get("kind").and_then(serde_json::Value::as_str);
        if kind.is_none() {
            return Err(format!(
                "line {line} is not a revocation: it has no \"kind\""
            ));
        }
        // A token id's entry matters until the token expires (see the revocations table).
        let expires = (kind == Some("jti"))
            .then(|| value.get("until").and_then(serde_json::Value::as_i64))
            .flatten();
        // Kept as written (by the same serializer that writes rows now, so a line imported
        // twice is one row): the revocation module reads it as it read the journal.
        n.revocations += insert
            .execute(params![text.trim(), expires])
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A line of `ca/issued.jsonl`.
#[derive(Deserialize)]
struct IssuedLine {
    serial: String,
    user: String,
    #[serde(default)]
    device: Option<String>,
    not_after: i64,
    issued_at: i64,
}

fn issued(tx: &Transaction<'_>, path: &Path, n: &mut Imported) -> Result<(), String> {
    let mut insert = tx
        .prepare("INSERT OR IGNORE INTO ca_issued (serial, user, device, not_after, issued_at) VALUES (?1, ?2, ?3, ?4, ?5)")
        .map_err(|e| e.to_string())?;
    for (line, text) in lines(path)? {
        let r: IssuedLine = serde_json::from_str(&text)
            .map_err(|e| format!("line {line} is not an issued certificate: {e}"))?;
        n.issued += insert
            .execute(params![
                r.serial,
                r.user,
                r.device,
                r.not_after,
                r.issued_at
            ])
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A line of `ca/revoked.jsonl`.
#[derive(Deserialize)]
struct RevokedLine {
    serial: String,
    revoked_at: i64,
}

fn revoked(tx: &Transaction<'_>, path: &Path, n: &mut Imported) -> Result<(), String> {
    let mut insert = tx
        .prepare("INSERT OR IGNORE INTO ca_revoked (serial, revoked_at) VALUES (?1, ?2)")
        .map_err(|e| e.to_string())?;
    for (line, text) in lines(path)? {
        let r: RevokedLine = serde_json::from_str(&text)
            .map_err(|e| format!("line {line} is not a revoked certificate: {e}"))?;
        n.revoked += insert
            .execute(params![r.serial, r.revoked_at])
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One `enroll/<sha256 of the secret>.json`.
#[derive(Deserialize)]
struct EnrollmentFile {
    user: String,
    #[serde(default)]
    device: Option<String>,
    days: i64,
    expires_at: i64,
}

fn enrollments(tx: &Transaction<'_>, dir: &Path, n: &mut Imported) -> Result<(), String> {
    let mut insert = tx
        .prepare("INSERT OR IGNORE INTO enrollments (secret_hash, user, device, days, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)")
        .map_err(|e| e.to_string())?;
    let entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let Some(hash) = path
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_suffix(".json"))
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            // Not a link certgate wrote (a stray file an operator left): kept, not imported.
            continue;
        };
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let link: EnrollmentFile = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not an enrollment link: {e}", path.display()))?;
        n.enrollments += insert
            .execute(params![
                hash.to_ascii_lowercase(),
                link.user,
                link.device,
                link.days,
                link.expires_at
            ])
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
