//! Certificates for a test, made with certgate's own CA code and written to a temp dir.

use std::path::{Path, PathBuf};

use certgate::ca::{Ca, ClientSpec, Issued};

pub struct Pki {
    pub dir: PathBuf,
    pub ca: Ca,
    pub ca_pem: PathBuf,
}

/// A certificate and key on disk, as curl wants them.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub issued: Issued,
}

impl Pki {
    /// A TLS client that trusts this CA and presents `cert` when given (WebSocket tests).
    pub fn tls_client(&self, cert: Option<&CertFiles>) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.cert_der.clone().into()).unwrap();
        let tls = rustls::ClientConfig::builder().with_root_certificates(roots);
        match cert {
            Some(c) => tls
                .with_client_auth_cert(
                    vec![c.issued.cert_der.clone().into()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(c.issued.key_der.clone().into()),
                )
                .unwrap(),
            None => tls.with_no_client_auth(),
        }
    }

    pub fn new(dir: &Path, name: &str) -> Self {
        let ca = Ca::generate(name, now()).unwrap();
        let ca_pem = dir.join(format!("{}.pem", slug(name)));
        std::fs::write(&ca_pem, &ca.cert_pem).unwrap();
        Self {
            dir: dir.to_path_buf(),
            ca,
            ca_pem,
        }
    }

    pub fn client(&self, spec: &ClientSpec) -> CertFiles {
        self.write(
            &format!("client-{}-{}", slug(&spec.common_name), spec.valid_until),
            self.ca.issue(spec, now()).unwrap(),
        )
    }

    pub fn user(&self, name: &str) -> CertFiles {
        self.client(&ClientSpec::new(name, 30))
    }

    pub fn server(&self, hosts: &[&str]) -> CertFiles {
        self.write(
            &format!("server-{}", slug(hosts[0])),
            self.ca.issue_server(hosts, 30, now()).unwrap(),
        )
    }

    fn write(&self, stem: &str, issued: Issued) -> CertFiles {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stem = format!("{stem}-{n}");
        let cert = self.dir.join(format!("{stem}.pem"));
        let key = self.dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &issued.cert_pem).unwrap();
        std::fs::write(&key, &issued.key_pem).unwrap();
        CertFiles { cert, key, issued }
    }
}

/// The wall clock: test certificates are valid around the real now, as certgate checks them.
fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
