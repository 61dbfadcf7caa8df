//! Start-up: the state built from a configuration ([`build_state`], [`with_config`] on
//! SIGHUP), the listeners and their servers, and the tasks that keep the state current.

mod listeners;
mod state;
mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::web;

use crate::config::Config;
use crate::http::{AppState, Live};
use crate::{cert, config, jwt, tls};

pub use state::{build_state, with_config};

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
    #[error("revocation: {0} (fix it; certgate does not start on unknown revocations)")]
    Revocation(String),
    #[error("database: {0}")]
    Database(String),
    #[error(
        "signing keys shared through Redis: {0} (certgate does not start on keys it cannot share)"
    )]
    SharedKeys(String),
    #[error("templates: {0}")]
    Pages(String),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("server: {0}")]
    Server(#[from] std::io::Error),
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
    tasks::reload_on_sighup(live.clone(), reload);
    tasks::follow_revocations(live.clone());
    tasks::sweep_grants(live.clone());
    tasks::deliver_logouts(live.clone());
    listeners::run(bound, &cfg, live).await
}

#[cfg(test)]
mod tests;
