//! `rd` validation (DESIGN.md §5): only absolute https URLs (http only when certgate itself is
//! served over http) to an allowed host, with nothing a browser could read differently from us.
//! Anything else gets the default page; we never try to repair a suspicious value.

use url::{Host, Url};

use crate::policy::host_allowed;

/// Returns the URL to redirect to, or `None` for the default page.
pub fn validate(raw: &str, allowed_hosts: &[String], allow_http: bool) -> Option<Url> {
    // Browsers skip or reinterpret these; a value that contains them is not one we minted.
    if raw.len() > 4096
        || raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || !c.is_ascii())
    {
        return None;
    }
    let lower = raw
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let scheme_ok = lower.starts_with("https://") || (allow_http && lower.starts_with("http://"));
    if !scheme_ok {
        return None;
    }
    // The authority is exactly what sits between "//" and the next "/", "?" or "#". It must not
    // carry userinfo or percent-escapes, whatever the URL parser would make of them.
    let after = raw.split_once("//").map(|(_, rest)| rest)?;
    let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains(['@', '%']) {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let host = match url.host()? {
        Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    };
    if host_allowed(&host, allowed_hosts) {
        Some(url)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["app.example.com".into(), "*.apps.example.com".into()]
    }

    #[test]
    fn good_redirects_pass() {
        for ok in [
            "https://app.example.com/",
            "https://app.example.com:8443/x?y=1#z",
            "https://APP.example.com./path",
            "https://grafana.apps.example.com/d/abc",
        ] {
            assert!(validate(ok, &allowed(), false).is_some(), "{ok}");
        }
    }

    #[test]
    fn bad_redirects_fail() {
        for bad in [
            "http://app.example.com/",
            "//app.example.com/",
            "/relative",
            "https://evil.com/",
            "https://app.example.com.evil.com/",
            "https://apps.example.com/",
            "https://evilapps.example.com/",
            "https://app.example.com@evil.com/",
            "https://user:pw@app.example.com/",
            "https://evil.com\\@app.example.com/",
            "https://app.example.com%2f@evil.com/",
            "https:app.example.com",
            "https:/app.example.com",
            "javascript:alert(1)",
            "https://app.example.com/\n",
            " https://app.example.com/",
            "",
        ] {
            assert!(validate(bad, &allowed(), false).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn http_is_allowed_only_when_certgate_itself_is_http() {
        assert!(validate("http://app.example.com/", &allowed(), true).is_some());
    }

    /// oauth2-proxy's public corpus: every payload must land on the default page.
    #[test]
    fn every_open_redirect_payload_is_refused() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/openredirects.txt"
        );
        let corpus = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (the shared/ folder sits beside the repo)"));
        let hosts = vec!["www.whitelisteddomain.tld".to_string()];
        let mut count = 0;
        for line in corpus.lines().filter(|l| !l.is_empty()) {
            let payload = percent_encoding::percent_decode_str(line).decode_utf8_lossy();
            assert!(
                validate(&payload, &hosts, false).is_none(),
                "accepted {payload:?}"
            );
            assert!(
                validate(line, &hosts, false).is_none(),
                "accepted raw {line:?}"
            );
            count += 1;
        }
        assert!(count >= 550, "corpus has {count} payloads");
        // The same policy still lets the legitimate host through.
        assert!(validate("https://www.whitelisteddomain.tld/ok", &hosts, false).is_some());
    }
}
