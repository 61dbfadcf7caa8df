//! `certgate ca list`: every certificate the CA issued, with its status. A status that cannot be
//! known (the CA's or the revocation store's list unreadable) is "unknown", never "valid".

use std::collections::HashSet;
use std::path::Path;

use super::CMD;
use crate::ca::store::{CaStore, IssuedRecord};
use crate::ca::CertStatus;
use crate::cert::Serial;
use crate::cli::CliError;
use crate::clock::{Clock as _, SystemClock};
use crate::config::Config;
use crate::revocation::Revocations;

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
        let by_ca = match store.revoked() {
            Ok(set) => Some(set),
            Err(e) => {
                eprintln!("certgate ca list: warning: {e}: every status is unknown");
                None
            }
        };
        // `certgate revoke --serial` revokes in the revocation store, not in the CA.
        let in_store = match crate::cli::store::open(dir, config, now) {
            Ok((view, _)) => Some(view),
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
