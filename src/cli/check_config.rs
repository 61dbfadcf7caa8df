//! `certgate check-config [--config FILE]`: exit 0 when valid, else every problem and exit 2.

use super::common::{load, ConfigFile};
use super::CliError;
use crate::cert::IssuerCa;
use crate::config::Config;
use crate::db::Db;

pub(super) fn run(file: &ConfigFile) -> Result<(), CliError> {
    let Some(path) = &file.config else {
        println!("nothing to check: without --config, `certgate serve` runs the quickstart with embedded defaults");
        return Ok(());
    };
    let config = load(path, None)?;
    println!("{}: ok", path.display());
    print_bindings(&config);
    print_database(&config.data_dir)
}

/// Opens the database as the server will (importing an older certgate's files the first time)
/// and says what it found: a database certgate cannot open stops the server too.
fn print_database(data_dir: &std::path::Path) -> Result<(), CliError> {
    if !data_dir.is_dir() {
        println!(
            "{}: not created yet (certgate creates it at its first start)",
            data_dir.display()
        );
        return Ok(());
    }
    let db = Db::open(data_dir).map_err(|e| CliError::failed("certgate check-config", e))?;
    println!("{}: ok", db.path().display());
    let imported = db.imported();
    if !imported.is_empty() {
        println!("  imported from an earlier certgate's files: {imported}");
        for kept in &imported.kept {
            println!("  kept: {}", kept.display());
        }
    }
    Ok(())
}

/// With several CAs, which CA may issue whom, as the configuration works it out.
fn print_bindings(config: &Config) {
    let identity = &config.identity;
    if identity.cas.len() < 2 {
        return;
    }
    println!(
        "{} client CAs: each user signs in only with a certificate of their CA",
        identity.cas.len()
    );
    for user in identity.users.values().filter(|u| !u.disabled) {
        println!("  {}: {}", user.name, ca_names(&user.ca));
    }
    if identity.allow_unlisted {
        println!("  users not listed: {}", ca_names(&identity.unlisted_ca));
    }
}

fn ca_names(cas: &[IssuerCa]) -> String {
    if cas.is_empty() {
        "any CA (client_ca.danger_any_ca_for_any_user)".to_string()
    } else {
        cas.iter()
            .map(|ca| &*ca.name)
            .collect::<Vec<_>>()
            .join(" or ")
    }
}
