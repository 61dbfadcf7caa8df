//! Which certificates certgate knows of: issued by its CA, listed in a loaded CRL, or seen at
//! sign-in. A serial revoked by hand is checked against them, so that an operator who copied
//! the wrong serial is told so, rather than left to think the revocation took effect.
//!
//! Sign-ins are recorded in `data_dir/certs-seen.jsonl`, one line the first time this process
//! sees a serial: the CLI on the same host reads it.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::ca::store::CaStore;
use crate::cert::{crl, Serial};

/// Most serials one process records; past it, new ones are not (said once in the log).
const MAX_SEEN: usize = 100_000;

/// One certificate seen at sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenRecord {
    pub serial: Serial,
    pub user: String,
    pub at: i64,
}

/// The serials seen at sign-in, and the file they are recorded in.
#[derive(Debug)]
pub struct Seen {
    path: Option<PathBuf>,
    /// Loaded from the file at the first sign-in.
    serials: Mutex<Option<HashSet<Serial>>>,
    /// `MAX_SEEN` was reached (and said).
    full: std::sync::atomic::AtomicBool,
}

impl Seen {
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            path: Some(data_dir.join("certs-seen.jsonl")),
            serials: Mutex::new(None),
            full: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Remembers nothing on disk (tests and tools).
    pub fn in_memory() -> Self {
        Self {
            path: None,
            serials: Mutex::new(None),
            full: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Notes that the certificate `serial` signed in `user()` (worked out only the first time:
    /// `None` when it signs nobody in, and then nothing is noted); appended to the file the
    /// first time. A failed write is logged and loses only this note.
    pub fn record(&self, serial: &Serial, user: impl FnOnce() -> Option<String>, now: i64) {
        let mut guard = self.serials.lock().unwrap_or_else(PoisonError::into_inner);
        let serials = guard.get_or_insert_with(|| {
            self.path
                .as_deref()
                .and_then(|p| read(p).ok())
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.serial)
                .collect()
        });
        if serials.contains(serial) {
            return;
        }
        let Some(user) = user() else { return };
        if serials.len() >= MAX_SEEN {
            if !self.full.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    limit = MAX_SEEN,
                    "certificates seen at sign-in: no more are recorded until a restart"
                );
            }
            return;
        }
        serials.insert(serial.clone());
        let Some(path) = &self.path else { return };
        let line = SeenRecord {
            serial: serial.clone(),
            user,
            at: now,
        };
        let appended = serde_json::to_string(&line)
            .map_err(|e| e.to_string())
            .and_then(|mut text| {
                text.push('\n');
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(text.as_bytes()))
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = appended {
            tracing::warn!(path = %path.display(), error = %e, "cannot record a certificate seen at sign-in");
        }
    }
}

/// The records in a `certs-seen.jsonl`; none when it does not exist. Lines that cannot be
/// read are skipped: this is a hint for operators, never a reason to refuse or allow.
fn read(path: &Path) -> std::io::Result<Vec<SeenRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Where certgate knows a serial from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// Issued by the built-in CA.
    Issued { user: String },
    /// Listed in this CRL file.
    InCrl(PathBuf),
    /// Presented at sign-in by this user.
    SeenAtSignIn { user: String },
}

impl std::fmt::Display for Known {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Issued { user } => write!(f, "issued by the built-in CA to {user}"),
            Self::InCrl(path) => write!(f, "listed in the CRL {}", path.display()),
            Self::SeenAtSignIn { user } => write!(f, "seen at sign-in from {user}"),
        }
    }
}

/// Where `serial` is known from (empty: nowhere), looking in the built-in CA and the
/// sign-in record of `data_dir` and in `crl_files`. Sources that cannot be read are skipped
/// and named in the second list.
pub fn lookup(
    serial: &Serial,
    data_dir: &Path,
    crl_files: &[PathBuf],
) -> (Vec<Known>, Vec<String>) {
    let (mut known, mut unread) = (Vec::new(), Vec::new());
    let ca = CaStore::new(data_dir);
    if ca.cert_path().exists() {
        match ca.list() {
            Ok(list) => known.extend(
                list.into_iter()
                    .filter(|r| &r.serial == serial)
                    .map(|r| Known::Issued { user: r.user }),
            ),
            Err(e) => unread.push(e.to_string()),
        }
    }
    for path in crl_files {
        match crl::read_crl(path) {
            Ok(list) if crl::lists(std::slice::from_ref(&list), serial.as_str()) => {
                known.push(Known::InCrl(path.clone()));
            }
            Ok(_) => {}
            Err(e) => unread.push(format!("{}: {e}", path.display())),
        }
    }
    let seen = data_dir.join("certs-seen.jsonl");
    match read(&seen) {
        Ok(records) => known.extend(
            records
                .into_iter()
                .filter(|r| &r.serial == serial)
                .map(|r| Known::SeenAtSignIn { user: r.user }),
        ),
        Err(e) => unread.push(format!("{}: {e}", seen.display())),
    }
    known.dedup();
    (known, unread)
}

/// What to tell an operator who revoked `serial`: where certgate knows it from, or plainly
/// that it knows no such certificate.
pub fn describe(serial: &Serial, data_dir: &Path, crl_files: &[PathBuf]) -> (bool, String) {
    let (known, unread) = lookup(serial, data_dir, crl_files);
    let unread = if unread.is_empty() {
        String::new()
    } else {
        format!(" (could not read: {})", unread.join("; "))
    };
    if known.is_empty() {
        let text = format!(
            "no certificate certgate knows of has serial {serial}: none was issued by its CA, listed in a loaded CRL or seen at sign-in{unread}. The revocation is kept and refuses such a certificate if one appears; check the serial with `openssl x509 -noout -serial -in CERT`"
        );
        return (false, text);
    }
    let list: Vec<String> = known.iter().map(ToString::to_string).collect();
    (
        true,
        format!("certificate {serial}: {}{unread}", list.join("; ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_seen_at_sign_in_is_known_in_any_spelling_and_recorded_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let serial = Serial::from_der(&[0x00, 0x9a, 0x01]);
        let seen = Seen::in_data_dir(dir.path());
        seen.record(&serial, || None, 9);
        seen.record(&serial, || Some("bob".into()), 10);
        seen.record(&serial, || unreachable!(), 11);
        let text = std::fs::read_to_string(dir.path().join("certs-seen.jsonl"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text.lines().count(), 1, "{text}");
        let copied = Serial::parse("9A:01").unwrap_or_else(|e| panic!("{e}"));
        let (known, text) = describe(&copied, dir.path(), &[]);
        assert!(known, "{text}");
        assert!(text.contains("seen at sign-in from bob"), "{text}");
        let other = Serial::parse("9A02").unwrap_or_else(|e| panic!("{e}"));
        let (known, text) = describe(&other, dir.path(), &[]);
        assert!(!known);
        assert!(
            text.starts_with("no certificate certgate knows of has serial 9a02"),
            "{text}"
        );
        // A second process reads what the first recorded.
        let again = Seen::in_data_dir(dir.path());
        again.record(&serial, || unreachable!(), 12);
        let text = std::fs::read_to_string(dir.path().join("certs-seen.jsonl"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
