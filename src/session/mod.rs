//! What certgate hands out once a certificate checked: the session cookie (`[session]`) and
//! bearer tokens (`[token]`), how long each lives, and the list of those issued ([`issued`]).

pub mod issued;

use std::time::Duration;

use serde::Deserialize;
use url::Url;

pub use issued::{Issued, Sessions};

use crate::policy::HostPattern;
use crate::settings::{list, Checker, HOUR};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSession {
    pub cookie_name: Option<String>,
    pub cookie_domain: Option<String>,
    pub ttl: Option<String>,
    #[serde(deserialize_with = "list::opt_string_or_list")]
    pub allowed_redirect_hosts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawToken {
    pub default_ttl: Option<String>,
    pub max_ttl: Option<String>,
}

/// `[session]`: the cookie `/auth` sets and where it may send a browser back to.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The full cookie name, prefix included (`__Host-certgate`).
    pub cookie_name: String,
    /// `Domain` attribute for single sign-on across subdomains.
    pub cookie_domain: Option<String>,
    /// False only when `public_url` is plain http (a lab without TLS).
    pub secure: bool,
    pub ttl: Duration,
    /// Lower-case host names; `*.example.com` matches any subdomain.
    pub allowed_redirect_hosts: Vec<String>,
}

/// `[token]`: lifetimes of the bearer tokens `/token` hands out.
#[derive(Debug, Clone, Copy)]
pub struct TokenSettings {
    pub default_ttl: Duration,
    pub max_ttl: Duration,
}

impl TokenSettings {
    /// Each lifetime on its own; [`Self::check`] compares them.
    pub fn from_raw(c: &mut Checker, raw: &RawToken) -> Self {
        Self {
            default_ttl: c.duration("token.default_ttl", raw.default_ttl.as_deref(), HOUR),
            max_ttl: c.duration("token.max_ttl", raw.max_ttl.as_deref(), 30 * 24 * HOUR),
        }
    }

    /// The default may not be longer than the longest allowed.
    pub fn check(&self, c: &mut Checker) {
        if self.default_ttl > self.max_ttl {
            c.fail(
                "token.default_ttl, token.max_ttl",
                "default_ttl is longer than max_ttl",
                "raise token.max_ttl or lower token.default_ttl",
            );
        }
    }
}

impl Settings {
    /// The cookie's name, prefix and domain follow `public_url` (`None` when it is itself
    /// invalid: then the cookie is checked on its own).
    pub fn from_raw(c: &mut Checker, raw: &RawSession, public_url: Option<&Url>) -> Self {
        let secure = public_url.is_none_or(|u| u.scheme() == "https");
        let base = cookie_base(c, raw);
        let domain = cookie_domain(c, raw, public_url);
        let cookie_name = match (secure, &domain) {
            (false, _) => base,
            (true, None) => format!("__Host-{base}"),
            (true, Some(_)) => format!("__Secure-{base}"),
        };
        let allowed_redirect_hosts = match &raw.allowed_redirect_hosts {
            Some(list) => list.iter().filter_map(|h| redirect_host(c, h)).collect(),
            None => public_url
                .and_then(Url::host_str)
                .map(|h| vec![h.to_ascii_lowercase()])
                .unwrap_or_default(),
        };
        if let Some(url) = public_url {
            cookie_reaches_redirect_hosts(c, url, domain.as_deref(), &allowed_redirect_hosts);
        }
        Self {
            cookie_name,
            cookie_domain: domain,
            secure,
            ttl: c.duration("session.ttl", raw.ttl.as_deref(), HOUR),
            allowed_redirect_hosts,
        }
    }
}

/// `session.cookie_name` without its prefix.
fn cookie_base(c: &mut Checker, raw: &RawSession) -> String {
    let base = raw.cookie_name.clone().unwrap_or_else(|| "certgate".into());
    if base.is_empty()
        || !base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        c.fail(
            "session.cookie_name",
            format!("`{base}` is not a valid cookie name"),
            "use letters, digits, '-' and '_'",
        );
    }
    base
}

