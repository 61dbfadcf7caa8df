//! The state certgate serves from: built once at start-up, rebuilt from a new configuration on
//! SIGHUP (keeping keys, revocations, metrics and pending downloads).

use std::sync::Arc;

use super::StartError;
use crate::clock::Clock;
use crate::config::Config;
use crate::http::AppState;
use crate::{ca, cert, db, http, jwt, metrics, oidc, revocation};

/// Builds the state at start-up: keys (created on first start), then everything that follows
/// the configuration (see [`with_config`]).
///
/// # Errors
/// When keys cannot be loaded or created, or the trust anchors are unusable.
pub fn build_state(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
    let keyshare = keyshare_for(&config)?;
    // Redis's keys first, when it has some: every replica signs with the same ones.
    if let Some(share) = &keyshare {
        share.pull().map_err(StartError::SharedKeys)?;
    }
    let keys = jwt::KeySet::load_or_create(&config.data_dir.join("keys"), clock.now())?;
    let tokens =
        jwt::Tokens::new(keys, config.public_base()).with_max_lifetime(config.max_lifetime());
    let pages = http::pages::Pages::new().map_err(|e| StartError::Pages(e.to_string()))?;
    let metrics = metrics::Metrics::new().map_err(|e| StartError::Metrics(e.to_string()))?;
    let trust = trust_for(&config)?;
    let revocations = revocations_for(&config, &clock)?;
    let oidc = oidc_for(&config, &clock)?;
    if let Some(share) = &keyshare {
        // The first replica publishes the keys it made, a later one those it made that Redis
        // lacks; then each takes Redis's (another may have added some at the same time),
        // before it signs anything.
        share.publish_missing().map_err(StartError::SharedKeys)?;
        if share.pull().map_err(StartError::SharedKeys)? {
            tokens.reload_keys(&config.data_dir.join("keys"))?;
            if let Some(provider) = &oidc {
                provider.keys.reload()?;
            }
        }
    }
    let config_data_dir = config.data_dir.clone();
    Ok(AppState {
        policy: Arc::new(config.policy.clone()),
        config: Arc::new(config),
        trust,
        pages: Arc::new(pages),
        tokens: Arc::new(tokens),
        revocations,
        sessions: Arc::default(),
        clock,
        metrics,
        downloads: Arc::default(),
        holders: http::Holders::default(),
        seen: Arc::new(revocation::known::Seen::in_data_dir(&config_data_dir)),
        oidc,
        keyshare,
    })
}

/// The signing keys shared through Redis, with `store.backend = "redis"` and
/// `store.key_encryption_file`.
fn keyshare_for(config: &Config) -> Result<Option<Arc<crate::keyshare::KeyShare>>, StartError> {
    match (&config.store.backend, &config.store.key_encryption) {
        (revocation::StoreBackend::Redis(url), Some(secret)) => Ok(Some(Arc::new(
            crate::keyshare::KeyShare::new(url, secret, &config.data_dir)
                .map_err(StartError::SharedKeys)?,
        ))),
        _ => Ok(None),
    }
}

/// The OpenID Connect provider of `[oidc]`: its keys (created on first start) and grants.
fn oidc_for(
    config: &Config,
    clock: &Arc<dyn Clock>,
) -> Result<Option<Arc<oidc::Provider>>, StartError> {
    let Some(settings) = &config.oidc else {
        return Ok(None);
    };
    // Replicas sharing Redis share their grants too; the database serves one host.
    let store = match &config.store.backend {
        revocation::StoreBackend::Redis(url) => oidc::Store::Redis(Arc::new(
            oidc::redis::Shared::new(url).map_err(StartError::Revocation)?,
        )),
        revocation::StoreBackend::Embedded => oidc::Store::Db(Arc::new(
            db::Db::open(&config.data_dir).map_err(|e| StartError::Database(e.to_string()))?,
        )),
    };
    let provider =
        oidc::Provider::new(settings.clone(), &config.data_dir, store, Arc::clone(clock))?;
    Ok(Some(Arc::new(provider)))
}

/// The revocation view: the table in `data_dir/certgate.db` (embedded), or one that follows Redis. Leaves
/// a note in `data_dir` when revocations are in Redis, so `certgate revoke` without the config
/// does not write where no server reads; removes it otherwise.
fn revocations_for(
    config: &Config,
    clock: &Arc<dyn Clock>,
) -> Result<Arc<revocation::Revocations>, StartError> {
    let marker = revocation::Table::redis_marker(&config.data_dir);
    Ok(match &config.store.backend {
        revocation::StoreBackend::Embedded => {
            let _ = std::fs::remove_file(&marker);
            let db =
                db::Db::open(&config.data_dir).map_err(|e| StartError::Database(e.to_string()))?;
            Arc::new(
                revocation::Revocations::open(revocation::Table::new(Arc::new(db)), clock.now())
                    .map_err(StartError::Revocation)?,
            )
        }
        // Not ready (503, /readyz false) until the first read from Redis completes.
        revocation::StoreBackend::Redis(url) => {
            let note = "This certgate keeps revocations in Redis (store.redis_url): run `certgate revoke --config` with its config.\n";
            if let Err(e) = std::fs::create_dir_all(&config.data_dir)
                .and_then(|()| std::fs::write(&marker, note))
            {
                tracing::warn!(error = %e, path = %marker.display(), "cannot leave the note that revocations are in Redis");
            }
            revocation::Revocations::follow_redis(
                Arc::new(revocation::RedisStore::new(url).map_err(StartError::Revocation)?),
                Arc::clone(clock),
            )
        }
    })
}

/// The state for a reloaded configuration: new settings, trust anchors, CRLs and rules; the
/// same keys, revocations, metrics and pending downloads.
///
/// # Errors
/// When the new trust anchors or revocation sources are unusable.
pub fn with_config(old: &AppState, config: Config) -> Result<AppState, StartError> {
    let trust = trust_for(&config)?;
    let oidc = oidc_for(&config, &old.clock)?;
    Ok(AppState {
        policy: Arc::new(config.policy.clone()),
        config: Arc::new(config),
        trust,
        pages: Arc::clone(&old.pages),
        tokens: Arc::clone(&old.tokens),
        revocations: Arc::clone(&old.revocations),
        sessions: Arc::clone(&old.sessions),
        clock: Arc::clone(&old.clock),
        metrics: old.metrics.clone(),
        downloads: Arc::clone(&old.downloads),
        holders: http::Holders::default(),
        seen: Arc::clone(&old.seen),
        oidc,
        keyshare: old.keyshare.clone(),
    })
}

/// Trust anchors with their revocation sources (CRL files and the built-in CA's list).
fn trust_for(config: &Config) -> Result<cert::TrustStore, StartError> {
    let revocation = cert::crl::Revocation::new(
        config.client_ca.crl_files.clone(),
        Some(
            ca::store::revoked_source(&config.data_dir)
                .map_err(|e| StartError::Revocation(e.to_string()))?,
        ),
        config.client_ca.danger_accept_expired_crl,
    )
    .map_err(StartError::Revocation)?;
    Ok(cert::TrustStore::new(&config.client_ca.bundle)?.with_revocation(revocation))
}
