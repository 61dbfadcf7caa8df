//! `[listen]`: where certgate listens, and what a connection on its public listeners may
//! cost it before it has sent a request.
//!
//! Two listeners are public (a proxy or a client reaches them): `http` and `mtls`. The third,
//! `metrics`, is the operator's: it serves only the operator-only routes (`/metrics`,
//! `/readyz/details`) and nothing else, so no proxy layout can forward a client to them.

use std::net::SocketAddr;
use std::time::Duration;

use super::raw::RawListen;
use crate::settings::Checker;

/// The validated `[listen]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub http: SocketAddr,
    pub mtls: Option<SocketAddr>,
    /// The operator's listener (`/metrics`); `None` when `listen.metrics = ""`.
    pub metrics: Option<SocketAddr>,
    /// Threads serving requests.
    pub workers: usize,
    /// How long a connection on a public listener may take to send its request head.
    pub header_timeout: Duration,
    /// How long a connection on the mTLS listener may take to finish its TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Open connections on each public listener (each has its own server), all workers
    /// together.
    pub max_connections: usize,
}

impl Listen {
    /// actix-web counts connections per worker: each worker takes an equal share, rounded up.
    pub fn max_connections_per_worker(&self) -> usize {
        self.max_connections.div_ceil(self.workers.max(1))
    }
}

pub const DEFAULT_HTTP: &str = "127.0.0.1:9180";
pub const DEFAULT_METRICS: &str = "127.0.0.1:9190";
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_CONNECTIONS: i64 = 512;
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) fn listen(c: &mut Checker, raw: &RawListen) -> Listen {
    let http = socket(
        c,
        "listen.http",
        Some(raw.http.as_deref().unwrap_or(DEFAULT_HTTP)),
    )
    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9180)));
    let mtls = socket(c, "listen.mtls", raw.mtls.as_deref());
    let metrics = match raw.metrics.as_deref().map(str::trim) {
        Some("") => None,
        other => socket(c, "listen.metrics", Some(other.unwrap_or(DEFAULT_METRICS))),
    };
    if let Some(m) = metrics {
        for (key, public) in [("listen.http", Some(http)), ("listen.mtls", mtls)] {
            if public.is_some_and(|p| overlaps(p, m)) {
                c.fail(
                    &format!("listen.metrics, {key}"),
                    format!("both use port {}", m.port()),
                    "the metrics listener needs an address of its own, one no proxy forwards to (e.g. \"127.0.0.1:9190\"), or \"\" to turn it off",
                );
            }
        }
    }
    if mtls.is_some_and(|m| overlaps(http, m)) {
        c.fail(
            "listen.http, listen.mtls",
            format!("both use port {}", http.port()),
            "give the mTLS listener a port of its own (e.g. \"0.0.0.0:9443\")",
        );
    }
    let workers = workers(c, raw.workers);
    Listen {
        http,
        mtls,
        metrics,
        workers,
        header_timeout: timeout(
            c,
            "listen.header_timeout",
            raw.header_timeout.as_deref(),
            DEFAULT_HEADER_TIMEOUT,
        ),
        tls_handshake_timeout: timeout(
            c,
            "listen.tls_handshake_timeout",
            raw.tls_handshake_timeout.as_deref(),
            DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        ),
        max_connections: max_connections(c, raw.max_connections, workers),
    }
}

/// Two addresses that cannot both be bound: the same port on the same or an unspecified IP.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn socket(c: &mut Checker, key: &str, raw: Option<&str>) -> Option<SocketAddr> {
    let raw = raw?;
    match raw.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            let off = if key == "listen.metrics" {
                ", or \"\" to turn the metrics listener off"
            } else {
                ""
            };
            c.fail(
                key,
                format!("`{raw}` is not an IP address and port"),
                format!("e.g. \"127.0.0.1:9180\" or \"[::1]:9180\"{off}"),
            );
            None
        }
    }
}

/// `listen.workers`, by default half the CPUs (at least one): certgate shares the machine
/// with the proxy in front of it, and on a small one a second thread costs more CPU per
/// check than it adds (`scripts/bench.sh`).
fn workers(c: &mut Checker, raw: Option<i64>) -> usize {
    match raw {
        None => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
        Some(n @ 1..=256) => usize::try_from(n).unwrap_or(1),
        Some(n) => {
            c.fail(
                "listen.workers",
                format!("{n} is not a number of threads from 1 to 256"),
                "leave it out (half the CPUs), or e.g. 2",
            );
            1
        }
    }
}

