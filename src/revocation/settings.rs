//! `[store]`: where revocations live, and how stale a view may get before checks answer 503.

use std::time::Duration;

use serde::Deserialize;

use crate::settings::Checker;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawStore {
    pub backend: Option<String>,
    pub redis_url: Option<String>,
    pub max_staleness: Option<String>,
    pub key_encryption_file: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    /// With Redis: the secret that seals the signing keys shared through it
    /// ([`crate::keyshare`]); `None`: every replica keeps its own copy of the key files.
    pub key_encryption: Option<[u8; 32]>,
    /// A view older than this answers 503 instead of allowing.
    pub max_staleness: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// The `revocations` table of `data_dir/certgate.db`, shared by every certgate on the host.
    Embedded,
    /// A Redis stream, shared by replicas anywhere; the URL as given.
    Redis(String),
}

impl StoreSettings {
    pub fn from_raw(c: &mut Checker, raw: &RawStore, base: &std::path::Path) -> Self {
        let backend = backend(c, raw);
        let key_encryption = raw
            .key_encryption_file
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .and_then(|file| {
                if backend == StoreBackend::Embedded {
                    c.fail(
                        "store.key_encryption_file",
                        "set, but store.backend is \"embedded\": keys are shared through Redis only",
                        "set store.backend = \"redis\", or remove store.key_encryption_file",
                    );
                    return None;
                }
                crate::keyshare::read_secret(&crate::settings::resolve(base, file))
                    .map_err(|e| {
                        c.fail(
                            "store.key_encryption_file",
                            e,
                            "32 random bytes in base64, the same file on every replica: openssl rand -base64 32 > FILE (mode 0600)",
                        );
                    })
                    .ok()
            });
        let max_staleness = c.duration(
            "store.max_staleness",
            raw.max_staleness.as_deref(),
            Duration::from_secs(10),
        );
        if max_staleness < Duration::from_secs(1) {
            c.fail(
                "store.max_staleness",
                "must be at least 1s",
                "the view is brought up to date several times a second; e.g. \"10s\"",
            );
        }
        Self {
            backend,
            max_staleness,
            key_encryption,
        }
    }
}

fn backend(c: &mut Checker, raw: &RawStore) -> StoreBackend {
    let url = raw
        .redis_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    match (raw.backend.as_deref().unwrap_or("embedded"), url) {
        ("embedded", None) => StoreBackend::Embedded,
        ("embedded", Some(_)) => {
            c.fail(
                "store.redis_url",
                "set, but store.backend is \"embedded\"",
                "set store.backend = \"redis\", or remove store.redis_url",
            );
            StoreBackend::Embedded
        }
        ("redis", Some(u)) => {
            if let Err(e) = ::redis::Client::open(u) {
                c.fail(
                    "store.redis_url",
                    format!("`{u}`: {e}"),
                    "e.g. \"redis://127.0.0.1:6379/0\" or \"rediss://:password@redis.example.com/\"",
                );
            }
            StoreBackend::Redis(u.to_string())
        }
        ("redis", None) => {
            c.fail(
                "store.redis_url",
                "missing: store.backend is \"redis\"",
                "e.g. \"redis://127.0.0.1:6379/0\"",
            );
            StoreBackend::Embedded
        }
        (other, _) => {
            c.fail(
                "store.backend",
                format!("`{other}` is not a store"),
                "use \"embedded\" (one host) or \"redis\" (replicas)",
            );
            StoreBackend::Embedded
        }
    }
}
