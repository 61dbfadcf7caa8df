//! One canonical form of the request before any rule looks at it (DESIGN.md §5), so that
//! `//admin`, `/./admin`, `/x/../admin`, `%2e%2e`, `..;/` and `App.Example.COM.` are judged
//! as what the app will see, never as something else.

use std::borrow::Cow;

/// Why a URL cannot be judged; answered with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("the path contains an encoded slash or backslash")]
    EncodedSlash,
    #[error("the path contains a NUL or control character")]
    ControlCharacter,
    #[error("the path is not valid UTF-8 once decoded")]
    InvalidUtf8,
    #[error("the path contains a backslash")]
    Backslash,
    #[error("the URL has no host")]
    NoHost,
    #[error("the host is not a plain host name with an optional port")]
    BadHost,
    #[error("the path contains a . or .. segment (browsers never send one; apps resolve them differently)")]
    DotSegment,
    #[error("the request target does not start with /")]
    NotAbsolutePath,
}

/// The original URL a proxy sent, as `scheme://authority/target` as written, without the URL
/// parser's own normalisation (`/verify` and `certgate explain` split it alike). The authority
/// runs to the first `/`; whatever it holds is judged by [`host`], which refuses `@`, `?`, `#`
/// and the like rather than guessing what the proxy served.
pub fn split_url(url: &str) -> Option<(&str, &str)> {
    // The scheme holds no `:`, so the first one starts `://`.
    let rest = url[memchr::memchr(b':', url.as_bytes())?..].strip_prefix("://")?;
    let end = memchr::memchr(b'/', rest.as_bytes()).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    Some((authority, if target.is_empty() { "/" } else { target }))
}

/// Lower-case, without the trailing dot or any port (rules match host names, not ports).
/// Only a plain name (`[a-z0-9.-]`) or a bracketed IPv6 address, with an optional `:port`, is
/// accepted: anything else (`@`, `?`, `#`, spaces) could make certgate judge another host or
/// path than the one the proxy serves. Borrowed when already lower-case (every check asks).
pub fn host(raw: &str) -> Result<Cow<'_, str>, CanonicalError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(CanonicalError::NoHost);
    }
    let (name, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(CanonicalError::BadHost)?;
        // Brackets hold an IPv6 address, nothing else: `[app.example.com]` must not be judged
        // as `app.example.com` by rules while the proxy serves whatever it makes of it.
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(CanonicalError::BadHost);
        }
        if !after.is_empty() && !after.starts_with(':') {
            return Err(CanonicalError::BadHost);
        }
        return check_port(after.strip_prefix(':')).map(|()| lower(v6));
    } else {
        match memchr::memchr(b':', raw.as_bytes()) {
            Some(colon) => (&raw[..colon], Some(&raw[colon + 1..])),
            None => (raw, None),
        }
    };
    check_port(port)?;
    let name = name.trim_end_matches('.');
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
    if name.is_empty() || !name.bytes().all(plain) {
        return Err(CanonicalError::BadHost);
    }
    Ok(lower(name))
}

/// ASCII lower case (host names, certificate serials), borrowed when already lower case: most
/// are, and each check asks.
pub fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// A method as the rules name it, in upper case (methods are case-sensitive, RFC 9110, but the
/// standard ones already are upper case, so they are borrowed).
pub fn upper(method: &str) -> Cow<'_, str> {
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(method.to_ascii_uppercase())
    } else {
        Cow::Borrowed(method)
    }
}

fn check_port(port: Option<&str>) -> Result<(), CanonicalError> {
    match port {
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
            Err(CanonicalError::BadHost)
        }
        _ => Ok(()),
    }
}

/// The path of a request target: query and fragment dropped, percent-decoded once, `;params`
/// removed from each segment, `//`, `.` and `..` resolved. Never climbs above `/`.
/// Borrowed when the path is already canonical (most requests).
pub fn path(target: &str) -> Result<Cow<'_, str>, CanonicalError> {
    let end = memchr::memchr2(b'?', b'#', target.as_bytes()).unwrap_or(target.len());
    let raw = &target[..end];
    if is_plain(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    resolve(raw).map(Cow::Owned)
}

/// A path that is already canonical, found in one pass (most requests): absolute, only
/// unreserved characters and `/`, no `//`, and no segment starting with a dot (so no `.` or
/// `..`). Nothing in it to decode, drop or resolve, so [`resolve`] would return it unchanged
/// (tested).
fn is_plain(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.first() == Some(&b'/')
        && b.iter().zip(&b[1..]).all(|(&prev, &next)| {
            (next.is_ascii_alphanumeric() || matches!(next, b'-' | b'_' | b'~'))
                || (next == b'.' && prev != b'/')
                || (next == b'/' && prev != b'/')
        })
}

