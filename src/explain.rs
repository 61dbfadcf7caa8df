//! `certgate explain`: what the rules decide for a URL, and why, without sending a request.
//! The decision is [`policy::decide`], the very function `/verify` calls.

use std::net::IpAddr;
use std::path::Path;

use crate::cert::{CertError, PresentedChain, TrustStore, VerifiedCert};
use crate::config::Config;
use crate::identity::{self, Identity};
use crate::jwt::{Claims, KeySet, TokenKind, Tokens};
use crate::policy::{self, canonical, scope, Asker, Request, Verdict};
use crate::revocation::Standing;

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

/// The request to explain.
#[derive(Debug, Clone, Copy)]
pub struct Case<'a> {
    pub url: &'a str,
    pub method: &'a str,
    /// The client's address, for network rules.
    pub client: Option<IpAddr>,
    pub who: &'a Who,
}

/// The revocation state a credential is judged against.
pub trait Standings {
    /// The trust store a certificate's chain is verified with, revocation lists included;
    /// `None`: one made from `client_ca.bundle` alone (no CRLs, no built-in CA list).
    fn trust(&self) -> Option<&TrustStore> {
        None
    }
    fn token(&self, claims: &Claims, now: i64) -> Standing;
    fn certificate(&self, cert: &VerifiedCert, now: i64) -> Standing;
    /// Whether `user` is locked out at run time (`certgate user disable`).
    fn locked(&self, _user: &str) -> bool {
        false
    }
}

/// Revocations not consulted: every credential counts as live.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unchecked;

impl Standings for Unchecked {
    fn token(&self, _: &Claims, _: i64) -> Standing {
        Standing::Live
    }
    fn certificate(&self, _: &VerifiedCert, _: i64) -> Standing {
        Standing::Live
    }
}

/// Explains the decision for `method url` from `client` as `who`, revocations not consulted.
///
/// # Errors
/// A sentence when the URL cannot be judged (it would get a 400).
pub fn explain(
    config: &Config,
    config_text: &str,
    url: &str,
    method: &str,
    client: Option<IpAddr>,
    who: &Who,
    now: i64,
) -> Result<Explanation, String> {
    let case = Case {
        url,
        method,
        client,
        who,
    };
    explain_against(config, config_text, &case, now, &Unchecked)
}

/// Whether `who` may sign in to the OpenID Connect client `client_id`, and why: what
/// `/oidc/authorize` decides for them (revocations not consulted).
///
/// # Errors
/// No `[oidc]`, an unknown client, or a `who` that names nobody certgate knows.
pub fn explain_oidc(
    config: &Config,
    client_id: &str,
    who: &Who,
    now: i64,
) -> Result<Explanation, String> {
    let oidc = config
        .oidc
        .as_ref()
        .ok_or("this configuration has no [oidc]: certgate is no OpenID Connect provider here")?;
    let client = oidc.client(client_id).ok_or_else(|| {
        let known: Vec<&str> = oidc.clients.iter().map(|c| c.id.as_str()).collect();
        format!(
            "no client `{client_id}` in [[oidc.clients]] (there are: {})",
            known.join(", ")
        )
    })?;
    let person = match who {
        Who::User(user) => identity::from_user(user, &config.identity).map_err(string)?,
        Who::Cert(path) => {
            identity::from_cert(&certificate(config, None, path, now)?, &config.identity)
                .map_err(string)?
        }
        Who::Token(_) => {
            return Err("for a client, give --user or --cert: who signs in, not a token".into())
        }
        Who::Nobody => {
            return Ok(Explanation {
                text: format!(
                    "nobody signed in: at /oidc/authorize for {}, a browser is sent to /auth to sign in with its certificate and comes back; with prompt=none the app gets login_required",
                    client.id
                ),
                allowed: false,
            })
        }
    };
    let why = if client.users.is_empty() && client.groups.is_empty() {
        Some("the client lists no users or groups: anyone certgate knows".to_string())
    } else if client.users.contains(&person.user) {
        Some(format!("{} is in its users", person.user))
    } else {
        client
            .groups
            .iter()
            .find(|g| person.groups.contains(g))
            .map(|g| format!("{} is in its group {g}", person.user))
    };
    let details = format!(
        "client {}: {}, ID tokens {}, scopes {}, redirect URIs {}",
        client.id,
        client.auth_method.as_str(),
        client.alg.as_str(),
        client.scopes.iter().cloned().collect::<Vec<_>>().join(" "),
        client.redirect_uris.join(", ")
    );
    Ok(match why {
        Some(why) => Explanation {
            text: format!("{} may sign in to {}: {why}\n{details}", person.user, client.id),
            allowed: true,
        },
        None => Explanation {
            text: format!(
                "{} may not sign in to {}: not in its users [{}] nor groups [{}] (their groups: {})\n{details}",
                person.user,
                client.id,
                client.users.join(", "),
                client.groups.join(", "),
                if person.groups.is_empty() { "none".to_string() } else { person.groups.join(", ") }
            ),
            allowed: false,
        },
    })
}

