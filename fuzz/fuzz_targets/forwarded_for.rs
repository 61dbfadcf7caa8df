//! The client address behind a proxy (`http::extract::client_addr`, X-Forwarded-For) on
//! arbitrary header values: never a panic; an untrusted peer's headers never count; behind a
//! trusted proxy the client is what the last non-empty entry says, or unknown when that is not
//! an address: junk before or in it never makes the proxy's own address the client.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use certgate::http::extract::client_addr;
use libfuzzer_sys::fuzz_target;

const PEERS: [Option<IpAddr>; 3] = [
    None,
    Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
];

/// The last non-empty, trimmed, comma-separated entry over all values, written plainly.
fn last_entry(values: &[&[u8]]) -> Option<Vec<u8>> {
    values
        .iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|e| e.trim_ascii())
        .filter(|e| !e.is_empty())
        .last()
        .map(<[u8]>::to_vec)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let trusted = flags & 1 == 1;
    let peer = PEERS[usize::from(flags >> 1) % PEERS.len()];
    // One header value per line; values a client cannot send are left out.
    let name = HeaderName::from_static("x-forwarded-for");
    let mut headers = HeaderMap::new();
    let mut sent: Vec<&[u8]> = Vec::new();
    for line in rest.split(|&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(name.clone(), value);
            sent.push(line);
        }
    }
    let client = client_addr(peer, trusted, &headers);
    if !trusted {
        assert_eq!(client, peer);
        return;
    }
    let want = match last_entry(&sent) {
        None => peer,
        Some(entry) => std::str::from_utf8(&entry)
            .ok()
            .and_then(|s| s.parse().ok()),
    };
    assert_eq!(client, want, "{sent:?}");
});
