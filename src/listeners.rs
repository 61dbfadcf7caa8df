//! The listeners and the servers behind them.
//!
//! - `listen.http` and `listen.mtls`, the public listeners (a proxy forwards to them, clients
//!   reach them): public and admin routes ([`http::routes::public`]), behind
//!   [`http::Front`]. A connection there gets `listen.header_timeout` to send its request
//!   head and `listen.tls_handshake_timeout` to finish its TLS handshake, and at most
//!   `listen.max_connections` are open at once (each worker takes an equal share).
//! - `listen.metrics`, the operator's: operator-only routes ([`http::routes::operator`]) and
//!   nothing else, on a server of its own (one thread, its own small connection limit), so
//!   clients that fill the public listeners do not blind the monitoring.

use std::net::{SocketAddr, TcpListener};

use actix_service::IntoServiceFactory as _;
use actix_web::{web, App, HttpServer};

use crate::config::Config;
use crate::http::{self, Live};
use crate::{tls, StartError};

/// Connections the metrics listener holds at once: a scraper or two, and an operator's curl.
const METRICS_MAX_CONNECTIONS: usize = 16;

/// The sockets, bound before anything is served, so a taken address stops the start.
pub struct Bound {
    http: TcpListener,
    mtls: Option<(TcpListener, rustls::ServerConfig)>,
    metrics: Option<TcpListener>,
}

fn bind(key: &'static str, env: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Bind {
        key,
        env,
        addr,
        source,
    })
}

/// Binds every configured listener.
///
/// # Errors
/// [`StartError::Bind`] naming the key and its environment variable; TLS set-up errors.
pub fn bind_all(cfg: &Config) -> Result<Bound, StartError> {
    let http = bind("listen.http", "CERTGATE__LISTEN__HTTP", cfg.listen.http)?;
    let mtls = match (cfg.listen.mtls, &cfg.tls) {
        (Some(addr), Some(tls)) => Some((
            bind("listen.mtls", "CERTGATE__LISTEN__MTLS", addr)?,
            tls::server_config(tls, &cfg.client_ca)?,
        )),
        _ => None,
    };
    let metrics = cfg
        .listen
        .metrics
        .map(|addr| bind("listen.metrics", "CERTGATE__LISTEN__METRICS", addr))
        .transpose()?;
    Ok(Bound {
        http,
        mtls,
        metrics,
    })
}

/// Serves on the bound listeners until SIGINT/SIGTERM.
///
/// # Errors
/// When a server fails.
pub async fn run(bound: Bound, cfg: &Config, live: web::Data<Live>) -> Result<(), StartError> {
    let listen = cfg.listen;
    let public_live = live.clone();
    let mut public = HttpServer::new(move || {
        let app = App::new()
            .app_data(public_live.clone())
            .app_data(web::PayloadConfig::new(16 * 1024))
            .configure(http::routes::public);
        http::Front::new(app.into_factory(), public_live.clone())
    })
    .on_connect(tls::capture_connection)
    .workers(listen.workers)
    .max_connections(listen.max_connections_per_worker())
    .client_request_timeout(listen.header_timeout)
    .tls_handshake_timeout(listen.tls_handshake_timeout)
    .shutdown_timeout(10)
    .listen(bound.http)?;
    tracing::info!(addr = %listen.http, "forward-auth listener (plain HTTP) ready");
    if let Some((listener, tls_config)) = bound.mtls {
        let addr = listener.local_addr()?;
        public = public.listen_rustls_0_23(listener, tls_config)?;
        tracing::info!(%addr, "mTLS listener ready");
    }
    tracing::info!(
        max_connections = listen.max_connections,
        per_worker = listen.max_connections_per_worker(),
        header_timeout = ?listen.header_timeout,
        tls_handshake_timeout = ?listen.tls_handshake_timeout,
        "connection limits of the public listeners"
    );
    let public = public.run();
    let Some(listener) = bound.metrics else {
        tracing::info!("no metrics listener (listen.metrics is \"\")");
        public.await?;
        return Ok(());
    };
    let addr = listener.local_addr()?;
    let metrics = HttpServer::new(move || {
        let app = App::new()
            .app_data(live.clone())
            .configure(http::routes::operator);
        http::Front::operator(app.into_factory(), live.clone())
    })
    .workers(1)
    .max_connections(METRICS_MAX_CONNECTIONS)
    .client_request_timeout(listen.header_timeout)
    // The public server handles SIGTERM and drains; this one stops when it is done. (On a
    // signal actix-server stops the whole actix System once its server is down: a metrics
    // server that stopped first would cut the public requests in flight.)
    .disable_signals()
    .listen(listener)?
    .run();
    tracing::info!(%addr, "metrics listener ready (operator-only: /metrics, /readyz/details)");
    let metrics_handle = metrics.handle();
    actix_web::rt::spawn(async move {
        if let Err(e) = metrics.await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    let served = public.await;
    metrics_handle.stop(false).await;
    Ok(served?)
}
