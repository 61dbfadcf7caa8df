//! Revoked client certificates: CRL files (`client_ca.crl`, PEM or DER, for external CAs) and
//! the built-in CA's revocations (`data_dir/ca/revoked.jsonl`). Each source is re-read when it
//! changes (checked on every verification: one `stat` per source), so a revocation applies at
//! once. A source that cannot be read, or that disappeared, fails closed: every certificate is
//! refused until it is readable again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateRevocationListDer;
use webpki::{CertRevocationList, OwnedCertRevocationList};

use super::Serial;

/// What identifies a file's content cheaply: modification time, length and inode.
type Stamp = Option<(std::time::SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

#[derive(Default)]
struct State {
    stamps: Vec<Stamp>,
    crls: Vec<CertRevocationList<'static>>,
    serials: HashSet<Serial>,
    /// Why the revocation state cannot be trusted right now (fail closed).
    broken: Option<String>,
}

/// A file of serials that certgate's own CA revoked, with the function that reads it: the
/// format belongs to `ca`, which sits above `cert` and passes it in.
pub struct SerialFile {
    pub path: PathBuf,
    pub read: fn(&Path) -> Result<HashSet<Serial>, String>,
}

/// The revocation sources and what was last read from them.
pub struct Revocation {
    crl_files: Vec<PathBuf>,
    builtin: Option<SerialFile>,
    /// `client_ca.danger_accept_expired_crl`: an expired CRL still counts instead of refusing.
    pub accept_expired: bool,
    state: RwLock<State>,
    /// When the files were last looked at for a token check (ms since `born`; 0: never).
    looked_at: std::sync::atomic::AtomicU64,
    born: std::time::Instant,
}

/// How often a token's certificate makes certgate look at the files (a `stat` each), rather
/// than on every check: a revocation reaches live tokens within this.
const LOOK_EVERY_MS: u64 = 200;

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Revocation({} CRL files, builtin {:?})",
            self.crl_files.len(),
            self.builtin.as_ref().map(|b| &b.path)
        )
    }
}

/// Whether one of `crls` lists `serial` (a token's `x5s`, any spelling). A CRL keeps each
/// serial as its DER INTEGER content, with the sign byte when the top bit is set, so both
/// spellings of the number are looked up.
pub fn lists(crls: &[CertRevocationList<'static>], serial: &str) -> bool {
    let canonical = Serial::canonical(serial);
    // On every check of a token's certificate: decoded on the stack, behind a `00` byte.
    let mut buf = [0u8; 1 + super::serial::MAX_BYTES];
    let n = canonical.len() / 2;
    let Some(digits) = buf.get_mut(1..=n) else {
        return false;
    };
    if hex::decode_to_slice(canonical.as_bytes(), digits).is_err() {
        return false;
    }
    let bytes = &buf[1..=n];
    let der = if bytes.first().is_some_and(|&b| b >= 0x80) {
        &buf[..=n]
    } else {
        bytes
    };
    crls.iter().any(|crl| {
        [bytes, der]
            .iter()
            .any(|b| crl.find_serial(b).ok().flatten().is_some())
    })
}

/// Reads one CRL file, PEM or DER.
///
/// # Errors
/// A sentence saying why the file is not a usable CRL.
pub fn read_crl(path: &Path) -> Result<CertRevocationList<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let der = if bytes.starts_with(b"-----") {
        CertificateRevocationListDer::from_pem_slice(&bytes)
            .map_err(|e| format!("not a PEM CRL: {e}"))?
            .to_vec()
    } else {
        bytes
    };
    OwnedCertRevocationList::from_der(&der)
        .map(CertRevocationList::from)
        .map_err(|e| format!("not a CRL: {e:?}"))
}

impl Revocation {
    /// Nothing revoked (tests, and configurations without revocation sources).
    pub fn none() -> Self {
        Self {
            crl_files: Vec::new(),
            builtin: None,
            accept_expired: false,
            state: RwLock::new(State::default()),
            looked_at: std::sync::atomic::AtomicU64::new(0),
            born: std::time::Instant::now(),
        }
    }

    /// Reads every source once.
    ///
    /// # Errors
    /// A sentence naming the source that cannot be read: certgate does not start on it.
    pub fn new(
        crl_files: Vec<PathBuf>,
        builtin: Option<SerialFile>,
        accept_expired: bool,
    ) -> Result<Self, String> {
        let me = Self {
            crl_files,
            builtin,
            accept_expired,
            state: RwLock::new(State::default()),
            looked_at: std::sync::atomic::AtomicU64::new(0),
            born: std::time::Instant::now(),
        };
        me.refresh();
        match me.broken() {
            Some(why) => Err(why),
            None => Ok(me),
        }
    }

    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.crl_files
            .iter()
            .chain(self.builtin.iter().map(|b| &b.path))
    }

    /// Why the state is not trustworthy, if it is not.
    pub fn broken(&self) -> Option<String> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .broken
            .clone()
    }

    /// [`Self::refresh`] at most every 200 ms: for the certificate behind a token, checked on
    /// every request, where a `stat` per source would cost more than the rest of the check.
    pub fn refresh_often(&self) {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(self.born.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let last = self.looked_at.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < LOOK_EVERY_MS {
            return;
        }
        self.looked_at.store(now, Ordering::Relaxed);
        self.refresh();
    }

    /// Re-reads the sources if any changed since last time (for a certificate presented now,
    /// so its revocation counts at once).
    pub fn refresh(&self) {
        if self.crl_files.is_empty() && self.builtin.is_none() {
            return;
        }
        let stamps: Vec<Stamp> = self.paths().map(|p| stamp(p)).collect();
        let current = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.stamps == stamps && !current.stamps.is_empty() {
            return;
        }
        let had_builtin = current.stamps.last().is_some_and(Option::is_some);
        drop(current);
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (crls, serials, broken) = self.read_all(had_builtin);
        if let Some(why) = &broken {
            tracing::error!(problem = %why, "revocation sources unreadable: refusing every certificate until they are fixed");
        }
        *state = State {
            stamps,
            crls,
            serials,
            broken,
        };
    }

    fn read_all(
        &self,
        had_builtin: bool,
    ) -> (
        Vec<CertRevocationList<'static>>,
        HashSet<Serial>,
        Option<String>,
    ) {
        let mut problems = Vec::new();
        let mut crls = Vec::new();
        for path in &self.crl_files {
            match read_crl(path) {
                Ok(crl) => crls.push(crl),
                Err(e) => problems.push(format!("client_ca.crl: {}: {e}", path.display())),
            }
        }
        let mut serials = HashSet::new();
        if let Some(builtin) = &self.builtin {
            if had_builtin && !builtin.path.exists() {
                problems.push(format!("{} disappeared", builtin.path.display()));
            }
            match (builtin.read)(&builtin.path) {
                Ok(s) => serials = s,
                Err(e) => problems.push(e),
            }
        }
        let broken = (!problems.is_empty()).then(|| problems.join("; "));
        (crls, serials, broken)
    }

    /// Runs `f` with the current CRLs and revoked serials, or says why it cannot.
    ///
    /// # Errors
    /// The reason the revocation state cannot be trusted (then nothing may pass).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&[CertRevocationList<'static>], &HashSet<Serial>) -> T,
    ) -> Result<T, String> {
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &state.broken {
            Some(why) => Err(why.clone()),
            None => Ok(f(&state.crls, &state.serials)),
        }
    }
}
