//! `certgate revoke --user U | --serial S | --device S | --jti J`: into the revocation store
//! that every certgate on the same data directory (or the same Redis) follows.

use std::path::Path;

use super::common::Common;
use super::CliError;
use crate::cert::Serial;
use crate::clock::{Clock as _, SystemClock};
use crate::config::Config;
use crate::revocation::Entry;

/// Names this command in messages.
const CMD: &str = "certgate revoke";

/// How long a token may live without a configuration: the default `token.max_ttl`, 30 days.
const DEFAULT_MAX_TTL: i64 = 30 * 86_400;

// The options of `revoke` (the variant's doc comment is its help).
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["user", "serial", "device", "jti"])))]
pub(super) struct RevokeArgs {
    /// Every session and bearer token of this user issued until now ("log out everywhere"):
    /// their certificate signs them in again. To keep them out, `certgate user disable`.
    #[arg(long)]
    user: Option<String>,
    /// This certificate (hex serial, any CA) and every token minted from it.
    #[arg(long)]
    serial: Option<String>,
    /// Sign out one device: every token minted from this certificate (hex serial) until
    /// now; the certificate itself stays valid and may sign in again.
    #[arg(long)]
    device: Option<String>,
    /// One token, by its id (the `jti` of the audit log's login and token events).
    /// Ids may start with `-`.
    #[arg(long, allow_hyphen_values = true)]
    jti: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub(super) fn run(args: RevokeArgs) -> Result<(), CliError> {
    let now = SystemClock.now();
    let config = args.common.load()?;
    let dir = args.common.data_dir(config.as_ref());
    let entry = entry(&args, config.as_ref())?;
    // Through a loaded view, so a new cut-off covers every token minted after the last one.
    let (view, reach) =
        super::store::open(&dir, config.as_ref(), now).map_err(|e| CliError::failed(CMD, e))?;
    view.revoke(entry.clone())
        .map_err(|e| CliError::failed(CMD, e))?;
    let (kind, id) = entry.describe();
    crate::audit::revoke(&crate::audit::Actor::default(), kind, id, "certgate revoke");
    println!(
        "revoked {}: {reach} refuses it within a second",
        what(&entry)
    );
    if let Entry::Serial { id, .. } | Entry::Device { id, .. } = &entry {
        let crl_files = config.map(|c| c.client_ca.crl_files).unwrap_or_default();
        describe_certificate(id, &dir, &crl_files);
    }
    Ok(())
}

/// What to revoke, from the one flag given.
fn entry(args: &RevokeArgs, config: Option<&Config>) -> Result<Entry, CliError> {
    let max_ttl = config.map_or(DEFAULT_MAX_TTL, |c| {
        i64::try_from(c.token.max_ttl.as_secs()).unwrap_or(i64::MAX)
    });
    Entry::requested(
        args.user.as_deref(),
        args.serial.as_deref(),
        args.device.as_deref(),
        args.jti.as_deref(),
        SystemClock.now_ms(),
        max_ttl,
    )
    .map_err(|e| {
        // The field a problem names is a flag here (only the prefix: the hint says "serial:" too).
        let e = match e.split_once(": ") {
            Some((field @ ("serial" | "device"), rest)) => format!("--{field}: {rest}"),
            _ => e,
        };
        CliError::usage(CMD, e)
    })
}

fn what(entry: &Entry) -> String {
    match entry {
        Entry::User { id, .. } => format!("every token of {id} issued until now"),
        Entry::Serial { id, .. } => format!("certificate {id} and every token minted from it"),
        Entry::Device { id, .. } => {
            format!("every token minted from certificate {id} until now (it may sign in again)")
        }
        Entry::Jti { id, .. } => format!("token {id}"),
        Entry::Lock { id, .. } => format!("{id}: locked out"),
        Entry::Unlock { id, .. } => format!("{id}: let back in"),
    }
}

/// Which CA issued the certificate, if certgate knows it; a warning when it does not.
fn describe_certificate(id: &str, dir: &Path, crl_files: &[std::path::PathBuf]) {
    if let Ok(serial) = Serial::parse(id) {
        let (known, text) = crate::revocation::known::describe(&serial, dir, crl_files);
        if known {
            println!("{text}");
        } else {
            eprintln!("certgate revoke: warning: {text}");
        }
    }
}
