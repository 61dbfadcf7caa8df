//! `certgate enroll create`: a one-time link (and QR code) that installs a certificate on a
//! phone, watch or browser.

use std::path::Path;

use clap::Subcommand;

use super::ca::check_holder;
use super::common::{data_dir_or_default, Common};
use super::CliError;
use crate::ca::enroll::{EnrollStore, Enrollment};
use crate::ca::store::CaStore;
use crate::clock::{Clock as _, SystemClock};

/// Names this command in messages.
const CMD: &str = "certgate enroll";

#[derive(Subcommand)]
pub(super) enum EnrollCommand {
    /// Create a link (and QR code) that issues one certificate, once.
    Create(CreateArgs),
}

// The options of `enroll create` (the variant's doc comment is its help).
#[derive(clap::Args)]
pub(super) struct CreateArgs {
    #[arg(long)]
    user: String,
    #[arg(long)]
    device: Option<String>,
    /// How long the link works.
    #[arg(long, default_value_t = 15)]
    minutes: i64,
    /// Validity of the certificate it issues.
    #[arg(long, default_value_t = 365)]
    days: i64,
    #[command(flatten)]
    common: Common,
    /// Without --config: where people reach certgate, e.g. https://auth.example.com.
    #[arg(long)]
    public_url: Option<String>,
}

pub(super) fn create(args: CreateArgs) -> Result<(), CliError> {
    let (dir, base) = match args.common.load()? {
        Some(config) => {
            let base = args
                .public_url
                .clone()
                .unwrap_or_else(|| config.public_url.to_string());
            (args.common.data_dir(Some(&config)), base)
        }
        None => match &args.public_url {
            Some(url) => (data_dir_or_default(args.common.data_dir.clone()), url.clone()),
            None => return Err(CliError::flag(CMD, "--public-url", "needed without --config: where people reach certgate, e.g. https://auth.example.com")),
        },
    };
    check(&args, &base, &dir)?;
    let enrollment = Enrollment {
        user: args.user.clone(),
        device: args.device.clone(),
        days: args.days,
        expires_at: SystemClock.now() + args.minutes * 60,
    };
    let secret = EnrollStore::new(&dir)
        .create(&enrollment)
        .map_err(|e| CliError::failed(CMD, e))?;
    let link = format!("{}/enroll/{secret}", base.trim_end_matches('/'));
    let who = args
        .device
        .map_or_else(|| args.user.clone(), |d| format!("{} ({d})", args.user));
    println!(
        "enrollment link for {who}: works once, for {} minutes",
        args.minutes
    );
    println!("  {link}");
    print_qr_code(&link);
    println!("Open it on the device (or scan the code): it explains how to install the certificate and shows its password once.");
    Ok(())
}

/// The flags, in the order people read them, and that `dir` holds a CA.
fn check(args: &CreateArgs, base: &str, dir: &Path) -> Result<(), CliError> {
    if !base.starts_with("https://") && !base.starts_with("http://") {
        return Err(CliError::flag(
            CMD,
            "--public-url",
            "must be an absolute http(s) URL",
        ));
    }
    check_holder(CMD, &args.user, args.device.as_deref())?;
    if !(1..=1440).contains(&args.minutes) {
        return Err(CliError::flag(
            CMD,
            "--minutes",
            "must be between 1 and 1440",
        ));
    }
    if !(1..=3650).contains(&args.days) {
        return Err(CliError::flag(CMD, "--days", "must be between 1 and 3650"));
    }
    if !CaStore::new(dir).key_path().exists() {
        return Err(CliError::flag(
            CMD,
            "--data-dir",
            format!(
                "{} holds no CA (create one with `certgate ca init`)",
                dir.display()
            ),
        ));
    }
    Ok(())
}

fn print_qr_code(link: &str) {
    match qrcode::QrCode::new(link.as_bytes()) {
        Ok(code) => {
            // Light modules drawn, dark ones left blank: scannable on a dark terminal.
            let art = code
                .render::<qrcode::render::unicode::Dense1x2>()
                .dark_color(qrcode::render::unicode::Dense1x2::Light)
                .light_color(qrcode::render::unicode::Dense1x2::Dark)
                .build();
            println!("{art}");
        }
        Err(e) => eprintln!("certgate enroll: no QR code: {e}"),
    }
}
