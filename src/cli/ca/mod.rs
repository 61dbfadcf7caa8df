//! `certgate ca init|issue|list|revoke|crl`: the built-in CA in the data directory.

mod issue;
mod list;

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::common::Common;
use super::CliError;
use crate::ca::store::CaStore;
use crate::cert::Serial;
use crate::clock::{Clock as _, SystemClock};
use crate::config::Config;
use crate::revocation::Entry;

pub(super) use issue::check_holder;

/// Names this command in messages.
const CMD: &str = "certgate ca";

#[derive(Subcommand)]
pub(super) enum CaCommand {
    /// Create a new CA (ECDSA P-256), or import an existing CA certificate and key.
    Init {
        #[arg(long, default_value = "certgate CA")]
        name: String,
        /// p256 (default; what browsers and phones accept) or ed25519 (curl/OpenSSL clients).
        #[arg(long, value_enum, default_value = "p256")]
        key_type: CaKeyType,
        #[arg(long, requires = "import_key")]
        import_cert: Option<PathBuf>,
        #[arg(long, requires = "import_cert")]
        import_key: Option<PathBuf>,
    },
    /// Issue a client certificate for a user (and device), or renew one by serial.
    Issue(issue::IssueArgs),
    /// Every certificate issued: serial, user, device, expiry, status.
    List,
    /// Revoke an issued certificate: in the revocation store (every certgate following it
    /// refuses it within a second) and the CA's list; run `ca crl` for proxies.
    Revoke {
        #[arg(value_parser = serial_arg)]
        serial: Serial,
    },
    /// Print (or write) a signed CRL of every revocation of this CA's certificates (`ca revoke`
    /// and `certgate revoke --serial`), for nginx `ssl_crl` and the like.
    Crl {
        /// DER instead of PEM (needs --out).
        #[arg(long, requires = "out")]
        der: bool,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Days until its next-update (refresh it before then: an expired CRL refuses everyone).
        #[arg(long, default_value_t = 7)]
        days: i64,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum CaKeyType {
    P256,
    Ed25519,
}

/// A serial on the command line, in any spelling operators copy.
fn serial_arg(text: &str) -> Result<Serial, String> {
    Serial::parse(text).map_err(|e| {
        format!(
            "{e}; give a certificate serial: {}",
            crate::cert::serial::SerialError::FORMS
        )
    })
}

pub(super) fn run(common: &Common, command: CaCommand) -> Result<(), CliError> {
    let config = common.load()?;
    let dir = common.data_dir(config.as_ref());
    let store = CaStore::new(&dir);
    match command {
        CaCommand::Init {
            name,
            key_type,
            import_cert,
            import_key,
        } => {
            let import = import_cert.as_deref().zip(import_key.as_deref());
            init(&store, &name, key_type, import)
        }
        CaCommand::Issue(args) => issue::run(&store, args),
        CaCommand::List => list::run(&store, &dir, config.as_ref()),
        CaCommand::Revoke { serial } => revoke(&store, &serial, &dir, config.as_ref()),
        CaCommand::Crl { der, out, days } => crl(&store, &dir, config.as_ref(), der, out, days),
    }
}

fn init(
    store: &CaStore,
    name: &str,
    key_type: CaKeyType,
    import: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<(), CliError> {
    let key_type = match key_type {
        CaKeyType::P256 => crate::ca::KeyType::P256,
        CaKeyType::Ed25519 => crate::ca::KeyType::Ed25519,
    };
    store
        .init(name, key_type, import, SystemClock.now())
        .map_err(|e| CliError::failed(CMD, e))?;
    println!(
        "CA ready: {} (key {}, mode 0600)",
        store.cert_path().display(),
        store.key_path().display()
    );
    println!("point client_ca.bundle at {}", store.cert_path().display());
    Ok(())
}

/// Revokes a certificate this CA issued: in the revocation store, so that every certgate
/// following it (every replica on Redis) refuses it within a second, and in the CA's own list.
/// The store comes first: a failure there leaves nothing half done, and a CRL lists what the
/// store revoked anyway.
fn revoke(
    store: &CaStore,
    serial: &Serial,
    dir: &Path,
    config: Option<&Config>,
) -> Result<(), CliError> {
    let now = SystemClock.now();
    if !store.issued(serial).map_err(|e| CliError::failed(CMD, e))? {
        return Err(CliError::failed(
            CMD,
            format!("no certificate with serial {serial} was issued here (see `certgate ca list`)"),
        ));
    }
    let (view, reach) =
        super::store::open(dir, config, now).map_err(|e| CliError::failed(CMD, e))?;
    let in_store = view.is_serial_revoked(serial.as_str());
    if !in_store {
        view.revoke(Entry::Serial {
            id: serial.to_string(),
            at: now,
        })
        .map_err(|e| CliError::failed(CMD, e))?;
    }
    let by_ca = store
        .revoke(serial, now)
        .map_err(|e| CliError::failed(CMD, e))?;
    if in_store && !by_ca {
        println!("{serial} was revoked already");
        return Ok(());
    }
    let actor = crate::audit::Actor::default();
    crate::audit::revoke(&actor, "serial", serial.as_str(), "certgate ca revoke");
    println!("revoked {serial}: {reach} refuses it within a second; publish the CRL to your proxy with `certgate ca crl`");
    Ok(())
}

/// The CRL of the CA's own list and of the serials it issued that the revocation store
/// revoked (`certgate revoke --serial`). A store that cannot be read makes no CRL: one
/// without its revocations would let a revoked certificate through the proxy.
fn crl(
    store: &CaStore,
    dir: &Path,
    config: Option<&Config>,
    der: bool,
    out: Option<PathBuf>,
    days: i64,
) -> Result<(), CliError> {
    if !(1..=365).contains(&days) {
        return Err(CliError::flag(CMD, "--days", "must be between 1 and 365"));
    }
    let now = SystemClock.now();
    let (view, _) = super::store::open(dir, config, now).map_err(|e| {
        CliError::failed(
            CMD,
            format!("the revocation store cannot be read, so no CRL is made: {e}"),
        )
    })?;
    let (pem, der_bytes) = store
        .crl(now, days, &view.revoked_serials())
        .map_err(|e| CliError::failed(CMD, e))?;
    let bytes = if der { der_bytes } else { pem.into_bytes() };
    match out {
        Some(path) => {
            std::fs::write(&path, bytes)
                .map_err(|e| CliError::failed(CMD, format!("{}: {e}", path.display())))?;
            println!(
                "CRL written to {} (next update in {days} days)",
                path.display()
            );
        }
        None => print!("{}", String::from_utf8_lossy(&bytes)),
    }
    Ok(())
}
