//! The built-in CA: `data_dir/ca.pem` and `ca.key` (0600) — where the quickstart puts its demo
//! CA too — and, in the database ([`crate::db`]), every certificate it issued (`ca_issued`)
//! and revoked (`ca_revoked`).

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::{export_p12, Ca, CaError, ClientSpec, P12Kind};
use crate::cert::Serial;
use crate::db::{Db, DbError};
use crate::jwt::keys::{create_private_dir, write_private};

/// A record of one issued certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedRecord {
    pub serial: Serial,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub not_after: i64,
    pub issued_at: i64,
}

/// Where the CA lives. The database is opened at its first use, once per `CaStore`.
#[derive(Debug, Clone)]
pub struct CaStore {
    pub dir: PathBuf,
    db: OnceLock<Arc<Db>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The database (the message names its file).
    #[error(transparent)]
    Db(#[from] DbError),
}

fn file_err(path: &Path, problem: impl std::fmt::Display) -> StoreError {
    StoreError::File {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

/// A freshly issued certificate and where its files went.
pub struct IssuedFiles {
    pub record: IssuedRecord,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub p12: Option<PathBuf>,
}

impl CaStore {
    /// Does no I/O: the database is opened when a record is first read or written.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.to_path_buf(),
            db: OnceLock::new(),
        }
    }

    /// The database, opened now if it is not yet (two threads racing both open it; one wins).
    fn db(&self) -> Result<&Db, StoreError> {
        if let Some(db) = self.db.get() {
            return Ok(db);
        }
        let opened = Arc::new(Db::open(&self.dir)?);
        Ok(self.db.get_or_init(|| opened))
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// Revokes an issued certificate. Returns `false` when it was revoked already.
    ///
    /// # Errors
    /// When the serial was never issued here, or the database cannot be written.
    pub fn revoke(&self, serial: &Serial, now: i64) -> Result<bool, StoreError> {
        let db = self.db()?;
        // One transaction: the check and the insert see the same rows.
        let done = db.write(|tx| {
            if !issued_rows(tx)?.iter().any(|(s, ..)| same(s, serial)) {
                return Ok(None);
            }
            if revoked_rows(tx)?.iter().any(|(s, _)| same(s, serial)) {
                return Ok(Some(false));
            }
            tx.execute(
                "INSERT INTO ca_revoked (serial, revoked_at) VALUES (?1, ?2)",
                params![serial.as_str(), now],
            )?;
            Ok(Some(true))
        })?;
        done.ok_or_else(|| {
            file_err(
                db.path(),
                format!(
                    "no certificate with serial {serial} was issued here (see `certgate ca list`)"
                ),
            )
        })
    }

    /// A freshly signed CRL (PEM, DER) of every revocation, valid for `days`: the CA's own
    /// list and, of `also` (the revocation store's serials with when they were revoked),
    /// those this CA issued. A serial of another CA is never listed: it is not this CA's to
    /// revoke.
    ///
    /// # Errors
    /// When the CA or the revocations cannot be read, or signing fails.
    pub fn crl(
        &self,
        now: i64,
        days: i64,
        also: &[(Serial, i64)],
    ) -> Result<(String, Vec<u8>), StoreError> {
        let ca = self.load()?;
        let mut revoked = self.revoked_at()?;
        if !also.is_empty() {
            let issued: HashSet<Serial> = self.list()?.into_iter().map(|r| r.serial).collect();
            for (serial, at) in also.iter().filter(|(s, _)| issued.contains(s)) {
                let first = revoked.entry(serial.clone()).or_insert(*at);
                *first = (*first).min(*at);
            }
        }
        let revoked: Vec<(Vec<u8>, i64)> = revoked
            .into_iter()
            .map(|(serial, at)| (serial.to_bytes(), at))
            .collect();
        Ok(ca.crl(&revoked, now, days)?)
    }

    /// Whether this CA issued the certificate with `serial`.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn issued(&self, serial: &Serial) -> Result<bool, StoreError> {
        Ok(self.list()?.iter().any(|r| &r.serial == serial))
    }

    /// Creates a new CA, or imports one from PEM files; never replaces an existing CA.
    ///
    /// # Errors
    /// When a CA exists already, or a file cannot be read or written.
    pub fn init(
        &self,
        name: &str,
        key_type: super::KeyType,
        import: Option<(&Path, &Path)>,
        now: i64,
    ) -> Result<Ca, StoreError> {
        if self.cert_path().exists() || self.key_path().exists() {
            return Err(file_err(
                &self.cert_path(),
                "a CA exists already; move it away first if you really want a new one (every certificate it issued stops working)",
            ));
        }
        create_private_dir(&self.dir).map_err(|e| file_err(&self.dir, e))?;
        let ca = match import {
            Some((cert, key)) => {
                let cert_pem = fs::read_to_string(cert).map_err(|e| file_err(cert, e))?;
                let key_pem = fs::read_to_string(key).map_err(|e| file_err(key, e))?;
                crate::cert::check_is_ca(
                    &rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
                        .map(|d: rustls_pki_types::CertificateDer<'static>| d.to_vec())
                        .map_err(|e| file_err(cert, e))?,
                )
                .map_err(|e| file_err(cert, format!("certificate {e}")))?;
                Ca::load(&cert_pem, &key_pem)?
            }
            None => Ca::generate_with(name, key_type, now)?,
        };
        write_private(&self.key_path(), ca.key_pem.as_bytes())
            .map_err(|e| file_err(&self.key_path(), e))?;
        fs::write(self.cert_path(), &ca.cert_pem).map_err(|e| file_err(&self.cert_path(), e))?;
        Ok(ca)
    }

    /// # Errors
    /// When the CA files are missing or unusable.
    pub fn load(&self) -> Result<Ca, StoreError> {
        let read = |p: &Path| {
            fs::read_to_string(p)
                .map_err(|e| file_err(p, format!("{e} (create a CA with `certgate ca init`)")))
        };
        Ok(Ca::load(
            &read(&self.cert_path())?,
            &read(&self.key_path())?,
        )?)
    }

    /// Signs a certificate for `user` (and `device`) and records it in `ca_issued`.
    fn sign(
        &self,
        user: &str,
        device: Option<&str>,
        days: i64,
        now: i64,
    ) -> Result<(Ca, super::Issued, IssuedRecord), StoreError> {
        let ca = self.load()?;
        let mut spec = ClientSpec::new(user, days);
        spec.organizational_unit = device.map(String::from);
        spec.uris = std::iter::once(format!("urn:certgate:user:{}", urn_part(user)))
            .chain(device.map(|d| format!("urn:certgate:device:{}", urn_part(d))))
            .collect();
        let issued = ca.issue(&spec, now)?;
        let parsed =
            crate::cert::ClientCert::parse(&issued.cert_der).map_err(|e| file_err(&self.dir, e))?;
        let record = IssuedRecord {
            serial: parsed.serial,
            user: user.to_string(),
            device: device.map(String::from),
            not_after: parsed.not_after,
            issued_at: now,
        };
        self.db()?.write(|tx| {
            tx.execute(
                "INSERT INTO ca_issued (serial, user, device, not_after, issued_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    record.serial.as_str(),
                    record.user,
                    record.device,
                    record.not_after,
                    record.issued_at
                ],
            )
        })?;
        Ok((ca, issued, record))
    }

    /// Issues a certificate straight into a PKCS#12 file in memory: the private key is never
    /// written anywhere (enrollment links).
    ///
    /// # Errors
    /// When the CA cannot sign or the database cannot be written.
    pub fn issue_p12(
        &self,
        user: &str,
        device: Option<&str>,
        days: i64,
        kind: P12Kind,
        password: &str,
        now: i64,
    ) -> Result<(Vec<u8>, IssuedRecord), StoreError> {
        let (ca, issued, record) = self.sign(user, device, days, now)?;
        let bytes = pack(&ca, &issued, device.unwrap_or(user), kind, password)?;
        Ok((bytes, record))
    }

    /// Issues a client certificate for `user` (and `device`), writes `<out>/<name>.pem` and
    /// `.key` (0600), optionally a PKCS#12 file, and records it in the database.
    ///
    /// # Errors
    /// When the CA cannot sign or a file cannot be written.
    pub fn issue(
        &self,
        user: &str,
        device: Option<&str>,
        days: i64,
        out: &Path,
        p12: Option<(&Path, P12Kind, &str)>,
        now: i64,
    ) -> Result<IssuedFiles, StoreError> {
        let stem = match device {
            Some(d) => format!("{}-{}", file_part(user), file_part(d)),
            None => file_part(user),
        };
        let (cert, key) = (
            out.join(format!("{stem}.pem")),
            out.join(format!("{stem}.key")),
        );
        // Refuse before signing, so no certificate is recorded that nobody received.
        for path in [&cert, &key]
            .into_iter()
            .map(PathBuf::as_path)
            .chain(p12.map(|(p, _, _)| p))
        {
            if path.exists() {
                return Err(file_err(
                    path,
                    "exists already; choose another --out (or --p12), or move the old file away",
                ));
            }
        }
        let (ca, issued, record) = self.sign(user, device, days, now)?;
        fs::create_dir_all(out).map_err(|e| file_err(out, e))?;
        write_private(&key, issued.key_pem.as_bytes()).map_err(|e| file_err(&key, e))?;
        fs::write(&cert, &issued.cert_pem).map_err(|e| file_err(&cert, e))?;
        let p12 = match p12 {
            Some((path, kind, password)) => {
                let bytes = pack(&ca, &issued, device.unwrap_or(user), kind, password)?;
                write_private(path, &bytes).map_err(|e| file_err(path, e))?;
                Some(path.to_path_buf())
            }
            None => None,
        };
        Ok(IssuedFiles {
            record,
            cert,
            key,
            p12,
        })
    }

    /// Every certificate issued, oldest first.
    ///
    /// # Errors
    /// When the database cannot be read; a row whose serial is not one is an error naming it.
    pub fn list(&self) -> Result<Vec<IssuedRecord>, StoreError> {
        let db = self.db()?;
        db.read(issued_rows)?
            .into_iter()
            .map(|(serial, user, device, not_after, issued_at)| {
                Ok(IssuedRecord {
                    serial: parse_serial(db.path(), "ca_issued", &serial)?,
                    user,
                    device,
                    not_after,
                    issued_at,
                })
            })
            .collect()
    }

    /// The serials this CA revoked.
    ///
    /// # Errors
    /// When they cannot be read: then no status of this CA's certificates is known.
    pub fn revoked(&self) -> Result<HashSet<Serial>, StoreError> {
        Ok(self.revoked_at()?.into_keys().collect())
    }

    /// The serials this CA revoked, with when (the first time, for a serial written twice).
    fn revoked_at(&self) -> Result<BTreeMap<Serial, i64>, StoreError> {
        let db = self.db()?;
        read_revoked(db)
    }
}

/// The rows of `ca_issued`, oldest first: serial, user, device, not after, issued at.
type IssuedRow = (String, String, Option<String>, i64, i64);

fn issued_rows(conn: &Connection) -> rusqlite::Result<Vec<IssuedRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT serial, user, device, not_after, issued_at FROM ca_issued ORDER BY rowid",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    rows.collect()
}

