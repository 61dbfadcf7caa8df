//! The listeners and the servers behind them.
//!
//! - `listen.http` and `listen.mtls`, the public listeners (a proxy forwards to them, clients
//!   reach them): public and admin routes ([`http::routes::public`]), behind
//!   [`http::Front`], each on a server of its own. A connection there gets
//!   `listen.header_timeout` to send its request head and `listen.tls_handshake_timeout` to
//!   finish its TLS handshake, and at most `listen.max_connections` are open at once on each
//!   listener (each worker takes an equal share).
//! - `listen.metrics`, the operator's: operator-only routes ([`http::routes::operator`]) and
//!   nothing else, on a server of its own (one thread, its own small connection limit), so
//!   clients that fill the public listeners do not blind the monitoring.

use std::net::{SocketAddr, TcpListener};

use actix_service::IntoServiceFactory as _;
use actix_web::{web, App, HttpServer};

use super::StartError;
use crate::config::Config;
use crate::http::{self, Live};
use crate::tls;

/// Connections the metrics listener holds at once: a scraper or two, and an operator's curl.
const METRICS_MAX_CONNECTIONS: usize = 16;

/// The sockets, bound before anything is served, so a taken address stops the start.
pub struct Bound {
    http: TcpListener,
    mtls: Option<(TcpListener, rustls::ServerConfig)>,
    metrics: Option<TcpListener>,
}

/// Keepalive probes on every accepted connection (Linux copies them from the listener): an
/// idle connection whose peer went away (a proxy host switched off) is closed after about
/// 90 s of silence, as no timer of ours closes an idle proxy connection.
fn keepalive() -> socket2::TcpKeepalive {
    let probes = socket2::TcpKeepalive::new()
        .with_time(std::time::Duration::from_secs(60))
        .with_interval(std::time::Duration::from_secs(10));
    #[cfg(target_os = "linux")]
    let probes = probes.with_retries(3);
    probes
}

fn bind(key: &'static str, env: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    let error = |source| StartError::Bind {
        key,
        env,
        addr,
        source,
    };
    let listener = TcpListener::bind(addr).map_err(error)?;
    socket2::SockRef::from(&listener)
        .set_tcp_keepalive(&keepalive())
        .map_err(error)?;
    Ok(listener)
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
            tls::server_config(tls, &cfg.client_ca.bundle)?,
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

/// One public listener's server: public and admin routes behind [`http::Front`], with the
/// `[listen]` limits. Each public listener has a server, and so a connection budget, of its
/// own: clients filling the mTLS listener cannot take the proxy's forward-auth connections.
fn public_server(
    cfg: &Config,
    live: &web::Data<Live>,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
) -> Result<actix_web::dev::Server, StartError> {
    let listen = cfg.listen;
    let live = live.clone();
    let server = HttpServer::new(move || {
        let app = App::new()
            .app_data(live.clone())
            .app_data(web::PayloadConfig::new(16 * 1024))
            .configure(http::routes::public);
        http::Front::new(app.into_factory(), live.clone())
    })
    .on_connect(tls::capture_connection)
    .workers(listen.workers)
    .max_connections(listen.max_connections_per_worker())
    .client_request_timeout(listen.header_timeout)
    // No keep-alive timer: only a `proxy.trusted` peer keeps a connection past one request
    // (see `http::Front`), and it closes idle ones itself (nginx after 60 s, Traefik 90 s,
    // Caddy 2 min); the kernel's keepalive probes (set on the listener, `bind`) find a proxy
    // host that vanished. actix-web's 5 s timer cost a timer set and cleared on every check,
    // about 2% of a check's CPU (`scripts/bench.sh`).
    .keep_alive(actix_web::http::KeepAlive::Os)
    .tls_handshake_timeout(listen.tls_handshake_timeout)
    .shutdown_timeout(10)
    // SIGINT/SIGTERM stop every server at once (see `run`).
    .disable_signals();
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

/// The metrics listener's server: operator-only routes, one thread, its own small connection
/// limit.
fn metrics_server(
    cfg: &Config,
    live: web::Data<Live>,
    listener: TcpListener,
) -> Result<actix_web::dev::Server, StartError> {
    let server = HttpServer::new(move || {
        let app = App::new()
            .app_data(live.clone())
            .configure(http::routes::operator);
        http::Front::operator(app.into_factory(), live.clone())
    })
    .workers(1)
    .max_connections(METRICS_MAX_CONNECTIONS)
    .client_request_timeout(cfg.listen.header_timeout)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// Serves on the bound listeners until SIGINT/SIGTERM, then lets the requests in flight on
/// both public listeners finish (up to 10 s) and stops the metrics listener last.
///
/// # Errors
/// When a server fails.
pub async fn run(bound: Bound, cfg: &Config, live: web::Data<Live>) -> Result<(), StartError> {
    let listen = cfg.listen;
    let plain = public_server(cfg, &live, bound.http, None)?;
    tracing::info!(addr = %listen.http, "forward-auth listener (plain HTTP) ready");
    let mtls = match bound.mtls {
        Some((listener, tls_config)) => {
            let addr = listener.local_addr()?;
            let server = public_server(cfg, &live, listener, Some(tls_config))?;
            tracing::info!(%addr, "mTLS listener ready");
            Some(server)
        }
        None => None,
    };
    tracing::info!(
        max_connections = listen.max_connections,
        per_worker = listen.max_connections_per_worker(),
        header_timeout = ?listen.header_timeout,
        tls_handshake_timeout = ?listen.tls_handshake_timeout,
        "connection limits of each public listener"
    );
    let metrics = match bound.metrics {
        Some(listener) => {
            let addr = listener.local_addr()?;
            let server = metrics_server(cfg, live, listener)?;
            tracing::info!(%addr, "metrics listener ready (operator-only: /metrics, /readyz/details)");
            Some(server)
        }
        None => {
            tracing::info!("no metrics listener (listen.metrics is \"\")");
            None
        }
    };
    let handles: Vec<_> = [Some(&plain), mtls.as_ref()]
        .into_iter()
        .flatten()
        .map(actix_web::dev::Server::handle)
        .collect();
    actix_web::rt::spawn(async move {
        stop_signal().await;
        tracing::info!("stopping: finishing the requests in flight");
        futures_util::future::join_all(handles.iter().map(|h| h.stop(true))).await;
    });
    let metrics_handle = metrics.as_ref().map(actix_web::dev::Server::handle);
    if let Some(metrics) = metrics {
        actix_web::rt::spawn(async move {
            if let Err(e) = metrics.await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    let mtls = async move {
        match mtls {
            Some(server) => server.await,
            None => Ok(()),
        }
    };
    let (plain, mtls) = futures_util::future::join(plain, mtls).await;
    if let Some(handle) = metrics_handle {
        handle.stop(false).await;
    }
    plain?;
    Ok(mtls?)
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                futures_util::future::select(Box::pin(term.recv()), Box::pin(int.recv())).await;
            }
            _ => {
                tracing::warn!("cannot listen for SIGTERM/SIGINT; stop certgate with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// No timer of ours closes an idle proxy connection: the kernel's probes must be on every
    /// accepted connection, or a vanished proxy host's connections would stay for ever.
    #[test]
    fn accepted_connections_carry_the_listeners_keepalive_probes() {
        let addr = "127.0.0.1:0".parse().unwrap();
        let listener = super::bind("listen.http", "CERTGATE__LISTEN__HTTP", addr).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let socket = socket2::SockRef::from(&accepted);
        assert!(socket.keepalive().unwrap());
        assert_eq!(
            socket.tcp_keepalive_time().unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 3);
    }
}
