//! Revoked client certificates: CRL files (`client_ca.crl`, PEM or DER, for external CAs) and
//! the built-in CA's revocations (`data_dir/ca/revoked.jsonl`). Both are re-read when they
//! change, checked on every verification (one `stat` per file), so a revocation applies at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateRevocationListDer;
use webpki::{CertRevocationList, OwnedCertRevocationList};

#[derive(Default)]
struct State {
    stamps: Vec<Option<SystemTime>>,
    crls: Vec<CertRevocationList<'static>>,
    serials: HashSet<String>,
}

/// The revocation sources and what was last read from them.
pub struct Revocation {
    crl_files: Vec<PathBuf>,
    builtin: Option<PathBuf>,
    /// `client_ca.danger_accept_expired_crl`: an expired CRL still counts instead of refusing.
    pub accept_expired: bool,
    state: RwLock<State>,
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Revocation({} CRL files, builtin {:?})",
            self.crl_files.len(),
            self.builtin
        )
    }
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
        Self::new(Vec::new(), None, false)
    }

    pub fn new(crl_files: Vec<PathBuf>, builtin: Option<PathBuf>, accept_expired: bool) -> Self {
        let me = Self {
            crl_files,
            builtin,
            accept_expired,
            state: RwLock::new(State::default()),
        };
        me.refresh();
        me
    }

    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.crl_files.iter().chain(self.builtin.iter())
    }

    /// Re-reads whatever changed since last time. A file that became unreadable keeps what
    /// was read before, and the log says why.
    pub fn refresh(&self) {
        if self.crl_files.is_empty() && self.builtin.is_none() {
            return;
        }
        let stamps: Vec<Option<SystemTime>> = self
            .paths()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect();
        let current = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.stamps == stamps && !stamps.is_empty() {
            return;
        }
        drop(current);
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut crls = Vec::new();
        for path in &self.crl_files {
            match read_crl(path) {
                Ok(crl) => crls.push(crl),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "client_ca.crl: cannot read; keeping the revocations read before");
                    return;
                }
            }
        }
        let serials = match &self.builtin {
            Some(path) => match crate::ca::store::revoked_serials(path) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "built-in CA revocations: cannot read; keeping those read before");
                    return;
                }
            },
            None => HashSet::new(),
        };
        *state = State {
            stamps,
            crls,
            serials,
        };
    }

    /// Runs `f` with the current CRLs and revoked serials.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&[CertRevocationList<'static>], &HashSet<String>) -> T,
    ) -> T {
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&state.crls, &state.serials)
    }
}