/// The rows of `ca_revoked`: serial, revoked at.
fn revoked_rows(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT serial, revoked_at FROM ca_revoked ORDER BY rowid")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

fn read_revoked(db: &Db) -> Result<BTreeMap<Serial, i64>, StoreError> {
    let mut revoked = BTreeMap::new();
    for (serial, at) in db.read(revoked_rows)? {
        let first = revoked
            .entry(parse_serial(db.path(), "ca_revoked", &serial)?)
            .or_insert(at);
        *first = (*first).min(at);
    }
    Ok(revoked)
}

/// Whether a stored serial is `serial`. Rows imported from an older certgate's files keep the
/// spelling they were written in, so serials are compared as numbers, never as text.
fn same(stored: &str, serial: &Serial) -> bool {
    Serial::parse(stored).is_ok_and(|s| &s == serial)
}

fn parse_serial(db: &Path, table: &str, text: &str) -> Result<Serial, StoreError> {
    Serial::parse(text).map_err(|e| {
        file_err(
            db,
            format!("{table} holds a serial that {e}: restore the database from a backup, or delete that row"),
        )
    })
}

/// The issued key and certificate, with the CA certificate, as PKCS#12.
fn pack(
    ca: &Ca,
    issued: &super::Issued,
    alias: &str,
    kind: P12Kind,
    password: &str,
) -> Result<Vec<u8>, StoreError> {
    Ok(export_p12(
        alias,
        &issued.key_der,
        &issued.cert_der,
        &ca.cert_der,
        password,
        kind,
    )?)
}

/// The built-in CA's revoked serials, as [`crate::cert::crl::Revocation`] checks them on every
/// verification: on one database kept open, re-read only when `ca_revoked` changed.
#[derive(Debug)]
pub struct RevokedSource {
    db: Db,
    /// The database file this source opened: a file replaced or deleted under it would hide
    /// every revocation written after (they go to the new file).
    file: Option<FileId>,
}

/// A file's identity: device and inode.
type FileId = (u64, u64);

fn file_id(path: &Path) -> Option<FileId> {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    return Some((
        std::os::unix::fs::MetadataExt::dev(&meta),
        std::os::unix::fs::MetadataExt::ino(&meta),
    ));
    #[cfg(not(unix))]
    return meta.is_file().then_some((0, 0));
}

impl crate::cert::crl::SerialSource for RevokedSource {
    fn name(&self) -> String {
        self.db.path().display().to_string()
    }

    /// The number of rows and the last rowid (which a new row raises), and SQLite's
    /// `data_version` (which a commit by any other connection changes).
    fn stamp(&self) -> Result<crate::cert::crl::SourceStamp, String> {
        if file_id(self.db.path()) != self.file {
            return Err(format!(
                "{}: was deleted or replaced while certgate ran, so revocations written to it now would not be seen: put it back (or restore a backup) and restart certgate",
                self.db.path().display()
            ));
        }
        self.db
            .read(|conn| {
                let (rows, last) = conn
                    .prepare_cached("SELECT count(*), coalesce(max(rowid), 0) FROM ca_revoked")?
                    .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let version = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
                Ok([rows, last, version])
            })
            .map_err(|e| e.to_string())
    }

    fn read(&self) -> Result<HashSet<Serial>, String> {
        read_revoked(&self.db)
            .map(BTreeMap::into_keys)
            .map(Iterator::collect)
            .map_err(|e| e.to_string())
    }
}

/// The CA's revocations as a source [`crate::cert::TrustStore`] checks on every verification.
///
/// # Errors
/// When the database cannot be opened.
pub fn revoked_source(
    data_dir: &Path,
) -> Result<Box<dyn crate::cert::crl::SerialSource>, StoreError> {
    let db = Db::open(data_dir)?;
    let file = file_id(db.path());
    Ok(Box::new(RevokedSource { db, file }))
}

/// A user or device name certgate will put into a certificate: trimmed, non-empty, at most
/// `max` characters, no commas (they split Remote-Groups) and no control characters.
///
/// # Errors
/// A sentence saying what is wrong with it.
pub fn check_name(name: &str, max: usize) -> Result<(), String> {
    if name.trim() != name || name.is_empty() {
        return Err("must be non-empty, without leading or trailing spaces".into());
    }
    if name.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if name.chars().any(|c| c.is_control() || c == ',') {
        return Err("may not contain commas or control characters".into());
    }
    Ok(())
}

/// User and device names as they may appear in a URN.
fn urn_part(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// User and device names as they may appear in a file name.
fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crl_lists_store_revocations_of_certificates_this_ca_issued_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = CaStore::new(dir.path());
        let now = 1_900_000_000;
        store
            .init("Unit CA", crate::ca::KeyType::P256, None, now)
            .unwrap();
        let out = dir.path().join("out");
        let alice = store.issue("alice", None, 30, &out, None, now).unwrap();
        let bob = store.issue("bob", None, 30, &out, None, now).unwrap();
        let stranger = Serial::parse("0badcafe").unwrap();
        store.revoke(&alice.record.serial, now + 1).unwrap();
        let also = [
            (bob.record.serial.clone(), now + 2),
            (stranger.clone(), now + 3),
            (alice.record.serial.clone(), now + 4),
        ];
        let (_, der) = store.crl(now + 5, 1, &also).unwrap();
        let crl = webpki::OwnedCertRevocationList::from_der(&der)
            .map(webpki::CertRevocationList::from)
            .unwrap();
        let crls = [crl];
        for listed in [&alice.record.serial, &bob.record.serial] {
            assert!(crate::cert::crl::lists(&crls, listed.as_str()), "{listed}");
        }
        assert!(!crate::cert::crl::lists(&crls, stranger.as_str()));
    }

    fn ca(dir: &Path) -> CaStore {
        let store = CaStore::new(dir);
        store
            .init("Unit CA", crate::ca::KeyType::P256, None, 1_900_000_000)
            .unwrap();
        store
    }

    fn issue(store: &CaStore, user: &str) -> Serial {
        let out = store.dir.join("out");
        store
            .issue(
                user,
                Some("phone"),
                30,
                &out.join(user),
                None,
                1_900_000_000,
            )
            .unwrap()
            .record
            .serial
    }

    #[test]
    fn issued_and_revoked_certificates_are_rows_listed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = ca(dir.path());
        assert!(store.list().unwrap().is_empty());
        let (a, b, c) = (
            issue(&store, "alice"),
            issue(&store, "bob"),
            issue(&store, "carol"),
        );
        let listed: Vec<(Serial, String)> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|r| (r.serial, r.user))
            .collect();
        assert_eq!(
            listed,
            [
                (a.clone(), "alice".into()),
                (b.clone(), "bob".into()),
                (c, "carol".into())
            ]
        );
        assert!(store.issued(&b).unwrap());
        assert!(store.revoke(&b, 1).unwrap());
        assert!(!store.revoke(&b, 2).unwrap(), "revoked already");
        // Another CaStore (another process) reads the same rows.
        let again = CaStore::new(dir.path());
        assert_eq!(again.revoked().unwrap(), HashSet::from([b.clone()]));
        assert_eq!(again.revoked_at().unwrap().get(&b), Some(&1));
        assert_eq!(again.list().unwrap().len(), 3);

        let stranger = Serial::parse("0badcafe").unwrap();
        let e = store.revoke(&stranger, 3).unwrap_err().to_string();
        assert!(
            e.contains("no certificate with serial 0badcafe was issued here")
                && e.contains("certgate ca list")
                && e.contains(crate::db::FILE),
            "{e}"
        );
        assert!(!store.revoked().unwrap().contains(&stranger));
    }

    #[test]
    fn serials_imported_in_an_older_spelling_are_the_same_serials() {
        let dir = tempfile::tempdir().unwrap();
        let store = ca(dir.path());
        let serial = Serial::parse("9a00ab").unwrap();
        Db::open(dir.path())
            .unwrap()
            .write(|tx| {
                tx.execute(
                    "INSERT INTO ca_issued (serial, user, not_after, issued_at) VALUES ('00:9A:00:AB', 'old', 2, 1)",
                    [],
                )
            })
            .unwrap();
        assert_eq!(store.list().unwrap()[0].serial, serial);
        assert!(store.issued(&serial).unwrap());
        assert!(store.revoke(&serial, 5).unwrap());
        assert!(!store.revoke(&serial, 6).unwrap());
        assert_eq!(store.revoked().unwrap(), HashSet::from([serial]));
    }

    #[test]
    fn a_row_that_is_not_a_serial_is_an_error_naming_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = ca(dir.path());
        issue(&store, "alice");
        Db::open(dir.path())
            .unwrap()
            .write(|tx| tx.execute("INSERT INTO ca_revoked VALUES ('not a serial', 1)", []))
            .unwrap();
        let e = store.revoked().unwrap_err().to_string();
        assert!(
            e.contains(crate::db::FILE) && e.contains("ca_revoked") && e.contains("not a serial"),
            "{e}"
        );
        assert!(
            store.crl(1, 1, &[]).is_err(),
            "no CRL that leaves a revocation out"
        );
    }

    /// The built-in CA's source, as the server builds it.
    fn source(dir: &Path) -> crate::cert::crl::Revocation {
        crate::cert::crl::Revocation::new(Vec::new(), Some(revoked_source(dir).unwrap()), false)
            .unwrap()
    }

    fn revoked_in(source: &crate::cert::crl::Revocation, serial: &Serial) -> Result<bool, String> {
        source.refresh();
        source.with(|_, serials| serials.contains(serial))
    }

    #[test]
    fn a_revocation_written_by_another_process_counts_at_the_next_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = ca(dir.path());
        let (alice, bob) = (issue(&store, "alice"), issue(&store, "bob"));
        let rev = source(dir.path());
        assert_eq!(revoked_in(&rev, &alice), Ok(false));
        // Another connection, as `certgate ca revoke` is another process.
        let other = Db::open(dir.path()).unwrap();
        other
            .write(|tx| {
                tx.execute(
                    "INSERT INTO ca_revoked (serial, revoked_at) VALUES (?1, 1)",
                    [alice.as_str()],
                )
            })
            .unwrap();
        assert_eq!(revoked_in(&rev, &alice), Ok(true));
        assert_eq!(revoked_in(&rev, &bob), Ok(false));
        CaStore::new(dir.path()).revoke(&bob, 2).unwrap();
        assert_eq!(revoked_in(&rev, &bob), Ok(true));
        // A row deleted and another written in its place (same count, same last rowid).
        other
            .write(|tx| {
                tx.execute("DELETE FROM ca_revoked WHERE serial = ?1", [bob.as_str()])?;
                tx.execute("INSERT INTO ca_revoked VALUES ('0badcafe', 3)", [])
            })
            .unwrap();
        assert_eq!(revoked_in(&rev, &bob), Ok(false));
        assert_eq!(
            revoked_in(&rev, &Serial::parse("0badcafe").unwrap()),
            Ok(true)
        );
    }

    #[test]
    fn a_damaged_row_refuses_everyone_until_it_is_mended() {
        let dir = tempfile::tempdir().unwrap();
        let store = ca(dir.path());
        let alice = issue(&store, "alice");
        let rev = source(dir.path());
        let other = Db::open(dir.path()).unwrap();
        other
            .write(|tx| tx.execute("INSERT INTO ca_revoked VALUES ('{broken', 1)", []))
            .unwrap();
        let why = revoked_in(&rev, &alice).unwrap_err();
        assert!(
            why.contains(crate::db::FILE) && why.contains("ca_revoked"),
            "{why}"
        );
        assert!(rev.broken().is_some());
        // Still refused at the next look: nothing changed.
        assert!(revoked_in(&rev, &alice).is_err());
        other
            .write(|tx| tx.execute("DELETE FROM ca_revoked WHERE serial = '{broken'", []))
            .unwrap();
        assert_eq!(revoked_in(&rev, &alice), Ok(false));
        assert!(rev.broken().is_none());
    }

    #[test]
    fn a_database_replaced_or_deleted_while_certgate_runs_refuses_everyone() {
        let dir = tempfile::tempdir().unwrap();
        let store = ca(dir.path());
        let alice = issue(&store, "alice");
        let rev = source(dir.path());
        assert_eq!(revoked_in(&rev, &alice), Ok(false));
        let file = dir.path().join(crate::db::FILE);
        // Replaced by garbage (a bad restore): the open connection would go on reading the
        // old file, so what is written to the new one would never be seen.
        std::fs::rename(&file, dir.path().join("old.db")).unwrap();
        std::fs::write(&file, vec![b'x'; 4096]).unwrap();
        let why = revoked_in(&rev, &alice).unwrap_err();
        assert!(
            why.contains(crate::db::FILE) && why.contains("replaced"),
            "{why}"
        );
        // Deleted.
        std::fs::remove_file(&file).unwrap();
        assert!(revoked_in(&rev, &alice).is_err());
        // Nor can certgate start on garbage (once no write-ahead log masks it).
        drop(rev);
        for f in ["certgate.db-wal", "certgate.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
        std::fs::write(&file, vec![b'x'; 4096]).unwrap();
        let e = revoked_source(dir.path()).unwrap_err().to_string();
        assert!(e.contains(crate::db::FILE) && e.contains("restore"), "{e}");
    }
}
