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
        host_allowed(host, std::slice::from_ref(&self.0))
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `/exact`, `/prefix/**` (the prefix itself and everything below it), or a glob where `*`
/// is one path segment (or part of one) and `**` any number of segments, none included
/// (`/**/.env` matches `/.env`). Case-sensitive. Compiled once to a regular expression, so
/// matching takes linear time whatever the pattern (token scopes come from users).
#[derive(Debug, Clone)]
pub struct PathPattern {
    source: String,
    regex: regex::Regex,
}

impl PartialEq for PathPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for PathPattern {}

/// Longest path pattern accepted (rules and scopes alike).
pub const MAX_PATTERN_LEN: usize = 512;

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
        if raw.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "the pattern is longer than {MAX_PATTERN_LEN} characters"
            ));
        }
        let regex = regex::Regex::new(&to_regex(raw)).map_err(|e| format!("`{raw}`: {e}"))?;
        Ok(Self {
            source: raw.to_string(),
            regex,
        })
    }

    /// `path` must already be canonical (see [`super::canonical::path`]).
    pub fn matches(&self, path: &str) -> bool {
        self.regex.is_match(path)
    }
}

/// `/**/` → one or more slashes' worth of segments or none; trailing `/**` → the prefix
/// itself or anything below; `**` → anything; `*` → anything but `/`.
fn to_regex(glob: &str) -> String {
    let mut out = String::from("^");
    let mut rest = glob;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("/**/") {
            out.push_str("/(?:.*/)?");
            rest = r;
        } else if rest == "/**" {
            out.push_str("(?:/.*)?");
            rest = "";
        } else if let Some(r) = rest.strip_prefix("**") {
            out.push_str(".*");
            rest = r;
        } else if let Some(r) = rest.strip_prefix('*') {
            out.push_str("[^/]*");
            rest = r;
        } else {
            let ch = rest.chars().next().unwrap_or_default();
            out.push_str(&regex::escape(&ch.to_string()));
            rest = &rest[ch.len_utf8()..];
        }
    }
    out.push('$');
    out
}

impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// `app.example.com` matches itself; `*.example.com` matches any name below example.com.
/// (`host` must already be canonical.)
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .any(|pattern| match pattern.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
            None => host == pattern,
        })
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
        // `/**/` also stands for no segment at all.
        assert!(p("/**/.env").matches("/.env"));
        assert!(p("/**/.git/**").matches("/.git/config"));
        assert!(p("/**/.git/**").matches("/a/b/.git"));
        assert!(p("/a/**/b").matches("/a/b"));
        assert!(p("/a/**/b").matches("/a/x/y/b"));
        assert!(!p("/a/**/b").matches("/ab"));
        // Regex metacharacters in paths are literals.
        assert!(p("/a.b(c)+").matches("/a.b(c)+"));
        assert!(!p("/a.b").matches("/axb"));
    }

    #[test]
    fn hostile_patterns_match_in_linear_time() {
        let pattern = p("/**/**/**/**/**/**/**/**/**/**/z");
        let path = format!("/{}", "a/".repeat(5000));
        let started = std::time::Instant::now();
        assert!(!pattern.matches(&path));
        // Not a timing assertion on the code's speed: a backtracking matcher takes hours here.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
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