/// A timeout from one second to five minutes: without one a client could hold a connection
/// open for ever; a very long one is the same thing slowed down.
fn timeout(c: &mut Checker, key: &str, raw: Option<&str>, default: Duration) -> Duration {
    let Some(raw) = raw else { return default };
    let hint = format!("a duration from 1s to 5m, e.g. \"{}s\"", default.as_secs());
    match humantime::parse_duration(raw.trim()) {
        Ok(d) if d >= Duration::from_secs(1) && d <= MAX_TIMEOUT => d,
        Ok(_) => {
            c.fail(key, format!("`{raw}` is out of range"), hint);
            default
        }
        Err(e) => {
            c.fail(key, format!("`{raw}` is not a duration: {e}"), hint);
            default
        }
    }
}

/// `listen.max_connections`: at least one connection per worker (each worker has its share).
fn max_connections(c: &mut Checker, raw: Option<i64>, workers: usize) -> usize {
    let n = raw.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    let least = i64::try_from(workers).unwrap_or(i64::MAX);
    match usize::try_from(n) {
        Ok(ok) if n >= least && n <= 1_000_000 => ok,
        _ => {
            c.fail(
                "listen.max_connections",
                format!("{n} is not a number of connections from {least} (one per worker) to 1000000"),
                "the open connections on listen.http and listen.mtls together; keep it below the open-file limit (ulimit -n), e.g. 512",
            );
            usize::try_from(DEFAULT_MAX_CONNECTIONS).unwrap_or(512)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: RawListen) -> (Listen, Vec<String>) {
        let mut c = Checker::default();
        let listen = listen(&mut c, &raw);
        (listen, c.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_put_metrics_on_loopback_and_bound_every_connection() {
        let (l, problems) = check(RawListen {
            workers: Some(2),
            ..RawListen::default()
        });
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(l.metrics, Some("127.0.0.1:9190".parse().unwrap()));
        assert!(l.metrics.unwrap().ip().is_loopback());
        assert_eq!(l.header_timeout, Duration::from_secs(5));
        assert_eq!(l.tls_handshake_timeout, Duration::from_secs(10));
        assert_eq!(l.max_connections, 512);
        assert_eq!(l.max_connections_per_worker(), 256);
    }

    #[test]
    fn an_empty_metrics_address_turns_the_listener_off() {
        let (l, problems) = check(RawListen {
            metrics: Some(String::new()),
            ..RawListen::default()
        });
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(l.metrics, None);
    }

    #[test]
    fn bad_values_name_their_key_and_the_fix() {
        let (_, problems) = check(RawListen {
            metrics: Some("localhost".into()),
            header_timeout: Some("0s".into()),
            tls_handshake_timeout: Some("soon".into()),
            max_connections: Some(0),
            workers: Some(1),
            ..RawListen::default()
        });
        let text = problems.join("\n");
        assert!(
            text.contains("listen.metrics: `localhost` is not an IP address and port")
                && text.contains("\"\" to turn the metrics listener off"),
            "{text}"
        );
        assert!(
            text.contains("listen.header_timeout: `0s` is out of range (a duration from 1s to 5m"),
            "{text}"
        );
        assert!(
            text.contains("listen.tls_handshake_timeout: `soon` is not a duration"),
            "{text}"
        );
        assert!(
            text.contains("listen.max_connections: 0 is not a number of connections from 1"),
            "{text}"
        );
        assert_eq!(problems.len(), 4, "{text}");
    }

    #[test]
    fn the_public_listeners_may_not_share_a_port() {
        let (_, problems) = check(RawListen {
            http: Some("127.0.0.1:9180".into()),
            mtls: Some("[::]:9180".into()),
            ..RawListen::default()
        });
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("listen.http, listen.mtls: both use port 9180")),
            "{problems:?}"
        );
    }

    #[test]
    fn metrics_may_not_share_a_public_listeners_port() {
        for (http, metrics) in [
            ("127.0.0.1:9180", "127.0.0.1:9180"),
            ("0.0.0.0:9180", "127.0.0.1:9180"),
        ] {
            let (_, problems) = check(RawListen {
                http: Some(http.into()),
                metrics: Some(metrics.into()),
                ..RawListen::default()
            });
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with("listen.metrics, listen.http: both use port 9180"),
                "{problems:?}"
            );
        }
        let (_, problems) = check(RawListen {
            http: Some("127.0.0.1:9180".into()),
            metrics: Some("127.0.0.2:9180".into()),
            ..RawListen::default()
        });
        assert!(problems.is_empty(), "{problems:?}");
    }
}
