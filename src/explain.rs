//! `certgate explain`: what the rules decide for a URL, and why, without sending a request.

use std::path::Path;

use crate::cert::{PresentedChain, TrustStore};
use crate::config::Config;
use crate::identity::{self, Identity};
use crate::jwt::{KeySet, TokenKind, Tokens};
use crate::policy::{canonical, scope, Decision, Request};

/// Who is asking.
#[derive(Debug, Clone)]
pub enum Who {
    Nobody,
    Cert(std::path::PathBuf),
    Token(String),
    User(String),
}

/// The printed explanation and whether the request would be let through.
pub struct Explanation {
    pub text: String,
    pub allowed: bool,
}

/// Explains the decision for `method url` from `client` as `who`.
///
/// # Errors
/// A sentence when the URL cannot be judged (it would get a 400).
pub fn explain(
    config: &Config,
    config_text: &str,
    url: &str,
    method: &str,
    client: Option<std::net::IpAddr>,
    who: &Who,
    now: i64,
) -> Result<Explanation, String> {
    // Split as `/verify` splits the proxy's original URL.
    let (authority, target) = canonical::split_url(url)
        .ok_or_else(|| format!("--url: `{url}` is not an absolute URL"))?;
    let host = canonical::host(authority)
        .map_err(|e| format!("--url: {e} (the check would answer 400)"))?;
    let path =
        canonical::path(target).map_err(|e| format!("--url: {e} (the check would answer 400)"))?;
    let request = Request {
        host: Some(host.clone()),
        path: Some(path.clone()),
        method: canonical::upper(method),
        client,
    };
    let mut lines = vec![format!(
        "request:  {} host {host} path {path}",
        request.method
    )];
    let (identity, grants) = match resolve(config, who, now) {
        Ok(found) => found,
        Err(why) => {
            lines.push(format!("identity: refused: {why}"));
            lines.push("decision: deny".into());
            return Ok(Explanation {
                text: lines.join("\n"),
                allowed: false,
            });
        }
    };
    match &identity {
        Some(id) => lines.push(format!(
            "identity: {} (groups: {})",
            id.user,
            list(&id.groups)
        )),
        None => lines.push("identity: none (no credentials)".into()),
    }
    let policy = &config.policy;
    let mut decision = policy.evaluate(&request, None);
    if let (Decision::NeedsIdentity { .. } | Decision::Allow { .. }, Some(id)) =
        (&decision, &identity)
    {
        decision = policy.evaluate(&request, Some(id));
    }
    let (verdict, mut allowed) = match decision {
        Decision::Bypass { .. } => ("allow (public, no credentials needed)", true),
        Decision::Allow { .. } => ("allow", true),
        Decision::Deny { .. } => ("deny", false),
        Decision::NeedsIdentity { .. } => ("deny (sign-in required)", false),
    };
    let mut verdict = verdict.to_string();
    if let (true, Some(grants), Decision::Allow { .. }) = (allowed, &grants, &decision) {
        if !scope::covers(grants, &request) {
            verdict = "deny (outside the token's scope: insufficient_scope)".into();
            allowed = false;
        }
    }
    lines.push(format!("decision: {verdict}"));
    lines.push(format!("because:  {}", policy.explain(&decision)));
    if let Some(rule) = policy.rule(match decision {
        Decision::Bypass { rule } => Some(rule),
        Decision::Allow { rule } | Decision::Deny { rule } | Decision::NeedsIdentity { rule } => {
            rule
        }
    }) {
        if let Some(line) = rule_line(config_text, rule.index) {
            lines.push(format!("rule at:  {}:{line}", policy.source));
        }
    }
    Ok(Explanation {
        text: lines.join("\n"),
        allowed,
    })
}

type Resolved = (Option<Identity>, Option<Vec<scope::Grant>>);

fn resolve(config: &Config, who: &Who, now: i64) -> Result<Resolved, String> {
    match who {
        Who::Nobody => Ok((None, None)),
        Who::User(user) => identity::from_user(user, &config.identity)
            .map(|id| (Some(id), None))
            .map_err(|e| e.to_string()),
        Who::Cert(path) => {
            let chain = read_chain(path)?;
            let store = TrustStore::new(&config.client_ca.bundle).map_err(|e| e.to_string())?;
            let cert = store.verify(&chain, now).map_err(|e| e.to_string())?;
            identity::from_cert(&cert, &config.identity)
                .map(|id| (Some(id), None))
                .map_err(|e| e.to_string())
        }
        Who::Token(token) => {
            let keys = KeySet::load(&config.data_dir.join("keys")).map_err(|e| e.to_string())?;
            let tokens = Tokens::new(keys, config.public_base());
            let claims = tokens
                .verify(token, TokenKind::Bearer, now)
                .or_else(|_| tokens.verify(token, TokenKind::Session, now))
                .map_err(|e| format!("token: {e}"))?;
            let grants = claims.scope.as_deref().map(scope::parse).transpose()?;
            identity::from_claims(&claims, &config.identity)
                .map(|id| (Some(id), grants))
                .map_err(|e| e.to_string())
        }
    }
}

fn read_chain(path: &Path) -> Result<PresentedChain, String> {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("--cert {}: {e}", path.display()))?
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(format!("--cert {}: no PEM certificate", path.display()));
    }
    Ok(PresentedChain(certs))
}

/// The 1-based line of the `index`-th `[[rules]]` header in the file.
fn rule_line(text: &str, index: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[rules]]"))
        .nth(index)
        .map(|(n, _)| n + 1)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
