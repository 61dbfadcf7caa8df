//! Scoped bearer tokens. A scope is a space-separated list of grants, each
//! `[METHODS:]HOST[PATH]`: `ha.example.com/api/websocket`, `GET,HEAD:grafana.example.com`,
//! `*.example.com/api/**`. A scoped token is good only for requests one grant covers, and
//! only as far as the rules allow its holder: it never carries more rights than its minter.

use super::{HostPattern, PathPattern, Request};

/// Scopes travel in every token: keep them small.
pub const MAX_SCOPE_LEN: usize = 1024;
pub const MAX_GRANTS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub methods: Vec<String>,
    pub host: HostPattern,
    pub path: Option<PathPattern>,
}

/// # Errors
/// A sentence naming the grant that cannot be read.
pub fn parse(scope: &str) -> Result<Vec<Grant>, String> {
    if scope.len() > MAX_SCOPE_LEN {
        return Err(format!("longer than {MAX_SCOPE_LEN} characters"));
    }
    let grants: Vec<Grant> = scope
        .split_whitespace()
        .map(parse_grant)
        .collect::<Result<_, _>>()?;
    if grants.len() > MAX_GRANTS {
        return Err(format!("more than {MAX_GRANTS} grants"));
    }
    if grants.is_empty() {
        return Err("empty scope".into());
    }
    Ok(grants)
}

fn parse_grant(raw: &str) -> Result<Grant, String> {
    let (methods, rest) = match raw.split_once(':') {
        Some((m, rest))
            if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase() || b == b',') =>
        {
            (
                m.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                rest,
            )
        }
        _ => (Vec::new(), raw),
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let host = HostPattern::parse(host).map_err(|e| format!("grant `{raw}`: {e}"))?;
    let path = path
        .map(PathPattern::parse)
        .transpose()
        .map_err(|e| format!("grant `{raw}`: {e}"))?;
    Ok(Grant {
        methods,
        host,
        path,
    })
}

/// Whether any grant of `scope` covers the request. A request whose host or path is unknown
/// is never covered.
pub fn covers(grants: &[Grant], r: &Request) -> bool {
    let (Some(host), Some(path)) = (&r.host, &r.path) else {
        return false;
    };
    grants.iter().any(|g| {
        g.host.matches(host)
            && g.path.as_ref().is_none_or(|p| p.matches(path))
            && (g.methods.is_empty() || g.methods.iter().any(|m| *m == r.method))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(host: &'a str, path: &'a str, method: &'a str) -> Request<'a> {
        Request {
            host: Some(host.into()),
            path: Some(path.into()),
            method: method.into(),
            client: None,
        }
    }

    #[test]
    fn grants_limit_host_path_and_method() {
        let g = parse("GET,HEAD:grafana.example.com ha.example.com/api/**").unwrap();
        assert!(covers(&g, &req("grafana.example.com", "/d/x", "GET")));
        assert!(!covers(&g, &req("grafana.example.com", "/d/x", "POST")));
        assert!(covers(&g, &req("ha.example.com", "/api/states", "POST")));
        assert!(!covers(&g, &req("ha.example.com", "/config", "GET")));
        assert!(!covers(&g, &req("other.example.com", "/", "GET")));
        let unknown = Request {
            host: None,
            path: None,
            method: "GET".into(),
            client: None,
        };
        assert!(!covers(&g, &unknown));
    }

    #[test]
    fn bad_grants_are_named() {
        assert!(parse("").is_err());
        assert!(parse("https://x/").unwrap_err().contains("https://x/"));
        assert!(parse("ha.example.com/api?x").is_err());
    }
}
