//! Slow and hostile clients on the public listeners: connections that never finish their
//! request head or their TLS handshake are closed by certgate after `listen.header_timeout` /
//! `listen.tls_handshake_timeout`, real checks are answered meanwhile, and no more than
//! `listen.max_connections` are open at once. Loopback only; every wait is bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::direct::{setup_env, Setup, LOOPBACK};
use crate::harness::curl::Curl;
use crate::harness::{require, Restarting};

/// How long past its timeout certgate may take to close a connection: generous, because a
/// busy machine is slow; never a measure of speed.
const MARGIN: Duration = Duration::from_secs(10);

/// A connection that sent `prefix` and then nothing, opened at `opened`.
struct Stalled {
    stream: Restarting<TcpStream>,
    opened: Instant,
}

fn stall(port: u16, prefix: &[u8]) -> Stalled {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut stream = Restarting(stream);
    stream.write_all(prefix).unwrap();
    Stalled {
        stream,
        opened: Instant::now(),
    }
}

impl Stalled {
    /// Reads until certgate closes the connection (EOF or reset) or `timeout + MARGIN` after
    /// it was opened; what certgate sent before closing, or `None` if it never closed.
    fn closed_by_certgate(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = self.opened + timeout + MARGIN;
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.0.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return Some(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                Err(e) => panic!("reading a stalled connection: {e}"),
            }
        }
    }
}

/// A request line and some headers, never the blank line that ends them.
const PARTIAL_HEAD: &[u8] = b"GET /verify HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

fn with_listen(env: &[(&str, &str)]) -> Setup {
    setup_env(LOOPBACK, "", env)
}

fn verify(s: &Setup, header: Option<&str>) -> u16 {
    let mut c = Curl::new(s.dir.path())
        .arg("--max-time")
        .arg("10")
        .header("X-Original-URL: https://app.example.test/");
    if let Some(h) = header {
        c = c.header(h);
    }
    c.get(&s.cg.http("/verify")).status
}

#[test]
fn stalled_request_heads_are_closed_after_the_header_timeout_and_checks_still_answer() {
    if !require("curl") {
        return;
    }
    let timeout = Duration::from_secs(2);
    let s = with_listen(&[("CERTGATE__LISTEN__HEADER_TIMEOUT", "2s")]);
    let bearer = format!("Authorization: Bearer {}", s.bearer());
    let mut stalled: Vec<Stalled> = (0..150)
        .map(|_| stall(s.cg.http_port, PARTIAL_HEAD))
        .collect();

    // 150 stalled clients later, real checks are answered: no credentials 401, a token 200.
    assert_eq!(verify(&s, None), 401);
    assert_eq!(verify(&s, Some(&bearer)), 200);

    for (i, conn) in stalled.iter_mut().enumerate() {
        let sent = conn.closed_by_certgate(timeout).unwrap_or_else(|| {
            panic!("stalled connection {i} still open {MARGIN:?} past the header timeout")
        });
        let text = String::from_utf8_lossy(&sent);
        assert!(
            sent.is_empty() || text.starts_with("HTTP/1.1 408"),
            "connection {i}: {text}"
        );
    }
    assert_eq!(verify(&s, Some(&bearer)), 200, "and after they are gone");
}

#[test]
fn stalled_tls_handshakes_are_closed_after_the_handshake_timeout_and_sign_in_still_works() {
    if !require("curl") {
        return;
    }
    let timeout = Duration::from_secs(2);
    let s = with_listen(&[("CERTGATE__LISTEN__TLS_HANDSHAKE_TIMEOUT", "2s")]);
    let port = s.cg.mtls_port.unwrap();
    // Silent after the TCP handshake, or a TLS record header that promises a ClientHello.
    let mut stalled: Vec<Stalled> = (0..8)
        .map(|i| {
            let prefix: &[u8] = if i % 2 == 0 {
                b""
            } else {
                b"\x16\x03\x01\x02\x00"
            };
            stall(port, prefix)
        })
        .collect();

    let signed_in = s
        .as_alice()
        .arg("--max-time")
        .arg("10")
        .get(&s.cg.mtls("/auth"));
    assert_eq!(signed_in.status, 200, "{signed_in:?}");

    for (i, conn) in stalled.iter_mut().enumerate() {
        assert!(
            conn.closed_by_certgate(timeout).is_some(),
            "stalled handshake {i} still open {MARGIN:?} past the TLS handshake timeout"
        );
    }
}

