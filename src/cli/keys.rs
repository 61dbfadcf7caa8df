//! `certgate keys list|rotate`: the signing keys in `data_dir/keys`.

use std::path::Path;

use clap::Subcommand;

use super::common::Common;
use super::CliError;
use crate::clock::{Clock as _, SystemClock};
use crate::jwt::keys::key_path;
use crate::jwt::{KeySet, KeyState};

/// Names this command in messages.
const CMD: &str = "certgate keys";

/// How long a replaced key keeps verifying without a configuration: the default
/// `token.max_ttl` (30 days) and the leeway.
const DEFAULT_MAX_LIFETIME: i64 = 30 * 86_400 + 60;

#[derive(Subcommand)]
pub(super) enum KeysCommand {
    /// Each key's id, when it signs from, and its state (next, current, previous, retired).
    List,
    /// Add the next key: published in JWKS at once, signing after --publish-ahead, so every
    /// replica knows it first. Deletes retired keys.
    Rotate {
        /// How long verifiers see the new key before it signs (replicas re-read keys every 2 s).
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        publish_ahead: std::time::Duration,
    },
}

pub(super) fn run(common: &Common, command: KeysCommand) -> Result<(), CliError> {
    let config = common.load()?;
    let max_lifetime = config
        .as_ref()
        .map_or(DEFAULT_MAX_LIFETIME, crate::config::Config::max_lifetime);
    let dir = common.data_dir(config.as_ref()).join("keys");
    let now = SystemClock.now();
    match command {
        KeysCommand::List => {
            let set = KeySet::load(&dir).map_err(|e| CliError::failed(CMD, e))?;
            for k in set.all() {
                let state = format!("{:?}", set.state(k, now, max_lifetime)).to_lowercase();
                println!("{}  signs from {}  {state}", k.kid, rfc3339(k.created));
            }
            if let Some(oidc) = oidc_keys(&common.data_dir(config.as_ref()), config.as_ref(), now)?
            {
                for (kid, alg, from, state, _) in oidc.states() {
                    let state = format!("{state:?}").to_lowercase();
                    println!(
                        "{kid}  signs from {}  {state}  (OpenID Connect, {})",
                        rfc3339(from),
                        alg.as_str()
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Rotate { publish_ahead } => {
            let from = now.saturating_add(i64::try_from(publish_ahead.as_secs()).unwrap_or(0));
            let data_dir = common.data_dir(config.as_ref());
            let Some(config) = config.as_ref().filter(|c| c.store.key_encryption.is_some()) else {
                return rotate_in(&data_dir, config.as_ref(), now, from, max_lifetime);
            };
            // Keys shared through Redis: rotate what every replica signs with (Redis's), in a
            // directory of this command's own (the running server rewrites data_dir/keys
            // from Redis), and publish the result; every server, this host's too, takes it.
            let staging = data_dir.join(format!(".keys-rotation-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&staging);
            crate::jwt::keys::create_private_dir(&staging)
                .map_err(|e| CliError::failed(CMD, format!("{}: {e}", staging.display())))?;
            let rotated = shared_keys(config, &staging).and_then(|share| {
                share.pull().map_err(|e| CliError::failed(CMD, e))?;
                rotate_in(&staging, Some(config), now, from, max_lifetime)?;
                share.publish().map_err(|e| CliError::failed(CMD, e))
            });
            let _ = std::fs::remove_dir_all(&staging);
            rotated?;
            println!("published to Redis: every replica takes the keys within a second");
            Ok(())
        }
    }
}

/// Rotates the session keys and, where a provider ran, the OpenID Connect keys of `data_dir`.
fn rotate_in(
    data_dir: &Path,
    config: Option<&crate::config::Config>,
    now: i64,
    from: i64,
    max_lifetime: i64,
) -> Result<(), CliError> {
    let dir = data_dir.join("keys");
    let set = KeySet::load(&dir).map_err(|e| CliError::failed(CMD, e))?;
    // Checked before anything is written: both rotate, or neither.
    let oidc = oidc_keys(data_dir, config, now)?;
    if let Some(oidc) = &oidc {
        no_oidc_key_waiting(oidc, from)?;
    }
    rotate(&set, &dir, now, from, max_lifetime)?;
    if let Some(oidc) = oidc {
        rotate_oidc(&oidc, data_dir, from)?;
    }
    Ok(())
}

/// The keys shared through Redis (`store.key_encryption_file`), staged in `dir`.
fn shared_keys(
    config: &crate::config::Config,
    dir: &Path,
) -> Result<crate::keyshare::KeyShare, CliError> {
    match (&config.store.backend, &config.store.key_encryption) {
        (crate::revocation::StoreBackend::Redis(url), Some(secret)) => {
            crate::keyshare::KeyShare::new(url, secret, dir).map_err(|e| CliError::failed(CMD, e))
        }
        _ => Err(CliError::failed(
            CMD,
            "store.key_encryption_file is set without store.backend = \"redis\"",
        )),
    }
}

/// Deletes the retired keys, then adds one that signs from `from`.
fn rotate(
    set: &KeySet,
    dir: &Path,
    now: i64,
    from: i64,
    max_lifetime: i64,
) -> Result<(), CliError> {
    if set.all().iter().any(|k| k.created >= from) {
        return Err(CliError::failed(
            CMD,
            "a key that signs later than this one is already waiting (see `certgate keys list`)",
        ));
    }
    for k in set.all() {
        if set.state(k, now, max_lifetime) == KeyState::Retired {
            let path = key_path(dir, k);
            std::fs::remove_file(&path)
                .map_err(|e| CliError::failed(CMD, format!("{}: {e}", path.display())))?;
            println!("deleted retired key {} ({})", k.kid, path.display());
        }
    }
    let path = KeySet::add(dir, from).map_err(|e| CliError::failed(CMD, e))?;
    println!("next key {} published now, signs from {}; every certgate on this data directory picks it up within 2 s", path.display(), rfc3339(from));
    Ok(())
}

/// The OpenID Connect keys of the data directory, when it has any (a provider ran there).
fn oidc_keys(
    data_dir: &Path,
    config: Option<&crate::config::Config>,
    now: i64,
) -> Result<Option<crate::oidc::OidcKeys>, CliError> {
    let dir = crate::oidc::keys_dir(data_dir);
    if !dir.is_dir() {
        return Ok(None);
    }
    // Without a configuration: the default id_token_ttl (10 min) and the leeway.
    let lifetime = config
        .and_then(|c| c.oidc.as_ref())
        .map_or(600, |o| {
            i64::try_from(o.id_token_ttl.as_secs()).unwrap_or(i64::MAX)
        })
        .saturating_add(crate::jwt::LEEWAY);
    let clock = std::sync::Arc::new(crate::clock::FixedClock::at(now));
    crate::oidc::OidcKeys::load_or_create(&dir, clock, lifetime)
        .map(Some)
        .map_err(|e| CliError::failed(CMD, e))
}

fn no_oidc_key_waiting(keys: &crate::oidc::OidcKeys, from: i64) -> Result<(), CliError> {
    if keys.states().iter().any(|(_, _, f, _, _)| *f >= from) {
        return Err(CliError::failed(
            CMD,
            "an OpenID Connect key that signs later than this one is already waiting (see `certgate keys list`)",
        ));
    }
    Ok(())
}

/// Deletes the retired OpenID Connect keys, then adds one per algorithm signing from `from`.
fn rotate_oidc(keys: &crate::oidc::OidcKeys, data_dir: &Path, from: i64) -> Result<(), CliError> {
    for (kid, _, _, state, path) in &keys.states() {
        if *state == KeyState::Retired {
            std::fs::remove_file(path)
                .map_err(|e| CliError::failed(CMD, format!("{}: {e}", path.display())))?;
            println!(
                "deleted retired OpenID Connect key {kid} ({})",
                path.display()
            );
        }
    }
    let paths = crate::oidc::OidcKeys::add(&crate::oidc::keys_dir(data_dir), from)
        .map_err(|e| CliError::failed(CMD, e))?;
    for path in paths {
        println!(
            "next OpenID Connect key {} published now, signs from {}",
            path.display(),
            rfc3339(from)
        );
    }
    Ok(())
}

/// A Unix time as RFC 3339, else as the number.
fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}
