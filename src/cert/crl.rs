//! Revoked client certificates: CRL files (`client_ca.crl`, PEM or DER, for external CAs) and
//! the built-in CA's revocations (a [`SerialSource`]: its table in the database). Each source
//! is re-read when it changes (checked on every verification: one `stat` per file, one small
//! query for the built-in CA), so a revocation applies at once. A source that cannot be read,
//! or that disappeared, fails closed: every certificate is refused until it is readable again.

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
    /// The built-in source's stamp when it was last read (`None`: never read, or unreadable).
    builtin: Option<SourceStamp>,
    crls: Vec<CertRevocationList<'static>>,
    serials: HashSet<Serial>,
    /// Why the revocation state cannot be trusted right now (fail closed).
    broken: Option<String>,
}

/// What identifies a [`SerialSource`]'s content cheaply: equal stamps, same serials.
pub type SourceStamp = [i64; 3];

/// The serials certgate's own CA revoked. Their table belongs to `ca`, which sits above `cert`
/// and passes its reader in.
pub trait SerialSource: Send + Sync + std::fmt::Debug {
    /// What to name in messages (the database file).
    fn name(&self) -> String;

    /// Cheap enough for every verification; a change means the serials must be read again.
    ///
    /// # Errors
    /// A sentence naming the source: it cannot be read (every certificate is refused).
    fn stamp(&self) -> Result<SourceStamp, String>;

    /// Every revoked serial.
    ///
    /// # Errors
    /// A sentence naming the source: it cannot be read (every certificate is refused).
    fn read(&self) -> Result<HashSet<Serial>, String>;
}

/// The revocation sources and what was last read from them.
pub struct Revocation {
    crl_files: Vec<PathBuf>,
    builtin: Option<Box<dyn SerialSource>>,
    /// `client_ca.danger_accept_expired_crl`: an expired CRL still counts instead of refusing.
    pub accept_expired: bool,
    state: RwLock<State>,
    /// When the sources were last looked at for a token check
    /// ([`crate::clock::monotonic_coarse_ms`]; 0: never).
    looked_at: std::sync::atomic::AtomicU64,
}

/// How often a token's certificate makes certgate look at the sources (a `stat` or a query each), rather
/// than on every check: a revocation reaches live tokens within this.
const LOOK_EVERY_MS: u64 = 200;

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Revocation({} CRL files, builtin {:?})",
            self.crl_files.len(),
            self.builtin.as_ref().map(|b| b.name())
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
        }
    }

    /// Reads every source once.
    ///
    /// # Errors
    /// A sentence naming the source that cannot be read: certgate does not start on it.
    pub fn new(
        crl_files: Vec<PathBuf>,
        builtin: Option<Box<dyn SerialSource>>,
        accept_expired: bool,
    ) -> Result<Self, String> {
        let me = Self {
            crl_files,
            builtin,
            accept_expired,
            state: RwLock::new(State::default()),
            looked_at: std::sync::atomic::AtomicU64::new(0),
        };
        me.refresh();
        match me.broken() {
            Some(why) => Err(why),
            None => Ok(me),
        }
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
    /// every request, where looking at every source would cost more than the rest of the check.
    pub fn refresh_often(&self) {
        use std::sync::atomic::Ordering;
        let now = crate::clock::monotonic_coarse_ms().max(1);
        let last = self.looked_at.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < LOOK_EVERY_MS {
            return;
        }
        self.looked_at.store(now, Ordering::Relaxed);
        self.refresh();
    }

    /// Re-reads the sources if any changed since last time (for a certificate presented now,
    /// so its revocation counts at once), and while the built-in source cannot be read.
    pub fn refresh(&self) {
        if self.crl_files.is_empty() && self.builtin.is_none() {
            return;
        }
        let stamps: Vec<Stamp> = self.crl_files.iter().map(|p| stamp(p)).collect();
        let builtin = self.builtin.as_ref().map(|b| b.stamp());
        let current = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let builtin_same = match &builtin {
            None => true,
            Some(Ok(now)) => current.builtin.as_ref() == Some(now),
            Some(Err(_)) => false,
        };
        let read_before = !current.stamps.is_empty() || current.builtin.is_some();
        if read_before && current.stamps == stamps && builtin_same {
            return;
        }
        let was = current.broken.clone();
        drop(current);
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (crls, serials, broken) = self.read_all(builtin.as_ref());
        if let Some(why) = broken.as_ref().filter(|why| was.as_ref() != Some(*why)) {
            tracing::error!(problem = %why, "revocation sources unreadable: refusing every certificate until they are fixed");
        }
        *state = State {
            stamps,
            builtin: builtin.and_then(Result::ok).filter(|_| broken.is_none()),
            crls,
            serials,
            broken,
        };
    }

    fn read_all(
        &self,
        builtin_stamp: Option<&Result<SourceStamp, String>>,
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
            if let Some(Err(e)) = builtin_stamp {
                problems.push(e.clone());
            } else {
                match builtin.read() {
                    Ok(s) => serials = s,
                    Err(e) => problems.push(e),
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A source whose stamp and content the test sets; `stamp < 0`: unreadable.
    #[derive(Debug, Default)]
    struct Fake {
        stamp: AtomicI64,
        reads: AtomicUsize,
    }

    impl SerialSource for Arc<Fake> {
        fn name(&self) -> String {
            "fake".into()
        }
        fn stamp(&self) -> Result<SourceStamp, String> {
            match self.stamp.load(Ordering::SeqCst) {
                n if n < 0 => Err("fake: unreadable".into()),
                n => Ok([n, 0, 0]),
            }
        }
        fn read(&self) -> Result<HashSet<Serial>, String> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let n = self.stamp.load(Ordering::SeqCst);
            Ok((0..n).map(|i| Serial::from_der(&[1, i as u8])).collect())
        }
    }

    fn count(rev: &Revocation) -> Result<usize, String> {
        rev.refresh();
        rev.with(|_, serials| serials.len())
    }

    #[test]
    fn the_builtin_source_is_read_again_only_when_its_stamp_changes() {
        let fake = Arc::new(Fake::default());
        let rev = Revocation::new(Vec::new(), Some(Box::new(Arc::clone(&fake))), false).unwrap();
        assert_eq!(count(&rev), Ok(0));
        assert_eq!(count(&rev), Ok(0));
        assert_eq!(
            fake.reads.load(Ordering::SeqCst),
            1,
            "unchanged: not read again"
        );
        fake.stamp.store(2, Ordering::SeqCst);
        assert_eq!(count(&rev), Ok(2));
        assert_eq!(fake.reads.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_unreadable_builtin_source_refuses_everything_until_it_reads_again() {
        let fake = Arc::new(Fake::default());
        fake.stamp.store(-1, Ordering::SeqCst);
        let e = Revocation::new(Vec::new(), Some(Box::new(Arc::clone(&fake))), false).unwrap_err();
        assert!(e.contains("fake: unreadable"), "{e}");

        fake.stamp.store(1, Ordering::SeqCst);
        let rev = Revocation::new(Vec::new(), Some(Box::new(Arc::clone(&fake))), false).unwrap();
        assert_eq!(count(&rev), Ok(1));
        fake.stamp.store(-1, Ordering::SeqCst);
        assert_eq!(count(&rev), Err("fake: unreadable".into()));
        assert_eq!(rev.broken().as_deref(), Some("fake: unreadable"));
        // Readable again with the very content it had: trusted again.
        fake.stamp.store(1, Ordering::SeqCst);
        assert_eq!(count(&rev), Ok(1));
        assert_eq!(rev.broken(), None);
    }
}