/// At `listen.max_connections`, certgate accepts no more connections until one closes; the
/// metrics listener and the other public listener, servers of their own, still answer.
#[test]
fn no_more_than_max_connections_are_served_at_once() {
    if !require("curl") {
        return;
    }
    let s = with_listen(&[
        ("CERTGATE__LISTEN__MAX_CONNECTIONS", "6"),
        ("CERTGATE__LISTEN__WORKERS", "2"),
        // Long enough that the held connections outlive the test's waits.
        ("CERTGATE__LISTEN__HEADER_TIMEOUT", "60s"),
        ("CERTGATE__LISTEN__TLS_HANDSHAKE_TIMEOUT", "60s"),
    ]);
    let healthz = |max_time: &str| {
        Curl::new(s.dir.path())
            .arg("--max-time")
            .arg(max_time)
            .try_get(&s.cg.http("/healthz"))
    };
    assert_eq!(healthz("10").unwrap().status, 200);

    // Each public listener has its own budget: six stalled on the plain one hold it full.
    let mtls = s.cg.mtls_port.unwrap();
    let mut held: Vec<Stalled> = (0..6)
        .map(|_| stall(s.cg.http_port, PARTIAL_HEAD))
        .collect();
    let refused = healthz("2");
    assert!(
        refused.is_err(),
        "a 7th connection was served while 6 were open: {refused:?}"
    );
    let metrics = Curl::new(s.dir.path()).get(&s.cg.metrics("/metrics"));
    assert_eq!(metrics.status, 200, "the metrics listener is not counted");
    let auth = s.as_alice().get(&s.cg.mtls("/auth"));
    assert_eq!(
        auth.status, 200,
        "the mTLS listener is not counted: {auth:?}"
    );

    // One closes: the next connection is served again.
    drop(held.pop());
    let served = healthz("10");
    assert_eq!(served.map(|r| r.status).ok(), Some(200));
    drop(held);

    // Clients filling the mTLS listener leave the proxy's listener alone.
    let held: Vec<Stalled> = (0..6).map(|_| stall(mtls, b"")).collect();
    let served = healthz("10");
    assert_eq!(
        served.map(|r| r.status).ok(),
        Some(200),
        "the plain listener"
    );
    drop(held);
}

