//! certgate turns a TLS client certificate into single sign-on for self-hosted apps.
//!
//! A person proves who they are once, with a certificate, at `/auth` and gets a short-lived
//! signed session cookie; the reverse proxy then asks `/verify` about every other request
//! (forward auth). Scripts and WebSocket clients use a bearer token from `/token`.
//!
//! Data flows one way: listener ▶ [`http::extract`] ▶ [`cert`] ▶ [`identity`] ▶
//! [`revocation`] ▶ response, with errors turned into answers in one place, [`error`].

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod ca;
pub mod cert;
pub mod clock;
pub mod config;
pub mod error;
pub mod explain;
pub mod http;
pub mod identity;
pub mod jwt;
mod listeners;
pub mod metrics;
pub mod policy;
pub mod proxy_config;
pub mod quickstart;
pub mod revocation;
pub mod session;
pub mod settings;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::web;

use crate::clock::Clock;
use crate::config::Config;
use crate::http::{AppState, Live};

/// Why certgate could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("signing keys: {0}")]
    Keys(#[from] jwt::KeyError),
    #[error("client_ca.bundle: {0}")]
    Trust(#[from] cert::CertError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("{key}: cannot listen on {addr}: {source} (is another certgate running? choose another address with {env})")]
    Bind {
        key: &'static str,
        env: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("revocation: {0} (fix the file; certgate does not start on unknown revocations)")]
    Revocation(String),
    #[error("templates: {0}")]
    Pages(String),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("server: {0}")]
    Server(#[from] std::io::Error),
}

/// Builds the state at start-up: keys (created on first start), then everything that follows
/// the configuration (see [`with_config`]).
///
/// # Errors
/// When keys cannot be loaded or created, or the trust anchors are unusable.
pub fn build_state(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
    let keys = jwt::KeySet::load_or_create(&config.data_dir.join("keys"), clock.now())?;
    let tokens =
        jwt::Tokens::new(keys, config.public_base()).with_max_lifetime(config.max_lifetime());
    let pages = http::pages::Pages::new().map_err(|e| StartError::Pages(e.to_string()))?;
    let metrics = metrics::Metrics::new().map_err(|e| StartError::Metrics(e.to_string()))?;
    let trust = trust_for(&config)?;
    let marker = revocation::Journal::redis_marker(&config.data_dir);
    let revocations = match &config.store.backend {
        revocation::StoreBackend::Embedded => {
            let _ = std::fs::remove_file(&marker);
            Arc::new(
                revocation::Revocations::open(
                    revocation::Journal::in_data_dir(&config.data_dir),
                    clock.now(),
                )
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
                Arc::clone(&clock),
            )
        }
    };
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
    })
}

/// The state for a reloaded configuration: new settings, trust anchors, CRLs and rules; the
/// same keys, revocations, metrics and pending downloads.
///
/// # Errors
/// When the new trust anchors or revocation sources are unusable.
pub fn with_config(old: &AppState, config: Config) -> Result<AppState, StartError> {
    let trust = trust_for(&config)?;
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
    })
}

/// Trust anchors with their revocation sources (CRL files and the built-in CA's list).
fn trust_for(config: &Config) -> Result<cert::TrustStore, StartError> {
    let revocation = cert::crl::Revocation::new(
        config.client_ca.crl_files.clone(),
        Some(ca::store::revoked_source(&config.data_dir)),
        config.client_ca.danger_accept_expired_crl,
    )
    .map_err(StartError::Revocation)?;
    Ok(cert::TrustStore::new(&config.client_ca.bundle)?.with_revocation(revocation))
}

/// Re-reads the configuration (for SIGHUP).
pub type Reloader = Box<dyn Fn() -> Result<Config, config::Problems> + Send + Sync>;

/// Serves until SIGINT/SIGTERM; on SIGHUP, re-reads the rules through `reload`.
///
/// # Errors
/// When a listener cannot be bound or the server fails.
pub async fn serve(state: AppState, reload: Option<Reloader>) -> Result<(), StartError> {
    let cfg = Arc::clone(&state.config);
    let bound = listeners::bind_all(&cfg)?;
    let live = web::Data::new(Live::new(state));
    reload_on_sighup(live.clone(), reload);
    follow_revocations(live.clone());
    listeners::run(bound, &cfg, live).await
}

/// SIGHUP re-reads the configuration file and swaps in a state built from it: settings, client
/// CA bundle, CRLs and rules. An invalid file, or one whose CA or CRL cannot be used, keeps the
/// state in force, logs every problem and sets `certgate_config_last_reload_successful` to 0.
/// (Without a handler, SIGHUP would end the process.)
#[cfg(unix)]
fn reload_on_sighup(live: web::Data<Live>, reload: Option<Reloader>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; a reload needs a restart");
            return;
        }
    };
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(reload) = &reload else {
                tracing::info!("SIGHUP: the quickstart has no configuration file to reload");
                continue;
            };
            reload_once(&live, reload);
        }
    });
}

#[cfg(not(unix))]
fn reload_on_sighup(_: web::Data<Live>, _: Option<Reloader>) {}

/// Brings the revocation view up to date four times a second (revocations by other processes
/// take effect within a second), and says when it cannot and when it can again; picks up
/// rotated signing keys.
fn follow_revocations(live: web::Data<Live>) {
    actix_web::rt::spawn(async move {
        let mut failing = false;
        let mut tick = 0u32;
        loop {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(250)).await;
            let state = live.current();
            let now = state.clock.now();
            tick = tick.wrapping_add(1);
            // Keys every 2 s: a rotation publishes the next key well ahead of its use.
            if tick % 8 == 0 {
                match state
                    .tokens
                    .reload_keys(&state.config.data_dir.join("keys"))
                {
                    Ok(true) => tracing::info!(
                        event = "keys_reloaded",
                        "signing keys changed on disk; now in force"
                    ),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot re-read the signing keys; the ones in force stay")
                    }
                }
            }
            match state.revocations.sync(now) {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(event = "store_recovered", "revocation store readable again");
                }
                Err(why) if !failing => {
                    failing = true;
                    tracing::error!(event = "store_failed", %why, "cannot read the revocation store; checks answer 503 once it is older than store.max_staleness");
                }
                _ => {}
            }
            #[allow(clippy::cast_precision_loss)] // seconds: far below 2^52
            state
                .metrics
                .store_staleness
                .set(state.revocations.age(now) as f64);
        }
    });
}

fn reload_once(live: &Live, reload: &Reloader) {
    let old = live.current();
    let metrics = &old.metrics;
    let failed = |problems: Vec<String>| {
        for problem in &problems {
            tracing::error!(event = "reload_failed", %problem, "SIGHUP: configuration not reloaded; the previous one stays in force");
        }
        metrics.reloads.with_label_values(&["failed"]).inc();
        metrics.reload_ok.set(0);
    };
    let mut config = match reload() {
        Ok(config) => config,
        Err(problems) => return failed(problems.0.iter().map(ToString::to_string).collect()),
    };
    let kept = config.keep_restart_only(&old.config);
    let rules = config.policy.rules.len();
    match with_config(&old, config) {
        Ok(state) => {
            live.replace(state);
            metrics.reloads.with_label_values(&["ok"]).inc();
            metrics.reload_ok.set(1);
            tracing::info!(
                event = "reload",
                rules,
                "SIGHUP: configuration reloaded (users, client CA, CRLs, rules)"
            );
            if !kept.is_empty() {
                tracing::warn!(keys = %kept.join(", "), "SIGHUP: these keys changed but take effect only on restart");
            }
        }
        Err(e) => failed(vec![e.to_string()]),
    }
}
