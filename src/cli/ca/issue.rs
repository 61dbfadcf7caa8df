//! `certgate ca issue`: a client certificate (and key, and optionally a PKCS#12 file) for a user
//! and device, or a renewal of one by serial.

use std::path::{Path, PathBuf};

use super::{serial_arg, CMD};
use crate::ca::store::{check_name, CaStore, IssuedFiles};
use crate::ca::P12Kind;
use crate::cert::Serial;
use crate::cli::CliError;
use crate::clock::{Clock as _, SystemClock};

// The options of `ca issue` (the variant's doc comment is its help).
#[derive(clap::Args)]
pub(in crate::cli) struct IssueArgs {
    #[arg(long, required_unless_present = "renew")]
    user: Option<String>,
    #[arg(long, conflicts_with = "renew")]
    device: Option<String>,
    /// A new certificate for the same user and device as this serial (see `ca list`).
    #[arg(long, conflicts_with = "user", value_parser = serial_arg)]
    renew: Option<Serial>,
    #[arg(long, default_value_t = 365)]
    days: i64,
    /// Where the .pem and .key go.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Also write a PKCS#12 file for browsers and phones.
    #[arg(long)]
    p12: Option<PathBuf>,
    /// Legacy PKCS#12 encryption (3DES, SHA-1 MAC) for Android 13 and older and Wear OS.
    #[arg(long, requires = "p12")]
    legacy: bool,
    /// Read the PKCS#12 password from this file instead of generating one.
    #[arg(long, requires = "p12")]
    password_file: Option<PathBuf>,
}

/// A PKCS#12 password, and whether certgate made it up (then it is printed, once).
struct Password {
    text: String,
    generated: bool,
}

pub(super) fn run(store: &CaStore, args: IssueArgs) -> Result<(), CliError> {
    let (user, device) = holder(store, args.user, args.device, args.renew.as_ref())?;
    check_holder(CMD, &user, device.as_deref())?;
    if !(1..=3650).contains(&args.days) {
        return Err(CliError::flag(CMD, "--days", "must be between 1 and 3650"));
    }
    let password = match &args.p12 {
        Some(_) => Some(password(args.password_file.as_deref())?),
        None => None,
    };
    let kind = if args.legacy {
        P12Kind::Legacy
    } else {
        P12Kind::Modern
    };
    let p12 = args
        .p12
        .as_deref()
        .zip(password.as_ref())
        .map(|(path, pw)| (path, kind, pw.text.as_str()));
    let files = store
        .issue(
            &user,
            device.as_deref(),
            args.days,
            &args.out,
            p12,
            SystemClock.now(),
        )
        .map_err(|e| CliError::failed(CMD, e))?;
    print_issued(&user, args.days, args.legacy, files, password);
    Ok(())
}

/// The user and device: as given, or those of the certificate `--renew` names.
fn holder(
    store: &CaStore,
    user: Option<String>,
    device: Option<String>,
    renew: Option<&Serial>,
) -> Result<(String, Option<String>), CliError> {
    match (user, renew) {
        (Some(user), _) => Ok((user, device)),
        (None, Some(serial)) => {
            let issued = store.list().map_err(|e| CliError::failed(CMD, e))?;
            let old = issued
                .into_iter()
                .find(|r| &r.serial == serial)
                .ok_or_else(|| {
                    CliError::flag(CMD, "--renew", format!("no certificate with serial {serial} was issued here (see `certgate ca list`)"))
                })?;
            Ok((old.user, old.device))
        }
        (None, None) => Err(CliError::flag(CMD, "--user", "missing")),
    }
}

/// `--user` and `--device` as certgate puts them into a certificate (see [`check_name`]).
///
/// # Errors
/// A usage error naming the flag.
pub(in crate::cli) fn check_holder(
    command: &'static str,
    user: &str,
    device: Option<&str>,
) -> Result<(), CliError> {
    check_name(user, 256).map_err(|e| CliError::flag(command, "--user", e))?;
    if let Some(device) = device {
        check_name(device, 64).map_err(|e| CliError::flag(command, "--device", e))?;
    }
    Ok(())
}

/// The first line of `--password-file`, else a new random password.
fn password(file: Option<&Path>) -> Result<Password, CliError> {
    let Some(file) = file else {
        return crate::jwt::random_id()
            .map(|text| Password {
                text,
                generated: true,
            })
            .ok_or_else(|| CliError::failed(CMD, "the system random number generator failed"));
    };
    let text = std::fs::read_to_string(file).map_err(|e| {
        CliError::flag(
            CMD,
            "--password-file",
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    match text.lines().next().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Ok(Password {
            text: p.to_string(),
            generated: false,
        }),
        None => Err(CliError::flag(
            CMD,
            "--password-file",
            "the file's first line is empty",
        )),
    }
}

fn print_issued(
    user: &str,
    days: i64,
    legacy: bool,
    files: IssuedFiles,
    password: Option<Password>,
) {
    let who = match &files.record.device {
        Some(d) => format!("{user} (device {d})"),
        None => user.to_string(),
    };
    println!(
        "issued serial {} for {who}, valid for {days} days",
        files.record.serial
    );
    println!("  certificate: {}", files.cert.display());
    println!("  key:         {} (mode 0600)", files.key.display());
    if let (Some(path), Some(password)) = (files.p12, password) {
        let label = if legacy {
            "legacy: Android 13 and older, Wear OS"
        } else {
            "modern"
        };
        println!("  PKCS#12:     {} ({label})", path.display());
        if password.generated {
            println!("  password:    {}", password.text);
        }
    }
}
