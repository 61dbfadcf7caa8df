//! `certgate user disable|enable NAME`: lock a user out at run time, or let them back in,
//! through the revocation store every certgate on the same data directory (or the same Redis)
//! follows. A user `disabled = true` in the configuration stays disabled whatever the store says.

use clap::Subcommand;

use super::common::Common;
use super::CliError;
use crate::clock::{Clock as _, SystemClock};
use crate::config::Config;
use crate::revocation::Entry;

/// Names this command in messages.
const CMD: &str = "certgate user";

#[derive(Subcommand)]
pub(super) enum UserCommand {
    /// Lock a user out: their certificates, sessions and bearer tokens are refused everywhere
    /// within a second, until `user enable`. Every token issued until now ends for good.
    Disable {
        /// The user name, as in [[users]] (and the certificates' user name).
        name: String,
    },
    /// Let a locked-out user back in: their certificates sign in again (tokens issued before
    /// the lock stay ended).
    Enable {
        /// The user name, as in [[users]].
        name: String,
    },
}

pub(super) fn run(common: &Common, command: UserCommand) -> Result<(), CliError> {
    let (name, lock) = match command {
        UserCommand::Disable { name } => (name, true),
        UserCommand::Enable { name } => (name, false),
    };
    crate::ca::store::check_name(&name, 256)
        .map_err(|e| CliError::usage(CMD, format!("NAME {e}")))?;
    let config = common.load()?;
    let dir = common.data_dir(config.as_ref());
    let now_ms = SystemClock.now_ms();
    let (view, reach) = super::store::open(&dir, config.as_ref(), now_ms.div_euclid(1000))
        .map_err(|e| CliError::failed(CMD, e))?;
    if view.is_locked(&name) == lock {
        let state = if lock { "locked out" } else { "not locked out" };
        println!("{name} is {state} already: nothing changed");
    } else {
        let entry = if lock {
            Entry::Lock {
                id: name.clone(),
                at_ms: now_ms,
            }
        } else {
            Entry::Unlock {
                id: name.clone(),
                at_ms: now_ms,
            }
        };
        view.revoke(entry).map_err(|e| CliError::failed(CMD, e))?;
        crate::audit::lock(
            &crate::audit::Actor::default(),
            &name,
            lock,
            "certgate user",
        );
        if lock {
            println!("locked out {name}: {reach} refuses their certificates, sessions and bearer tokens within a second; `certgate user enable {name}` lets them back in");
        } else {
            println!("let {name} back in: their certificates sign in again on {reach} within a second (tokens issued before the lock stay ended)");
        }
    }
    if let Some(warning) = config.as_ref().and_then(|c| config_says(c, &name, lock)) {
        eprintln!("{CMD}: warning: {warning}");
    }
    Ok(())
}

/// What the configuration file says of `name` that the store cannot change.
fn config_says(config: &Config, name: &str, lock: bool) -> Option<String> {
    let identity = &config.identity;
    match identity.users.get(name) {
        Some(user) if user.disabled && !lock => Some(format!(
            "{name} is disabled in the configuration file ([[users]] disabled = true) and stays disabled until that line goes"
        )),
        Some(_) => None,
        None if identity.allow_unlisted => None,
        None => Some(format!(
            "{name} is not listed in [[users]] (and identity.allow_unlisted is off), so certgate lets them in nowhere anyway; check the spelling"
        )),
    }
}
