use super::*;
use actix_web::test::TestRequest;

#[test]
fn every_value_of_our_cookie_is_found_and_nothing_else() {
    let req = TestRequest::default()
        .append_header((header::COOKIE, "a=1; __Host-cg=one;theme=dark"))
        .append_header((
            header::COOKIE,
            " __Host-cg=\"two\" ;__Host-cgx=no; x__Host-cg=no",
        ))
        .append_header((header::COOKIE, "__Host-cg=; __Host-cg"))
        .to_http_request();
    let found: Vec<&str> = session_cookies(&req, "__Host-cg").collect();
    assert_eq!(found, ["one", "two", ""]);
    let none = TestRequest::default().to_http_request();
    assert_eq!(session_cookies(&none, "__Host-cg").count(), 0);
}

#[test]
fn a_cookie_value_that_is_not_utf8_is_skipped() {
    let value = HeaderValue::from_bytes(b"__Host-cg=\xff\xfe; __Host-cg=ok").unwrap();
    let req = TestRequest::default()
        .append_header((header::COOKIE, value))
        .to_http_request();
    assert_eq!(
        session_cookies(&req, "__Host-cg").collect::<Vec<_>>(),
        ["ok"]
    );
}

fn forwarded(values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(X_FORWARDED_FOR, HeaderValue::from_bytes(v).unwrap());
    }
    h
}

#[test]
fn the_client_is_the_last_forwarded_entry_or_unknown() {
    let peer: Option<IpAddr> = "127.0.0.1".parse().ok();
    let ip = |s: &str| s.parse::<IpAddr>().ok();
    for (values, want) in [
        (&[][..], peer),
        (&[&b"203.0.113.9"[..]][..], ip("203.0.113.9")),
        (
            &[&b"198.51.100.1, 203.0.113.9 ,"[..]][..],
            ip("203.0.113.9"),
        ),
        (
            &[&b"198.51.100.1"[..], &b" ,, "[..]][..],
            ip("198.51.100.1"),
        ),
        (
            &[&b"198.51.100.1"[..], &b"2001:db8::1"[..]][..],
            ip("2001:db8::1"),
        ),
        // A client's own junk before the entry its proxy appended does not matter (before,
        // a non-ASCII byte made the whole header count as absent: the proxy's address).
        (&[&b"\xff, 203.0.113.9"[..]][..], ip("203.0.113.9")),
        // Not an address: unknown, never the proxy's own address.
        (&[&b"198.51.100.1, unknown"[..]][..], None),
        (&[&b"203.0.113.9\xff"[..]][..], None),
    ] {
        assert_eq!(
            client_addr(peer, true, &forwarded(values)),
            want,
            "{values:?}"
        );
        assert_eq!(client_addr(peer, false, &forwarded(values)), peer);
    }
}

fn forwarded_for(xff: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        HeaderName::from_static("x-forwarded-for"),
        HeaderValue::from_str(xff).unwrap(),
    );
    h
}

#[test]
fn x_forwarded_for_from_an_untrusted_peer_is_never_the_client() {
    // 10.x stands for the inside network a rule may allow, 203.0.113.9 for outside.
    const TEN: &str = "10.1.2.3";
    const OUT: &str = "203.0.113.9";
    let ip = |s: &str| s.parse::<IpAddr>().ok();
    // An untrusted peer's header is ignored: the peer is the client.
    assert_eq!(client_addr(ip(OUT), false, &forwarded_for(TEN)), ip(OUT));
    // From a trusted proxy, the last entry is the client it saw.
    let trusted = client_addr(
        ip("127.0.0.1"),
        true,
        &forwarded_for(&format!("{OUT}, {TEN}")),
    );
    assert_eq!(trusted, ip(TEN));
    // Nor does junk a client put before the entry its proxy (here on the inside network)
    // appended: before, a non-ASCII byte made certgate ignore the header and judge the proxy's
    // own address, which an inside-network rule allowed.
    let junk = client_addr(ip(TEN), true, &forwarded_for(&format!("ÿ, {OUT}")));
    assert_eq!(junk, ip(OUT));
    // A client-prepended entry does not help.
    let spoofed = client_addr(
        ip("127.0.0.1"),
        true,
        &forwarded_for(&format!("{TEN}, {OUT}")),
    );
    assert_eq!(spoofed, ip(OUT));
}
