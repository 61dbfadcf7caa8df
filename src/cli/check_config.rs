//! `certgate check-config [--config FILE]`: exit 0 when valid, else every problem and exit 2.

use super::common::{load, ConfigFile};
use super::CliError;
use crate::cert::IssuerCa;
use crate::config::Config;

pub(super) fn run(file: &ConfigFile) -> Result<(), CliError> {
    let Some(path) = &file.config else {
        println!("nothing to check: without --config, `certgate serve` runs the quickstart with embedded defaults");
        return Ok(());
    };
    let config = load(path, None)?;
    println!("{}: ok", path.display());
    print_bindings(&config);
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
