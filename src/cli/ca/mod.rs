//! `certgate ca init|issue|list|revoke|crl`: the built-in CA in the data directory.

mod issue;
mod list;

use std::path::PathBuf;

use clap::Subcommand;

use super::common::Common;
use super::CliError;
use crate::ca::store::CaStore;
use crate::cert::Serial;
use crate::clock::{Clock as _, SystemClock};

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
    /// Revoke an issued certificate: certgate refuses it at once; run `ca crl` for proxies.
    Revoke {
        #[arg(value_parser = serial_arg)]
        serial: Serial,
    },
    /// Print (or write) a signed CRL of every revocation, for nginx `ssl_crl` and the like.
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
        CaCommand::Revoke { serial } => revoke(&store, &serial),
        CaCommand::Crl { der, out, days } => crl(&store, der, out, days),
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

fn revoke(store: &CaStore, serial: &Serial) -> Result<(), CliError> {
    let revoked = store
        .revoke(serial, SystemClock.now())
        .map_err(|e| CliError::failed(CMD, e))?;
    if revoked {
        let actor = crate::audit::Actor::default();
        crate::audit::revoke(&actor, "serial", serial.as_str(), "certgate ca revoke");
        println!("revoked {serial}: certgate refuses it from now on; publish the CRL to your proxy with `certgate ca crl`");
    } else {
        println!("{serial} was revoked already");
    }
    Ok(())
}

fn crl(store: &CaStore, der: bool, out: Option<PathBuf>, days: i64) -> Result<(), CliError> {
    if !(1..=365).contains(&days) {
        return Err(CliError::flag(CMD, "--days", "must be between 1 and 365"));
    }
    let (pem, der_bytes) = store
        .crl(SystemClock.now(), days)
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