/// [`path`] the long way, for a target without query or fragment.
fn resolve(raw: &str) -> Result<String, CanonicalError> {
    if !raw.is_empty() && !raw.starts_with('/') {
        return Err(CanonicalError::NotAbsolutePath);
    }
    let encoded_slash = raw.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'f') | (b'5', b'c')
            )
    });
    if encoded_slash {
        return Err(CanonicalError::EncodedSlash);
    }
    // Borrowed when nothing is encoded: the common case costs no copy.
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| CanonicalError::InvalidUtf8)?;
    if decoded.chars().any(char::is_control) {
        return Err(CanonicalError::ControlCharacter);
    }
    if decoded.contains('\\') {
        return Err(CanonicalError::Backslash);
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for segment in decoded.split('/') {
        // Matrix parameters (`admin;x=1`) are dropped: some servers ignore them.
        let segment = segment.split(';').next().unwrap_or_default();
        match segment {
            "" => {}
            // Apps disagree on how `..` meets `;` or empty segments: judge none of them.
            "." | ".." => return Err(CanonicalError::DotSegment),
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    // `/` alone, or a trailing slash kept (`/a/b/`).
    if out.is_empty() || decoded.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_judged_in_upper_case() {
        assert_eq!(upper("get"), "GET");
        assert_eq!(upper("Propfind"), "PROPFIND");
        assert!(matches!(upper("DELETE"), Cow::Borrowed("DELETE")));
    }

    #[test]
    fn the_original_url_splits_at_its_scheme_and_first_slash() {
        assert_eq!(
            split_url("https://app.example.com:8443/a/b?c=d"),
            Some(("app.example.com:8443", "/a/b?c=d"))
        );
        assert_eq!(
            split_url("http://app.example.com"),
            Some(("app.example.com", "/"))
        );
        // Judged by host() later, which refuses it.
        assert_eq!(split_url("https://u@evil/x"), Some(("u@evil", "/x")));
        // No scheme, or a `:` before `://`: not a URL a proxy sends; host and path unknown.
        for odd in [
            "app.example.com/x",
            "a:b://app.example.com/x",
            "",
            "https:/x",
        ] {
            assert_eq!(split_url(odd), None, "{odd}");
        }
    }

    #[test]
    fn paths_are_normalised_once() {
        for (raw, want) in [
            ("/admin", "/admin"),
            ("//admin", "/admin"),
            ("/admin;jsessionid=1", "/admin"),
            ("/admin?x=/public", "/admin"),
            ("/admin#/public", "/admin"),
            ("/a.b/..c/.d", "/a.b/..c/.d"),
            ("/a/b/", "/a/b/"),
            ("/", "/"),
            ("", "/"),
            ("/caf%C3%A9", "/café"),
        ] {
            assert_eq!(path(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn unjudgeable_paths_are_errors() {
        assert_eq!(path("/admin%2Fx"), Err(CanonicalError::EncodedSlash));
        assert_eq!(path("/admin%2fx"), Err(CanonicalError::EncodedSlash));
        assert_eq!(path("/a%5cb"), Err(CanonicalError::EncodedSlash));
        assert_eq!(path("/a%00b"), Err(CanonicalError::ControlCharacter));
        assert_eq!(path("/a%0ab"), Err(CanonicalError::ControlCharacter));
        assert_eq!(path("/a%ffb"), Err(CanonicalError::InvalidUtf8));
        assert_eq!(path("/a\\\\b"), Err(CanonicalError::Backslash));
        for dots in [
            "/./admin",
            "/x/../admin",
            "/%2e%2e/admin",
            "/%2E/admin",
            "/public/..;/admin",
            "/admin/;/../x",
            "/admin//../x",
            "/a/.;x/b",
            "/..",
        ] {
            assert_eq!(path(dots), Err(CanonicalError::DotSegment), "{dots}");
        }
        assert_eq!(path("admin"), Err(CanonicalError::NotAbsolutePath));
        assert_eq!(path("@evil/x"), Err(CanonicalError::NotAbsolutePath));
    }

    #[test]
    fn plain_paths_are_exactly_those_the_long_way_leaves_unchanged() {
        for plain in ["/", "/index.html", "/a/b/", "/a.b/c..d/e~_-9", "/x."] {
            assert!(is_plain(plain), "{plain}");
            assert_eq!(resolve(plain).as_deref(), Ok(plain));
        }
        for other in [
            "",
            "a",
            "//a",
            "/a//b",
            "/.well-known",
            "/a/..",
            "/a%41",
            "/a;b",
            "/a\\b",
            "/é",
        ] {
            assert!(!is_plain(other), "{other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_plain_shortcut_agrees_with_the_long_way(raw in "[/aZ0_.%;~\\\\é-]{0,12}") {
            if is_plain(&raw) {
                proptest::prop_assert_eq!(resolve(&raw), Ok(raw.clone()));
            }
        }
    }

    #[test]
    fn hosts_are_case_folded_without_dot_or_port() {
        assert_eq!(host("App.Example.COM.").as_deref(), Ok("app.example.com"));
        assert_eq!(
            host("app.example.com:8443").as_deref(),
            Ok("app.example.com")
        );
        assert_eq!(host("[::1]:443").as_deref(), Ok("::1"));
        assert_eq!(
            host("[2001:DB8::FFFF:1.2.3.4]").as_deref(),
            Ok("2001:db8::ffff:1.2.3.4")
        );
        for bad in [
            "",
            "app.example.com:1#",
            "a@b.example.com",
            "app.example.com:x",
            "app example.com",
            "app.example.com?",
            "[::1",
            "a:1:2",
            "[::1]x",
            // Found by fuzz/fuzz_targets/canonical.rs: brackets around what is no IPv6 address.
            "[:1]",
            "[abc]",
            "[app.example.com]",
            "[1.2.3.4]",
            "[]",
        ] {
            assert!(host(bad).is_err(), "{bad}");
        }
    }
}
