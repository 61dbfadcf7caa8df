//! `/verify` (any method): the forward-auth check, in stages. The request is canonicalised
//! and [`policy::decide`] judges it by the rules, the same function `certgate explain` calls;
//! when the rules need to know who asks, the credential is found and checked for revocation
//! (`credentials`) and its holder resolved (`holder`). 200 with every identity header, or
//! a challenge, 403 or 400; never 101, never a cookie (proxies drop it), never cached.

mod credentials;
mod holder;

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::audit;
use crate::error::{AppError, BadInput, Challenge, Code, Denial, Outcome, Refused, OUT_OF_SCOPE};
use crate::http::extract::{Incoming, RequestMeta};
use crate::http::{AppState, State};
use crate::policy::{self, canonical, Request, Verdict};
use holder::{Authenticated, Source};
pub use holder::{Holder, Holders};

/// The route, for what [`super::Front`] leaves to the App: a `/verify` spelled with
/// percent-escapes.
pub async fn handle(req: HttpRequest, state: State) -> HttpResponse {
    answer(&req, &state)
}

/// The check and its metrics.
pub fn answer(req: &dyn Incoming, state: &AppState) -> HttpResponse {
    let started = std::time::Instant::now();
    let meta = RequestMeta::from_request(req, state);
    let outcome = check(&Check {
        req,
        state,
        meta: &meta,
    });
    let (result, reason) = match &outcome {
        Ok(allowed) => (Outcome::Allow, allowed.via),
        Err(e) => e.labels(),
    };
    let res = match outcome {
        Ok(allowed) => allow(state, allowed.who),
        Err(e) => state.reply(&meta, &e),
    };
    state.metrics.decided(result, reason);
    state
        .metrics
        .check_seconds
        .observe(started.elapsed().as_secs_f64());
    res
}

/// One check: the request, the state it is judged in, and what the proxy said about it.
struct Check<'a> {
    req: &'a dyn Incoming,
    state: &'a AppState,
    meta: &'a RequestMeta<'a>,
}

impl Check<'_> {
    /// Asks for credentials: a browser is sent to `/auth` and back to the original URL.
    fn challenge(&self, refused: Option<Refused>, reason: String) -> AppError {
        AppError::Unauthenticated(Challenge {
            location: Some(self.state.auth_url(self.meta.original_url.as_deref())),
            redirect: wants_redirect(self.req),
            refused,
            reason,
        })
    }
}

/// An allowed request: who (none on a public path), and by which credential.
struct Allowed {
    who: Option<Arc<Holder>>,
    /// bypass, bearer, session or certificate.
    via: Code,
}

fn check(ck: &Check<'_>) -> Result<Allowed, AppError> {
    let request = policy_request(ck.meta)?;
    let policy = &ck.state.policy;
    let host = request.host.as_deref();
    match policy::decide(policy, &request, || authenticate(ck, host)) {
        Verdict::Public(_) => Ok(Allowed {
            who: None,
            via: Code::Bypass,
        }),
        Verdict::Closed(decision) => Err(AppError::Forbidden(Denial::ByRule {
            user: None,
            rule: decision.rule(),
            because: policy.explain_briefly(&decision),
        })),
        Verdict::Unauthenticated { why, .. } => Err(why),
        Verdict::Allowed { asker, .. } => Ok(Allowed {
            who: Some(asker.who),
            via: asker.via,
        }),
        Verdict::Denied { decision, asker } => {
            let because = policy.explain_briefly(&decision);
            audit_deny(&asker, &request, &because);
            Err(AppError::Forbidden(Denial::ByRule {
                user: Some(asker.who.identity.user.clone()),
                rule: decision.rule(),
                because,
            }))
        }
        Verdict::OutOfScope { asker, .. } => {
            audit_deny(&asker, &request, OUT_OF_SCOPE);
            Err(AppError::InsufficientScope)
        }
    }
}

/// The stages that find who asks: the credential (verified, in standing), then its holder.
fn authenticate(ck: &Check<'_>, host: Option<&str>) -> Result<Authenticated, AppError> {
    let credential = credentials::find(ck, ck.state.clock.now_coarse())?;
    holder::resolve(ck, credential, host)
}

/// The audit line of a holder refused by the rules or their token's scope.
fn audit_deny(auth: &Authenticated, request: &Request, why: &str) {
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
