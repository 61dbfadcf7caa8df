//! The built-in CA on disk: `data_dir/ca.pem` and `ca.key` (0600) — where the quickstart puts
//! its demo CA too — and `data_dir/ca/issued.jsonl`, one line per certificate issued.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{export_p12, Ca, CaError, ClientSpec, P12Kind};
use crate::cert::Serial;
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

/// A revocation of one issued certificate (append-only, `data_dir/ca/revoked.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedRecord {
    pub serial: Serial,
    pub revoked_at: i64,
}

/// Where the CA lives.
#[derive(Debug, Clone)]
pub struct CaStore {
    pub dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error(transparent)]
    Ca(#[from] CaError),
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
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.to_path_buf(),
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("ca").join("issued.jsonl")
    }

    /// The built-in CA's revocations; certgate re-reads it whenever it changes.
    pub fn revoked_path(&self) -> PathBuf {
        self.dir.join("ca").join("revoked.jsonl")
    }

    /// Revokes an issued certificate. Returns `false` when it was revoked already.
    ///
    /// # Errors
    /// When the serial was never issued here, or the file cannot be written.
    pub fn revoke(&self, serial: &Serial, now: i64) -> Result<bool, StoreError> {
        if !self.issued(serial)? {
            return Err(file_err(
                &self.index_path(),
                format!(
                    "no certificate with serial {serial} was issued here (see `certgate ca list`)"
                ),
            ));
        }
        if revoked_serials(&self.revoked_path())?.contains(serial) {
            return Ok(false);
        }
        let line = serde_json::to_string(&RevokedRecord {
            serial: serial.clone(),
            revoked_at: now,
        })
        .map_err(|e| file_err(&self.revoked_path(), e))?;
        append_line(&self.revoked_path(), &line)?;
        Ok(true)
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
        let mut revoked: std::collections::BTreeMap<Serial, i64> =
            read_revoked(&self.revoked_path())?
                .into_iter()
                .map(|r| (r.serial, r.revoked_at))
                .collect();
        if !also.is_empty() {
            let issued: std::collections::HashSet<Serial> =
                self.list()?.into_iter().map(|r| r.serial).collect();
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
    /// When the index cannot be read.
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

    /// Signs a certificate for `user` (and `device`) and records it in the index.
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
        self.append(&record)?;
        Ok((ca, issued, record))
    }

    /// Issues a certificate straight into a PKCS#12 file in memory: the private key is never
    /// written anywhere (enrollment links).
    ///
    /// # Errors
    /// When the CA cannot sign or the index cannot be written.
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
    /// `.key` (0600), optionally a PKCS#12 file, and records it in the index.
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

    fn append(&self, record: &IssuedRecord) -> Result<(), StoreError> {
        let path = self.index_path();
        let line = serde_json::to_string(record).map_err(|e| file_err(&path, e))?;
        append_line(&path, &line)
    }

    /// Every certificate issued, oldest first.
    ///
    /// # Errors
    /// When the index exists but cannot be read; a malformed line is an error naming it.
    pub fn list(&self) -> Result<Vec<IssuedRecord>, StoreError> {
        let path = self.index_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(file_err(&path, e)),
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| file_err(&path, format!("line {}: {e}", i + 1)))
            })
            .collect()
    }
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

fn append_line(path: &Path, line: &str) -> Result<(), StoreError> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|e| file_err(dir, e))?;
    }
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| file_err(path, e))?;
    // One write of the whole line: concurrent appends (two workers, a CLI) never interleave.
    let mut record = line.replace('\n', " ");
    record.push('\n');
    file.write_all(record.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| file_err(path, e))
}

fn read_revoked(path: &Path) -> Result<Vec<RevokedRecord>, StoreError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(file_err(path, e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| file_err(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// The CA's revocations as a source [`crate::cert::TrustStore`] checks on every verification.
pub fn revoked_source(data_dir: &Path) -> crate::cert::crl::SerialFile {
    crate::cert::crl::SerialFile {
        path: CaStore::new(data_dir).revoked_path(),
        read: |path| revoked_serials(path).map_err(|e| e.to_string()),
    }
}

/// The revoked serials in a `revoked.jsonl`; none when it does not exist.
///
/// # Errors
/// When the file exists but cannot be read or parsed.
pub fn revoked_serials(path: &Path) -> Result<std::collections::HashSet<Serial>, StoreError> {
    Ok(read_revoked(path)?.into_iter().map(|r| r.serial).collect())
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
}
