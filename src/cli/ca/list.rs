//! `certgate ca list`: every certificate the CA issued, with its status. A status that cannot be
//! known (the CA's or the revocation store's list unreadable) is "unknown", never "valid".

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::CMD;
use crate::ca::store::{revoked_serials, CaStore, IssuedRecord};
use crate::ca::CertStatus;
use crate::cert::Serial;
use crate::cli::CliError;
use crate::clock::{Clock as _, SystemClock};
use crate::config::Config;
use crate::revocation::{Journal, RedisStore, Revocations, StoreBackend};

/// What says a certificate is revoked: the CA's own list (`ca revoke`) and the revocation store
/// (`certgate revoke --serial`). `None`: unreadable.
struct Revoked {
    by_ca: Option<HashSet<Serial>>,
    in_store: Option<Revocations>,
}

pub(super) fn run(store: &CaStore, dir: &Path, config: Option<&Config>) -> Result<(), CliError> {
    let records = store.list().map_err(|e| CliError::failed(CMD, e))?;
    let now = SystemClock.now();
    let revoked = Revoked::read(store, dir, config, now);
    println!(
        "{:<34} {:<16} {:<16} {:<20} STATUS",
        "SERIAL", "USER", "DEVICE", "EXPIRES"
    );
    for r in records {
        let expires = time::OffsetDateTime::from_unix_timestamp(r.not_after)
            .map(|t| t.date().to_string())
            .unwrap_or_else(|_| r.not_after.to_string());
        println!(
            "{:<34} {:<16} {:<16} {:<20} {}",
            r.serial,
            r.user,
            r.device.as_deref().unwrap_or("-"),
            expires,
            revoked.status(&r, now)
        );
    }
    Ok(())
}

// === impl Revoked ===

impl Revoked {
    /// Both lists; a warning on stderr for each that cannot be read.
    fn read(store: &CaStore, dir: &Path, config: Option<&Config>, now: i64) -> Self {
        let by_ca = match revoked_serials(&store.revoked_path()) {
            Ok(set) => Some(set),
            Err(e) => {
                eprintln!("certgate ca list: warning: {e}: every status is unknown");
                None
            }
        };
        // `certgate revoke --serial` revokes in the revocation store, not in the CA.
        let in_store = match revocation_view(dir, config, now) {
            Ok(view) => Some(view),
            Err(e) => {
                eprintln!("certgate ca list: warning: {e}: a status that is not revoked by the CA is unknown");
                None
            }
        };
        Self { by_ca, in_store }
    }

    fn status(&self, r: &IssuedRecord, now: i64) -> &'static str {
        let sources = [
            self.by_ca.as_ref().map(|set| set.contains(&r.serial)),
            self.in_store
                .as_ref()
                .map(|v| v.is_serial_revoked(r.serial.as_str())),
        ];
        CertStatus::of(r, &sources, now).word()
    }
}

/// The revocations of the certgate serving from `dir`: its journal, or Redis when its config
/// says so.
///
/// # Errors
/// Why they cannot be read (a certgate on Redis without its config, Redis away, a bad journal).
fn revocation_view(dir: &Path, config: Option<&Config>, now: i64) -> Result<Revocations, String> {
    if let Some(StoreBackend::Redis(url)) = config.map(|c| &c.store.backend) {
        return RedisStore::new(url)
            .and_then(|store| Revocations::loaded_from_redis(Arc::new(store), now));
    }
    if Journal::redis_marker(dir).exists() {
        return Err(format!(
            "the certgate serving from {} keeps revocations in Redis: give --config with its config file",
            dir.display()
        ));
    }
    Revocations::open(Journal::in_data_dir(dir), now)
}