/// Explains the decision for `case`, with credentials judged against `standings`.
///
/// # Errors
/// A sentence when the URL cannot be judged (it would get a 400).
pub fn explain_against(
    config: &Config,
    config_text: &str,
    case: &Case<'_>,
    now: i64,
    standings: &dyn Standings,
) -> Result<Explanation, String> {
    let request = request(case)?;
    let mut lines = vec![format!(
        "request:  {} host {} path {}",
        request.method,
        request.host.as_deref().unwrap_or_default(),
        request.path.as_deref().unwrap_or_default()
    )];
    let resolved = resolve(config, case.who, &request, now, standings);
    lines.push(match &resolved {
        Ok(Some(r)) => format!(
            "identity: {} (groups: {})",
            r.identity.user,
            list(&r.identity.groups)
        ),
        Ok(None) => "identity: none (no credentials)".into(),
        Err(why) => format!("identity: refused: {why}"),
    });
    let policy = &config.policy;
    let verdict = policy::decide(policy, &request, || match resolved {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(None),
        Err(why) => Err(Some(why)),
    });
    let (text, allowed) = verdict_line(&verdict);
    lines.push(format!("decision: {text}"));
    let decision = verdict.decision();
    let because = policy.explain(decision);
    lines.push(match &verdict {
        Verdict::Unauthenticated { why: Some(_), .. } => {
            format!("because:  the credential was refused (see identity); {because}")
        }
        _ => format!("because:  {because}"),
    });
    if let Some(rule) = policy.rule(decision.rule()) {
        if let Some(line) = rule_line(config_text, rule.index) {
            lines.push(format!("rule at:  {}:{line}", policy.source));
        }
    }
    Ok(Explanation {
        text: lines.join("\n"),
        allowed,
    })
}

/// The request as `/verify` would see the proxy's original URL.
fn request<'a>(case: &Case<'a>) -> Result<Request<'a>, String> {
    let url = case.url;
    // Split as `/verify` splits the proxy's original URL.
    let (authority, target) = canonical::split_url(url)
        .ok_or_else(|| format!("--url: `{url}` is not an absolute URL"))?;
    let bad = |e: canonical::CanonicalError| format!("--url: {e} (the check would answer 400)");
    Ok(Request {
        host: Some(canonical::host(authority).map_err(bad)?),
        path: Some(canonical::path(target).map_err(bad)?),
        method: canonical::upper(case.method),
        client: case.client,
    })
}

/// The decision line, and whether the request would be let through.
fn verdict_line(verdict: &Verdict<Resolved, Option<String>>) -> (&'static str, bool) {
    match verdict {
        Verdict::Public(_) => ("allow (public, no credentials needed)", true),
        Verdict::Allowed { .. } => ("allow", true),
        Verdict::Closed(_) | Verdict::Denied { .. } => ("deny", false),
        Verdict::Unauthenticated { why: None, .. } => ("deny (sign-in required)", false),
        // The identity line said why.
        Verdict::Unauthenticated { why: Some(_), .. } => ("deny", false),
        Verdict::OutOfScope { .. } => (
            "deny (outside the token's scope: insufficient_scope)",
            false,
        ),
    }
}

/// Whoever asks, once their credential verified and is in standing.
struct Resolved {
    identity: Identity,
    grants: Option<Vec<scope::Grant>>,
}

impl Asker for Resolved {
    fn identity(&self) -> &Identity {
        &self.identity
    }
    fn grants(&self) -> Option<&[scope::Grant]> {
        self.grants.as_deref()
    }
}

/// Whoever `who` is (none without credentials), or why they cannot be let in.
fn resolve(
    config: &Config,
    who: &Who,
    request: &Request,
    now: i64,
    standings: &dyn Standings,
) -> Result<Option<Resolved>, String> {
    let found = |identity| {
        Ok(Some(Resolved {
            identity,
            grants: None,
        }))
    };
    match who {
        Who::Nobody => Ok(None),
        Who::User(user) => found(identity::from_user(user, &config.identity).map_err(string)?),
        Who::Cert(path) => {
            let cert = certificate(config, standings.trust(), path, now)?;
            match standings.certificate(&cert, now) {
                Standing::Live => {}
                Standing::Revoked(_) => return Err(CertError::Revoked.to_string()),
                Standing::Unknown(why) => return Err(why),
            }
            let who = identity::from_cert(&cert, &config.identity).map_err(string)?;
            if standings.locked(&who.user) {
                return Err(identity::IdentityError::Locked(who.user).to_string());
            }
            found(who)
        }
        Who::Token(token) => {
            let (claims, kind) = token_claims(config, token, now)?;
            match standings.token(&claims, now) {
                Standing::Live => {}
                Standing::Revoked(why) => return Err(format!("token {why}")),
                Standing::Unknown(why) => return Err(why),
            }
            let grants = match kind {
                TokenKind::Bearer => {
                    policy::bearer_limits(&claims, config.public_base(), request.host.as_deref())?
                }
                TokenKind::Session => None,
            };
            let identity = identity::from_claims(&claims, &config.identity).map_err(string)?;
            Ok(Some(Resolved { identity, grants }))
        }
    }
}

fn string(e: impl ToString) -> String {
    e.to_string()
}

/// The certificate in the PEM file at `path`, its chain verified with `trust` (else with
/// `client_ca.bundle` alone).
fn certificate(
    config: &Config,
    trust: Option<&TrustStore>,
    path: &Path,
    now: i64,
) -> Result<VerifiedCert, String> {
    let chain = read_chain(path)?;
    match trust {
        Some(trust) => trust.verify(&chain, now).map_err(string),
        None => TrustStore::new(&config.client_ca.bundle)
            .map_err(string)?
            .verify(&chain, now)
            .map_err(string),
    }
}

/// The claims of a bearer token, else of a session token, signature verified.
fn token_claims(
    config: &Config,
    token: &str,
    now: i64,
) -> Result<(std::sync::Arc<Claims>, TokenKind), String> {
    let keys = KeySet::load(&config.data_dir.join("keys")).map_err(string)?;
    let tokens = Tokens::new(keys, config.public_base());
    match tokens.verify(token, TokenKind::Bearer, now) {
        Ok(claims) => Ok((claims, TokenKind::Bearer)),
        Err(_) => tokens
            .verify(token, TokenKind::Session, now)
            .map(|claims| (claims, TokenKind::Session))
            .map_err(|e| format!("token: {e}")),
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
