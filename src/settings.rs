//! What every module's settings share: a [`Problem`] names the key it concerns, and a
//! [`Checker`] collects them, so that `config` reports every problem of a file at once while
//! each module validates its own section (`policy::Policy::from_raw`, `identity::Mapping`, …).

use std::fmt;
use std::time::Duration;

pub const HOUR: Duration = Duration::from_secs(3600);
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// One problem with the configuration, naming the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub problem: String,
    pub hint: String,
}

impl Problem {
    pub fn new(
        key: impl Into<String>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.hint.is_empty() {
            write!(f, "{}: {}", self.key, self.problem)
        } else {
            write!(f, "{}: {} ({})", self.key, self.problem, self.hint)
        }
    }
}

/// Every problem found; printed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Collects problems so that all of them are reported together.
#[derive(Default)]
pub struct Checker(pub Vec<Problem>);

impl Checker {
    pub fn fail(&mut self, key: &str, problem: impl Into<String>, hint: impl Into<String>) {
        self.0.push(Problem::new(key, problem, hint));
    }

    /// A `humantime` duration of at least a second and at most a year, or `default` when unset.
    pub fn duration(&mut self, key: &str, raw: Option<&str>, default: Duration) -> Duration {
        let Some(raw) = raw else { return default };
        match humantime::parse_duration(raw) {
            Ok(d) if d > MAX_TTL => {
                self.fail(
                    key,
                    format!("`{raw}` is longer than a year"),
                    "certgate's lifetimes are at most 365d",
                );
                default
            }
            Ok(d) if d.as_secs() > 0 => d,
            Ok(_) => {
                self.fail(key, "must be at least one second", "e.g. \"1h\"");
                default
            }
            Err(e) => {
                self.fail(
                    key,
                    format!("`{raw}` is not a duration: {e}"),
                    "use a number and a unit, e.g. \"90s\", \"1h\", \"30d\"",
                );
                default
            }
        }
    }
}

/// Lists may come from TOML arrays or, through environment overrides, as "a,b,c".
pub mod list {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }

    fn split(v: OneOrMany) -> Vec<String> {
        match v {
            OneOrMany::Many(v) => v,
            OneOrMany::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        }
    }

    pub fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        OneOrMany::deserialize(d).map(split)
    }

    pub fn opt_string_or_list<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<String>>, D::Error> {
        OneOrMany::deserialize(d).map(split).map(Some)
    }
}

/// A path from the configuration: relative ones are relative to the file's directory.
pub fn resolve(base: &std::path::Path, path: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// An IP network in CIDR notation, or a bare address (a /32 or /128).
pub fn ip_network(raw: &str) -> Option<ipnet::IpNet> {
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .ok()
}

/// The certificates of a PEM file named by `key`, or `None` with the problem reported: a file
/// that cannot be read, or holds none (`hint` says what it should hold).
pub fn pem_certificates(
    c: &mut Checker,
    key: &str,
    path: &std::path::Path,
    hint: &str,
) -> Option<Vec<rustls_pki_types::CertificateDer<'static>>> {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = match rustls_pki_types::CertificateDer::pem_file_iter(path) {
        Ok(iter) => iter.filter_map(Result::ok).collect(),
        Err(e) => {
            c.fail(key, format!("cannot read {}: {e}", path.display()), "");
            return None;
        }
    };
    if certs.is_empty() {
        c.fail(
            key,
            format!("{} holds no PEM certificate", path.display()),
            hint,
        );
    }
    Some(certs)
}
