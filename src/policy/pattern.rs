//! Host and path patterns of `[[rules]]` and token scopes.

/// `app.example.com` (exact) or `*.example.com` (any name below example.com).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(String);

impl HostPattern {
    /// # Errors
    /// A sentence when the pattern is not a host name or `*.` wildcard.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let p = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        let bare = p.strip_prefix("*.").unwrap_or(&p);
        let ok = !bare.is_empty()
            && bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if ok {
            Ok(Self(p))
        } else {
            Err(format!("`{raw}` is not a host name or *.wildcard"))
        }
    }

    /// `host` must already be canonical (see [`super::canonical::host`]).
    pub fn matches(&self, host: &str) -> bool {
        crate::http::redirect::host_allowed(host, std::slice::from_ref(&self.0))
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `/exact`, `/prefix/**` (the prefix itself and everything below it), or a glob where `*`
/// is one path segment (or part of one) and `**` any number of segments. Case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern(String);

impl PathPattern {
    /// # Errors
    /// A sentence when the pattern is not an absolute path.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if !raw.starts_with('/') {
            return Err(format!("`{raw}` must start with /"));
        }
        if raw.contains(['?', '#', '\\']) || raw.chars().any(char::is_control) {
            return Err(format!(
                "`{raw}` may not contain ?, #, backslashes or control characters"
            ));
        }
        Ok(Self(raw.to_string()))
    }

    /// `path` must already be canonical (see [`super::canonical::path`]).
    pub fn matches(&self, path: &str) -> bool {
        glob(self.0.as_bytes(), path.as_bytes())
    }
}

impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `**` matches anything (slashes too), `*` anything but a slash; a trailing `/**` also
/// matches the bare prefix (`/admin/**` matches `/admin`).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    if let Some(prefix) = pattern.strip_suffix(b"/**") {
        if glob(prefix, text) {
            return true;
        }
    }
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) if rest.first() == Some(&b'*') => {
            let rest = &rest[1..];
            (0..=text.len()).any(|i| glob(rest, &text[i..]))
        }
        Some((b'*', rest)) => {
            let max = text.iter().position(|&c| c == b'/').unwrap_or(text.len());
            (0..=max).any(|i| glob(rest, &text[i..]))
        }
        Some((&c, rest)) => text.first() == Some(&c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        PathPattern::parse(s).unwrap()
    }

    #[test]
    fn path_patterns() {
        assert!(p("/admin").matches("/admin"));
        assert!(!p("/admin").matches("/admin/x"));
        assert!(!p("/admin").matches("/ADMIN"));
        assert!(p("/admin/**").matches("/admin"));
        assert!(p("/admin/**").matches("/admin/"));
        assert!(p("/admin/**").matches("/admin/a/b"));
        assert!(!p("/admin/**").matches("/administrator"));
        assert!(p("/api/*/state").matches("/api/light/state"));
        assert!(!p("/api/*/state").matches("/api/a/b/state"));
        assert!(p("/**/*.js").matches("/static/js/app.js"));
        assert!(p("/**").matches("/"));
        assert!(p("/*.json").matches("/manifest.json"));
        assert!(!p("/*.json").matches("/a/manifest.json"));
    }

    #[test]
    fn host_patterns() {
        let exact = HostPattern::parse("App.Example.com").unwrap();
        assert!(exact.matches("app.example.com"));
        assert!(!exact.matches("x.app.example.com"));
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert!(wild.matches("grafana.example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("evilexample.com"));
        assert!(HostPattern::parse("https://x").is_err());
    }
}