fn cookie_domain(c: &mut Checker, raw: &RawSession, public_url: Option<&Url>) -> Option<String> {
    let domain = raw
        .cookie_domain
        .as_deref()
        .map(|d| d.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty());
    if let (Some(domain), Some(url)) = (&domain, public_url) {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if host != *domain && !host.ends_with(&format!(".{domain}")) {
            c.fail(
                "session.cookie_domain, public_url",
                format!("public_url host `{host}` is not inside cookie_domain `{domain}`"),
                "the cookie must be settable by certgate: use a parent domain of the public_url host",
            );
        }
    }
    domain
}

/// The sign-in redirect loop: `/auth` on the public_url host sets the cookie there and sends
/// the browser back to an app host; when the cookie cannot reach that host, a browser without
/// a certificate there is sent to sign in again, and again, until it gives up
/// (ERR_TOO_MANY_REDIRECTS). Each allowed host other than the sign-in host must be covered by
/// `cookie_domain`. IP addresses are left out: no cookie is shared with one, so no
/// `cookie_domain` fixes it, and they are how certgate's own mTLS listener is reached directly
/// (the quickstart), where the certificate comes with every request.
fn cookie_reaches_redirect_hosts(
    c: &mut Checker,
    public_url: &Url,
    cookie_domain: Option<&str>,
    allowed: &[String],
) {
    let Some(url::Host::Domain(sign_in)) = public_url.host() else {
        return;
    };
    let sign_in = sign_in.trim_end_matches('.').to_ascii_lowercase();
    for pattern in allowed {
        let (wildcard, base) = match pattern.strip_prefix("*.") {
            Some(base) => (true, base),
            None => (false, pattern.as_str()),
        };
        if (!wildcard && base == sign_in) || base.parse::<std::net::Ipv4Addr>().is_ok() {
            continue;
        }
        let covered = cookie_domain.is_some_and(|d| base == d || base.ends_with(&format!(".{d}")));
        if covered {
            continue;
        }
        let app = if wildcard {
            format!("the hosts `{pattern}`")
        } else {
            format!("`{pattern}`")
        };
        let example = if wildcard {
            format!("app.{base}")
        } else {
            base.to_string()
        };
        let fix = match shared_parent(&sign_in, base, wildcard) {
            Some(parent) => format!(
                "set session.cookie_domain = \"{parent}\" (a parent domain of both), or use the single-host layout: public_url = \"https://{example}/.certgate\" with certgate under the app host's /.certgate/"
            ),
            None => format!(
                "no domain is a parent of both: put certgate on a sign-in host below the apps' domain and set session.cookie_domain to that domain, or use the single-host layout: public_url = \"https://{example}/.certgate\" with certgate under the app host's /.certgate/"
            ),
        };
        let problem = match cookie_domain {
            None => format!(
                "the sign-in host `{sign_in}` (public_url) sets a cookie only for itself, so it never reaches {app} it sends browsers back to: a browser without a certificate there is sent to sign in again until it gives up (ERR_TOO_MANY_REDIRECTS)"
            ),
            Some(d) => format!(
                "the cookie the sign-in host `{sign_in}` (public_url) sets for `{d}` never reaches {app} it sends browsers back to: a browser without a certificate there is sent to sign in again until it gives up (ERR_TOO_MANY_REDIRECTS)"
            ),
        };
        c.fail(
            "session.cookie_domain, session.allowed_redirect_hosts",
            problem,
            fix,
        );
    }
}

/// The longest domain of at least two labels that both the sign-in host and `base` (the hosts
/// below it when `wildcard`) sit in or below.
fn shared_parent(sign_in: &str, base: &str, wildcard: bool) -> Option<String> {
    let a: Vec<&str> = sign_in.rsplit('.').collect();
    let b: Vec<&str> = base.rsplit('.').collect();
    let mut n = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if wildcard {
        // The hosts below `base` share at most `base` itself with the sign-in host.
        n = n.min(b.len());
    }
    (n >= 2).then(|| {
        let mut labels = a[..n].to_vec();
        labels.reverse();
        labels.join(".")
    })
}

