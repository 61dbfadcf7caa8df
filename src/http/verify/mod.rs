//! `/verify` (any method): the forward-auth check. The request is canonicalised and judged
//! by the rules; when they need to know who asks, the credentials are read in order: a
//! certgate bearer token, the session cookie, a certificate presented on this very request.
//! 200 with every identity header, or a challenge, 403 or 400; never 101, never a cookie
//! (proxies drop it), never cached.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

mod holder;

pub use holder::{Holder, Holders};

use crate::audit;
use crate::error::{AppError, BadInput, Challenge, Code, Denial, Outcome, Refused};
use crate::http::extract::{self, Incoming, RequestMeta};
use crate::http::{AppState, Standing, State};
use crate::identity;
use crate::jwt::{Claims, TokenKind};
use crate::policy::{canonical, scope, Decision, Request};

/// The route, for what [`super::Front`] leaves to the App: a `/verify` spelled with
/// percent-escapes.
pub async fn handle(req: HttpRequest, state: State) -> HttpResponse {
    answer(&req, &state)
}

/// The check and its metrics.
pub fn answer(req: &dyn Incoming, state: &AppState) -> HttpResponse {
    let started = std::time::Instant::now();
    let meta = RequestMeta::from_request(req, state);
    let outcome = check(req, state, &meta);
    let (result, reason) = match &outcome {
        Ok(allowed) => (Outcome::Allow, allowed.via),
        Err(e) => e.labels(),
    };
    let res = match outcome {
        Ok(allowed) => allow(state, allowed.who),
        Err(e) => state.reply(&meta, &e),
    };
    state.metrics.decided(result.as_str(), reason.as_str());
    state
        .metrics
        .check_seconds
        .observe(started.elapsed().as_secs_f64());
    res
}

/// An allowed request: who (none on a public path), and by which credential.
struct Allowed {
    who: Option<Arc<Holder>>,
    /// bypass, bearer, session or certificate.
    via: Code,
}

/// The credential's holder, what it limits them to, and its kind.
struct Authenticated {
    who: Arc<Holder>,
    grants: Option<Vec<scope::Grant>>,
    via: Code,
    /// For the audit line of a refusal: the token, or the certificate's serial and device.
    from: Source,
}

enum Source {
    Token(Arc<Claims>),
    Certificate {
        serial: crate::cert::Serial,
        device: Option<String>,
    },
}

fn check(req: &dyn Incoming, state: &AppState, meta: &RequestMeta) -> Result<Allowed, AppError> {
    let request = policy_request(meta)?;
    let policy = &state.policy;
    match policy.evaluate(&request, None) {
        Decision::Bypass { .. } => {
            return Ok(Allowed {
                who: None,
                via: Code::Bypass,
            })
        }
        d @ Decision::Deny { rule } => {
            return Err(AppError::Forbidden(Denial::ByRule {
                user: None,
                rule,
                because: policy.explain_briefly(&d),
            }))
        }
        Decision::Allow { .. } | Decision::NeedsIdentity { .. } => {}
    }
    let auth = authenticate(req, state, meta, request.host.as_deref())?;
    let deny = |why: &str| {
        let actor = audit::Actor {
            user: Some(&auth.who.identity.user),
            device: match &auth.from {
                Source::Certificate { device, .. } => device.as_deref(),
                Source::Token(_) => None,
            },
            serial: match &auth.from {
                Source::Certificate { serial, .. } => Some(serial.as_str()),
                Source::Token(claims) => claims.x5s.as_deref(),
            },
            client: request.client,
        };
        // Host and path only: a query string may carry secrets (reset links, codes).
        let url = format!(
            "{}{}",
            request.host.as_deref().unwrap_or(""),
            request.path.as_deref().unwrap_or("")
        );
        audit::deny(&actor, &url, why);
    };
    match policy.evaluate(&request, Some(&auth.who.identity)) {
        Decision::Allow { .. } | Decision::Bypass { .. } => {}
        d => {
            let why = policy.explain_briefly(&d);
            deny(&why);
            let rule = match d {
                Decision::Bypass { rule } => Some(rule),
                Decision::Allow { rule }
                | Decision::Deny { rule }
                | Decision::NeedsIdentity { rule } => rule,
            };
            return Err(AppError::Forbidden(Denial::ByRule {
                user: Some(auth.who.identity.user.clone()),
                rule,
                because: why,
            }));
        }
    }
    if let Some(grants) = &auth.grants {
        if !scope::covers(grants, &request) {
            deny(crate::error::OUT_OF_SCOPE);
            return Err(AppError::InsufficientScope);
        }
    }
    Ok(Allowed {
        who: Some(auth.who),
        via: auth.via,
    })
}

/// The request as the rules see it: canonical host and path of the original URL (unknown when
/// the proxy did not say), the original method, and the client address.
fn policy_request<'a>(meta: &'a RequestMeta<'_>) -> Result<Request<'a>, AppError> {
    let bad = |e| AppError::BadRequest(BadInput::OriginalUrl(e));
    let (host, path) = match meta.original_url.as_deref().and_then(canonical::split_url) {
        Some((authority, target)) => (
            Some(canonical::host(authority).map_err(bad)?),
            Some(canonical::path(target).map_err(bad)?),
        ),
        None => (None, None),
    };
    Ok(Request {
        host,
        path,
        method: canonical::upper(meta.method.as_str()),
        client: meta.client,
    })
}

