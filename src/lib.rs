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

pub mod ca;
pub mod cert;
pub mod clock;
pub mod config;
pub mod error;
pub mod explain;
pub mod http;
pub mod identity;
pub mod jwt;
pub mod metrics;
pub mod policy;
pub mod proxy_config;
pub mod quickstart;
pub mod revocation;
pub mod tls;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::{web, App, HttpServer};

use crate::clock::Clock;
use crate::config::Config;
use crate::http::AppState;

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
    #[error("server: {0}")]
    Server(#[from] std::io::Error),
}

/// Builds the shared state: keys (created on first start), trust anchors, templates.
///
/// # Errors
/// When keys cannot be loaded or created, or the trust anchors are unusable.
pub fn build_state(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
    let keys = jwt::KeySet::load_or_create(&config.data_dir.join("keys"), clock.now())?;
    let revocation = cert::crl::Revocation::new(
        config.crl_files.clone(),
        Some(ca::store::CaStore::new(&config.data_dir).revoked_path()),
        config.danger_accept_expired_crl,
    )
    .map_err(StartError::Revocation)?;
    let trust = cert::TrustStore::new(&config.client_ca)?.with_revocation(revocation);
    let tokens = jwt::Tokens::new(keys, config.public_url.as_str().trim_end_matches('/'));
    let pages = http::pages::Pages::new().map_err(|e| StartError::Pages(e.to_string()))?;
    let policy = std::sync::RwLock::new(Arc::new(config.policy.clone()));
    Ok(AppState {
        policy,
        downloads: http::enroll::Downloads::default(),
        config: Arc::new(config),
        trust,
        tokens,
        revocations: revocation::Revocations::default(),
        clock,
        pages,
    })
}

/// Re-reads the configuration (for SIGHUP).
pub type Reloader = Box<dyn Fn() -> Result<Config, config::Problems> + Send + Sync>;

/// Serves until SIGINT/SIGTERM; on SIGHUP, re-reads the rules through `reload`.
///
/// # Errors
/// When a listener cannot be bound or the server fails.
pub async fn serve(state: AppState, reload: Option<Reloader>) -> Result<(), StartError> {
    let cfg = Arc::clone(&state.config);
    let bind = |key, env, addr| {
        TcpListener::bind(addr).map_err(|source| StartError::Bind {
            key,
            env,
            addr,
            source,
        })
    };
    let http_listener = bind("listen.http", "CERTGATE__LISTEN__HTTP", cfg.listen.http)?;
    let mtls = match (cfg.listen.mtls, &cfg.tls) {
        (Some(addr), Some(tls)) => Some((
            bind("listen.mtls", "CERTGATE__LISTEN__MTLS", addr)?,
            tls::server_config(tls, &cfg.client_ca)?,
        )),
        _ => None,
    };
    let state = web::Data::new(state);
    reload_on_sighup(state.clone(), reload);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(16 * 1024))
            .configure(http::routes)
    })
    .on_connect(tls::capture_connection)
    .workers(2)
    .shutdown_timeout(10)
    .listen(http_listener)?;
    tracing::info!(addr = %cfg.listen.http, "forward-auth listener (plain HTTP) ready");
    if let Some((listener, tls_config)) = mtls {
        let addr = listener.local_addr()?;
        server = server.listen_rustls_0_23(listener, tls_config)?;
        tracing::info!(%addr, "mTLS listener ready");
    }
    server.run().await?;
    Ok(())
}

/// SIGHUP re-reads the configuration file and swaps in its `[[rules]]` and `[access]`; an
/// invalid file keeps the rules in force and logs every problem. (Without a handler, SIGHUP
/// would end the process.)
#[cfg(unix)]
fn reload_on_sighup(state: web::Data<AppState>, reload: Option<Reloader>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; rules reload needs a restart");
            return;
        }
    };
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(reload) = &reload else {
                tracing::info!("SIGHUP: the quickstart has no configuration file to reload");
                continue;
            };
            match reload() {
                Ok(config) => {
                    let rules = config.policy.rules.len();
                    state.replace_policy(config.policy);
                    tracing::info!(
                        event = "reload",
                        rules,
                        "SIGHUP: rules reloaded (other settings need a restart)"
                    );
                }
                Err(problems) => {
                    for p in &problems.0 {
                        tracing::error!(event = "reload_failed", problem = %p, "SIGHUP: configuration invalid; keeping the rules in force");
                    }
                }
            }
        }
    });
}

#[cfg(not(unix))]
fn reload_on_sighup(_: web::Data<AppState>, _: Option<Reloader>) {}