fn redirect_host(c: &mut Checker, raw: &str) -> Option<String> {
    match HostPattern::parse(raw) {
        Ok(pattern) => Some(pattern.to_string()),
        Err(problem) => {
            c.fail(
                "session.allowed_redirect_hosts",
                problem,
                "list bare host names such as \"app.example.com\" or \"*.example.com\" (no scheme, port or path)",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems `[session]` gives with `public_url`.
    fn problems(public_url: &str, cookie_domain: Option<&str>, hosts: &[&str]) -> Vec<String> {
        let mut c = Checker::default();
        let raw = RawSession {
            cookie_domain: cookie_domain.map(String::from),
            allowed_redirect_hosts: Some(hosts.iter().map(|h| (*h).to_string()).collect()),
            ..RawSession::default()
        };
        Settings::from_raw(&mut c, &raw, Some(&Url::parse(public_url).unwrap()));
        c.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_sign_in_host_whose_cookie_misses_an_app_host_is_the_redirect_loop() {
        let p = problems("https://auth.example.com", None, &["app.example.com"]);
        assert_eq!(p.len(), 1, "{p:?}");
        let p = &p[0];
        assert!(
            p.starts_with("session.cookie_domain, session.allowed_redirect_hosts: "),
            "{p}"
        );
        for says in [
            "`auth.example.com`",
            "`app.example.com`",
            "ERR_TOO_MANY_REDIRECTS",
            "session.cookie_domain = \"example.com\"",
            "single-host layout",
            "https://app.example.com/.certgate",
        ] {
            assert!(p.contains(says), "`{says}` missing: {p}");
        }

        let p = problems("https://auth.example.com", None, &["*.example.com"]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("`*.example.com`") && p[0].contains("cookie_domain = \"example.com\""),
            "{p:?}"
        );

        // A cookie_domain that covers the sign-in host but not the app host.
        let p = problems(
            "https://auth.home.example.com",
            Some("home.example.com"),
            &["grafana.example.com"],
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("for `home.example.com`")
                && p[0].contains("cookie_domain = \"example.com\""),
            "{p:?}"
        );

        // No shared parent: the fix cannot be a cookie_domain.
        let p = problems("https://localhost:9443", None, &["app.example.test"]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("no domain is a parent of both") && p[0].contains("`localhost`"),
            "{p:?}"
        );
        let p = problems("https://auth.example.com", None, &["a.com"]);
        assert!(p[0].contains("no domain is a parent of both"), "{p:?}");
    }

    #[test]
    fn a_cookie_domain_covering_both_or_the_sign_in_host_alone_is_fine() {
        for (url, domain, hosts) in [
            (
                "https://auth.example.com",
                Some("example.com"),
                &["app.example.com", "*.example.com", "example.com"][..],
            ),
            (
                "https://auth.example.com",
                Some(".Example.com"),
                &["*.home.example.com"],
            ),
            // Only the sign-in host itself (the single-host layout), or the default.
            (
                "https://app.example.com/.certgate",
                None,
                &["app.example.com", "App.Example.com."],
            ),
            ("https://auth.example.com", None, &[]),
            // IP addresses share no cookie with anyone: no cookie_domain fixes them, and they
            // reach certgate's own mTLS listener directly (the quickstart).
            ("https://localhost:9443", None, &["localhost", "127.0.0.1"]),
            ("https://127.0.0.1:9443", None, &["app.example.com"]),
        ] {
            assert_eq!(
                problems(url, domain, hosts),
                Vec::<String>::new(),
                "{url} {domain:?} {hosts:?}"
            );
        }
        let mut c = Checker::default();
        let s = Settings::from_raw(
            &mut c,
            &RawSession::default(),
            Some(&Url::parse("https://auth.example.com").unwrap()),
        );
        assert!(c.0.is_empty());
        assert_eq!(s.allowed_redirect_hosts, ["auth.example.com"]);
    }
}
