//! One canonical form of the request before any rule looks at it (DESIGN.md §5), so that
//! `//admin`, `/./admin`, `/x/../admin`, `%2e%2e`, `..;/` and `App.Example.COM.` are judged
//! as what the app will see, never as something else.

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
}

/// Lower-case, without the trailing dot or any port (rules match host names, not ports).
pub fn host(raw: &str) -> Result<String, CanonicalError> {
    let raw = raw.trim();
    let without_port = if let Some(rest) = raw.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or_default()
    } else {
        raw.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(raw, |(h, _)| h)
    };
    let host = without_port.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Err(CanonicalError::NoHost);
    }
    if host.chars().any(char::is_control) {
        return Err(CanonicalError::ControlCharacter);
    }
    Ok(host)
}

/// The path of a request target: query and fragment dropped, percent-decoded once, `;params`
/// removed from each segment, `//`, `.` and `..` resolved. Never climbs above `/`.
pub fn path(target: &str) -> Result<String, CanonicalError> {
    let raw = target.split(['?', '#']).next().unwrap_or_default();
    let lower = raw.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Err(CanonicalError::EncodedSlash);
    }
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    let decoded = String::from_utf8(bytes).map_err(|_| CanonicalError::InvalidUtf8)?;
    if decoded.chars().any(char::is_control) {
        return Err(CanonicalError::ControlCharacter);
    }
    if decoded.contains('\\') {
        return Err(CanonicalError::Backslash);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        // Matrix parameters (`..;/`, `admin;x=1`) are dropped: servers ignore them.
        let segment = segment.split(';').next().unwrap_or_default();
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(&segments.join("/"));
    if decoded.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_once() {
        for (raw, want) in [
            ("/admin", "/admin"),
            ("//admin", "/admin"),
            ("/./admin", "/admin"),
            ("/x/../admin", "/admin"),
            ("/%2e%2e/admin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/..;/admin", "/admin"),
            ("/admin;jsessionid=1", "/admin"),
            ("/admin?x=/public", "/admin"),
            ("/admin#/public", "/admin"),
            ("/../../admin", "/admin"),
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
    }

    #[test]
    fn hosts_are_case_folded_without_dot_or_port() {
        assert_eq!(host("App.Example.COM.").as_deref(), Ok("app.example.com"));
        assert_eq!(
            host("app.example.com:8443").as_deref(),
            Ok("app.example.com")
        );
        assert_eq!(host("[::1]:443").as_deref(), Ok("::1"));
        assert!(host("").is_err());
    }
}