/// Reads one HTTP/1.1 answer without a body length guess: until the blank line, then
/// `content-length` bytes. Lower-cased head, body.
fn read_answer(conn: &mut Stalled) -> (String, Vec<u8>) {
    conn.stream.0.set_read_timeout(Some(MARGIN)).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(conn.stream.read(&mut byte).unwrap(), 1, "{got:?}");
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    conn.stream.read_exact(&mut body).unwrap();
    (head, body)
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// actix-web times only the first request head of a connection. So a client that is not a
/// trusted proxy gets one request per connection: it cannot send a whole request and then
/// stall in the next one. A trusted proxy keeps its connection alive (nginx's keepalive).
#[test]
fn only_a_trusted_proxy_keeps_its_connection_for_a_second_request() {
    if !require("curl") {
        return;
    }
    let timeout = Duration::from_secs(2);
    // Nobody on loopback is trusted here.
    let s = setup_env(
        r#"["10.0.0.0/8"]"#,
        "",
        &[("CERTGATE__LISTEN__HEADER_TIMEOUT", "2s")],
    );
    let mut conn = stall(s.cg.http_port, HEALTHZ);
    let (head, _) = read_answer(&mut conn);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    // Whatever it sends next, the connection is over.
    let _ = conn.stream.write_all(PARTIAL_HEAD);
    conn.opened = Instant::now();
    assert_eq!(
        conn.closed_by_certgate(timeout).as_deref(),
        Some(&b""[..]),
        "a second request on an untrusted connection"
    );
    // On the mTLS listener every peer is an end client.
    let r = s
        .as_alice()
        .header("Connection: keep-alive")
        .get(&s.cg.mtls("/auth"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");

    // A trusted proxy: two requests on one connection.
    let s = with_listen(&[("CERTGATE__LISTEN__HEADER_TIMEOUT", "2s")]);
    let mut conn = stall(s.cg.http_port, HEALTHZ);
    let (first, _) = read_answer(&mut conn);
    assert!(!first.contains("connection: close"), "{first}");
    conn.stream.write_all(HEALTHZ).unwrap();
    let (second, body) = read_answer(&mut conn);
    assert!(second.starts_with("http/1.1 200"), "{second}");
    assert_eq!(body, b"ok\n");
    // Idle past actix-web's 5 s keep-alive timer: the proxy closes idle connections itself
    // (nginx after 60 s), so certgate never closes one the proxy is about to reuse.
    std::thread::sleep(Duration::from_secs(6));
    conn.stream.write_all(HEALTHZ).unwrap();
    let (third, _) = read_answer(&mut conn);
    assert!(third.starts_with("http/1.1 200"), "{third}");
}

/// actix-web does not time request bodies: a body must arrive within the header timeout of
/// its head, or the request fails and the connection is closed (from a trusted proxy too).
#[test]
fn a_stalled_request_body_is_closed_after_the_header_timeout() {
    if !require("curl") {
        return;
    }
    let timeout = Duration::from_secs(2);
    let s = with_listen(&[("CERTGATE__LISTEN__HEADER_TIMEOUT", "2s")]);
    let mut stalled: Vec<Stalled> = ["/token", "/logout", "/admin/revoke", "/enroll/x"]
        .iter()
        .map(|path| {
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nscope=a"
            );
            stall(s.cg.http_port, head.as_bytes())
        })
        .collect();
    for (i, conn) in stalled.iter_mut().enumerate() {
        let sent = conn.closed_by_certgate(timeout).unwrap_or_else(|| {
            panic!("stalled body {i} still open {MARGIN:?} past the header timeout")
        });
        let text = String::from_utf8_lossy(&sent);
        assert!(
            sent.is_empty() || !text.starts_with("HTTP/1.1 2"),
            "body {i}: {text}"
        );
    }
    let r = s.as_alice().post(&s.cg.mtls("/token"), "");
    assert_eq!(r.status, 200, "whole bodies still work: {r:?}");
}

/// A chunked body that never comes, on a route that does not read it (`/verify`, `/healthz`,
/// an unknown path) or does (`/token`): actix-http would read on for ever without a timer, so
/// one client could hold every connection slot. certgate answers and closes the connection.
#[test]
fn a_silent_chunked_body_does_not_hold_its_connection() {
    if !require("curl") {
        return;
    }
    let timeout = Duration::from_secs(2);
    for trusted in [LOOPBACK, r#"["10.0.0.0/8"]"#] {
        let s = setup_env(trusted, "", &[("CERTGATE__LISTEN__HEADER_TIMEOUT", "2s")]);
        for (method, path) in [
            ("GET", "/verify"),
            ("GET", "/healthz"),
            ("GET", "/no-such-route"),
            ("POST", "/token"),
        ] {
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            let mut conn = stall(s.cg.http_port, head.as_bytes());
            assert!(
                conn.closed_by_certgate(timeout).is_some(),
                "{method} {path} (trusted {trusted}): still open {MARGIN:?} past the header timeout"
            );
        }
        assert_eq!(verify(&s, None), 401, "checks still answer");
    }
}

/// The metrics listener has few connections (so a full public side leaves it up): one request
/// per connection, and no silent body holds one.
#[test]
fn idle_connections_cannot_blind_the_metrics_listener() {
    if !require("curl") {
        return;
    }
    let timeout = Duration::from_secs(2);
    let s = with_listen(&[("CERTGATE__LISTEN__HEADER_TIMEOUT", "2s")]);
    let port = s.cg.metrics_port;
    let mut chunked = stall(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert!(
        chunked.closed_by_certgate(timeout).is_some(),
        "a silent chunked body"
    );
    let mut conn = stall(port, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let (head, body) = read_answer(&mut conn);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("certgate_"));
    let _ = conn.stream.write_all(b"G");
    conn.opened = Instant::now();
    assert!(
        conn.closed_by_certgate(timeout).is_some(),
        "a second request"
    );
}