/// Reads the credentials in order: bearer token, session cookie, certificate. `host` is the
/// request's canonical host, if the proxy said.
fn authenticate(
    req: &dyn Incoming,
    state: &AppState,
    meta: &RequestMeta,
    host: Option<&str>,
) -> Result<Authenticated, AppError> {
    let cfg = &state.config;
    let now = state.clock.now();
    let challenge = |refused: Option<Refused>, reason: String| {
        AppError::Unauthenticated(Challenge {
            location: Some(state.auth_url(meta.original_url.as_deref())),
            redirect: wants_redirect(req),
            refused,
            reason,
        })
    };
    let from_claims = |claims: Arc<Claims>, via| -> Result<Authenticated, AppError> {
        Ok(Authenticated {
            who: state.holders.of(&claims, &cfg.identity)?,
            grants: None,
            via,
            from: Source::Token(claims),
        })
    };

    if let Some(token) = extract::bearer(req) {
        // A foreign bearer token (the app's own API token) is not ours to judge.
        if state.tokens.claims_to_be_ours(token) {
            let invalid = |why| challenge(Some(Refused::Invalid(TokenKind::Bearer)), why);
            let claims = state
                .tokens
                .verify(token, TokenKind::Bearer, now)
                .map_err(|e| invalid(e.to_string()))?;
            match state.standing(&claims, now) {
                Standing::Live => {}
                Standing::Revoked(why) => {
                    return Err(challenge(
                        Some(Refused::Revoked(TokenKind::Bearer)),
                        format!("token {why}"),
                    ))
                }
                Standing::Unknown(why) => return Err(AppError::Unavailable(why)),
            }
            // A token with app audiences is good only on those hosts (RFC 8707).
            let hosts = claims.aud.app_hosts(state.tokens.issuer());
            if !hosts.is_empty() {
                match host {
                    Some(host) if hosts.iter().any(|h| h == host) => {}
                    other => {
                        let what = other.unwrap_or("a request of unknown host");
                        return Err(invalid(format!("the token is not meant for {what}")));
                    }
                }
            }
            let grants = claims
                .scope
                .as_deref()
                .map(scope::parse)
                .transpose()
                .map_err(invalid)?;
            let mut auth = from_claims(claims, Code::Bearer)?;
            auth.grants = grants;
            return Ok(auth);
        }
    }

    let mut cookie_problem = None;
    for verified in extract::session_tokens(req, state, now) {
        match verified {
            Ok(claims) => match state.standing(&claims, now) {
                Standing::Live => return from_claims(claims, Code::Session),
                Standing::Revoked(why) => {
                    cookie_problem = Some((
                        Refused::Revoked(TokenKind::Session),
                        format!("session {why}"),
                    ))
                }
                Standing::Unknown(why) => return Err(AppError::Unavailable(why)),
            },
            Err(e) => {
                cookie_problem = Some((
                    Refused::Invalid(TokenKind::Session),
                    format!("session cookie: {e}"),
                ))
            }
        }
    }

    match extract::verified_cert(req, state, meta) {
        Ok(Some(cert)) => {
            let c = cert.cert();
            return Ok(Authenticated {
                who: Arc::new(Holder::new(identity::from_cert(&cert, &cfg.identity)?)),
                grants: None,
                via: Code::Certificate,
                from: Source::Certificate {
                    serial: c.serial.clone(),
                    device: c.device.clone(),
                },
            });
        }
        Ok(None) => {}
        // A bad certificate cannot authenticate; send the person to /auth, which says why.
        // A malformed header is a 401 here too: nginx turns any other auth answer into a 500.
        Err(AppError::CertRejected(e)) => {
            return Err(challenge(Some(Refused::Certificate), e.to_string()))
        }
        Err(AppError::BadRequest(why)) => {
            return Err(challenge(Some(Refused::Certificate), why.to_string()))
        }
        Err(other) => return Err(other),
    }
    Err(match cookie_problem {
        Some((refused, reason)) => challenge(Some(refused), reason),
        None => challenge(None, "no credentials".into()),
    })
}

/// Traefik and Caddy pass the auth answer to the client as it is: they ask for a 302.
fn wants_redirect(req: &dyn Incoming) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "redirect" && matches!(v.as_ref(), "1" | "true" | "yes"))
}

/// 200 with all four identity headers, empty for a public path, so a client-sent value can
/// never pass through. `append`, not `insert`: the response is new, so there is nothing to
/// replace, and `insert` would look for it.
fn allow(state: &AppState, who: Option<Arc<Holder>>) -> HttpResponse {
    let h = &state.config.headers;
    let mut res = HttpResponse::new(actix_web::http::StatusCode::OK);
    let headers = res.headers_mut();
    headers.append(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let names = [&h.user, &h.groups, &h.email, &h.name];
    match who {
        Some(w) => {
            for (name, value) in names.into_iter().zip(&w.values) {
                headers.append(name.clone(), value.clone());
            }
        }
        None => {
            for name in names {
                headers.append(name.clone(), HeaderValue::from_static(""));
            }
        }
    }
    res
}
