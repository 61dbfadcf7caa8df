//! The canonicaliser every rule relies on (`policy::canonical`): never a panic, a canonical
//! path has no `//`, `.`, `..` or `;params` left and is its own canonical form (re-encoded
//! where it holds what was decoded), and a host is a plain lower-case name or an IPv6 address.
#![no_main]

use certgate::policy::canonical::{host, path, split_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    check_path(raw);
    check_host(raw);
    if let Some((authority, target)) = split_url(raw) {
        // The authority and target are the URL's own text, after the first `://`.
        let colon = raw.find(':').expect("split_url found a colon");
        let rest = raw[colon..].strip_prefix("://").expect("split at ://");
        assert!(!authority.contains('/'));
        assert!(target.starts_with('/'));
        let after = rest
            .strip_prefix(authority)
            .expect("the authority starts the rest");
        assert!(
            after == target || (after.is_empty() && target == "/"),
            "{raw:?}"
        );
        check_path(target);
        check_host(authority);
    }
});

fn check_path(raw: &str) {
    let Ok(out) = path(raw) else { return };
    assert!(out.starts_with('/'), "{raw:?} -> {out:?}");
    assert!(!out.contains("//"), "{raw:?} -> {out:?}");
    assert!(
        !out.split('/').any(|s| s == "." || s == ".."),
        "{raw:?} -> {out:?}"
    );
    assert!(
        !out.contains(';') && !out.contains('\\'),
        "{raw:?} -> {out:?}"
    );
    assert!(!out.chars().any(char::is_control), "{raw:?} -> {out:?}");
    // Decoded once, as the app decodes it: `%`, `?` and `#` in the output are data, so they
    // are encoded again before the second pass; then nothing changes.
    let mut again = String::with_capacity(out.len());
    for c in out.chars() {
        match c {
            '%' => again.push_str("%25"),
            '?' => again.push_str("%3F"),
            '#' => again.push_str("%23"),
            c => again.push(c),
        }
    }
    assert_eq!(path(&again).as_deref(), Ok(&*out), "{raw:?} -> {out:?}");
}

fn check_host(raw: &str) {
    let Ok(out) = host(raw) else { return };
    assert!(!out.is_empty());
    assert!(
        !out.bytes().any(|b| b.is_ascii_uppercase()),
        "{raw:?} -> {out:?}"
    );
    if out.contains(':') {
        // An IPv6 address (it came in brackets), and the same again in brackets.
        assert!(
            out.parse::<std::net::Ipv6Addr>().is_ok(),
            "{raw:?} -> {out:?}"
        );
        assert_eq!(host(&format!("[{out}]")).as_deref(), Ok(&*out), "{raw:?}");
    } else {
        let plain = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
        assert!(
            out.bytes().all(plain) && !out.ends_with('.'),
            "{raw:?} -> {out:?}"
        );
        assert_eq!(host(&out).as_deref(), Ok(&*out), "{raw:?}");
    }
}
