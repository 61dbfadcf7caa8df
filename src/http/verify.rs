//! `/verify` (any method): the forward-auth check. The request is canonicalised and judged
//! by the rules; when they need to know who asks, the credentials are read in order: a
//! certgate bearer token, the session cookie, a certificate presented on this very request.
//! 200 with every identity header, or a challenge, 403 or 400; never 101, never a cookie
//! (proxies drop it), never cached.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use super::extract::{self, RequestMeta};
use super::AppState;
use crate::error::{AppError, Challenge};
use crate::identity::{self, Identity};
use crate::jwt::TokenKind;
use crate::policy::{canonical, scope, Decision, Request};

pub async fn handle(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let meta = RequestMeta::from_request(&req, &state);
    match check(&req, &state, &meta) {
        Ok(who) => allow(&state, who.as_ref()),
        Err(e) => state.reply(&meta, &e),
    }
}

/// `Some(identity)` when allowed for a user, `None` for a public (bypass) path.
fn check(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
) -> Result<Option<Identity>, AppError> {
    let request = policy_request(req, meta)?;
    let policy = state.policy();
    match policy.evaluate(&request, None) {
        Decision::Bypass { .. } => return Ok(None),
        d @ Decision::Deny { .. } => return Err(AppError::Forbidden(policy.explain(&d))),
        Decision::Allow { .. } | Decision::NeedsIdentity { .. } => {}
    }
    let (who, grants) = authenticate(req, state, meta)?;
    match policy.evaluate(&request, Some(&who)) {
        Decision::Allow { .. } | Decision::Bypass { .. } => {}
        d => {
            tracing::info!(event = "deny", user = %who.user, why = %policy.explain(&d), "access denied");
            return Err(AppError::Forbidden(policy.explain(&d)));
        }
    }
    if let Some(grants) = grants {
        if !scope::covers(&grants, &request) {
            return Err(AppError::InsufficientScope(
                "the token's scope does not cover this request".into(),
            ));
        }
    }
    Ok(Some(who))
}

/// The request as the rules see it: canonical host and path of the original URL (unknown when
/// the proxy did not say), the original method, and the client address.
fn policy_request(req: &HttpRequest, meta: &RequestMeta) -> Result<Request, AppError> {
    let bad = |e: canonical::CanonicalError| AppError::BadRequest(format!("original URL: {e}"));
    let (host, path) = match meta.original_url.as_deref().and_then(split_url) {
        Some((authority, target)) => (
            Some(canonical::host(authority).map_err(bad)?),
            Some(canonical::path(target).map_err(bad)?),
        ),
        None => (None, None),
    };
    Ok(Request {
        host,
        path,
        method: meta.method.as_str().to_ascii_uppercase(),
        client: extract::client_addr(meta.peer, meta.trusted_peer, req.headers()),
    })
}

/// `scheme://authority/target` as written, without the URL parser's own normalisation. The
/// authority runs to the first `/`; whatever it holds is judged by [`canonical::host`], which
/// refuses `@`, `?`, `#` and the like rather than guessing what the proxy served.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.split_once("://")?.1;
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    Some((authority, if target.is_empty() { "/" } else { target }))
}

/// The credential's holder, and the scope it is limited to (bearer tokens only).
fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
) -> Result<(Identity, Option<Vec<scope::Grant>>), AppError> {
    let cfg = &state.config;
    let now = state.clock.now();
    let challenge = |bearer_error: Option<&'static str>, reason: String| {
        AppError::Unauthenticated(Challenge {
            location: Some(state.auth_url(meta.original_url.as_deref())),
            redirect: wants_redirect(req),
            bearer_error,
            reason,
        })
    };

    if let Some(token) = extract::bearer(req) {
        // A foreign bearer token (the app's own API token) is not ours to judge.
        if state.tokens.claims_to_be_ours(token) {
            let claims = state
                .tokens
                .verify(token, TokenKind::Bearer, now)
                .map_err(|e| challenge(Some("invalid_token"), e.to_string()))?;
            if state.revocations.is_jti_revoked(&claims.jti) {
                return Err(challenge(Some("invalid_token"), "token revoked".into()));
            }
            if claims
                .x5s
                .as_deref()
                .is_some_and(|s| state.trust.is_serial_revoked(s))
            {
                return Err(challenge(
                    Some("invalid_token"),
                    "the certificate behind this token was revoked".into(),
                ));
            }
            // A token with app audiences is good only on those hosts (RFC 8707).
            let hosts = claims.aud.app_hosts(state.tokens.issuer());
            if !hosts.is_empty() {
                match meta_host(meta) {
                    Some(host) if hosts.contains(&host) => {}
                    other => {
                        let what = other.unwrap_or_else(|| "a request of unknown host".into());
                        return Err(challenge(
                            Some("invalid_token"),
                            format!("the token is not meant for {what}"),
                        ));
                    }
                }
            }
            let grants = claims
                .scope
                .as_deref()
                .map(scope::parse)
                .transpose()
                .map_err(|e| challenge(Some("invalid_token"), e))?;
            return Ok((identity::from_claims(&claims, &cfg.identity)?, grants));
        }
    }

    let mut cookie_problem = None;
    for value in extract::session_cookies(req, &cfg.session.cookie_name) {
        match state.tokens.verify(&value, TokenKind::Session, now) {
            Ok(claims) if state.revocations.is_jti_revoked(&claims.jti) => {
                cookie_problem = Some("session revoked".to_string());
            }
            Ok(claims)
                if claims
                    .x5s
                    .as_deref()
                    .is_some_and(|s| state.trust.is_serial_revoked(s)) =>
            {
                cookie_problem =
                    Some("the certificate behind this session was revoked".to_string());
            }
            Ok(claims) => return Ok((identity::from_claims(&claims, &cfg.identity)?, None)),
            Err(e) => cookie_problem = Some(format!("session cookie: {e}")),
        }
    }

    match extract::verified_cert(req, state, meta) {
        Ok(Some(cert)) => return Ok((identity::from_cert(&cert, &cfg.identity)?, None)),
        Ok(None) => {}
        // A bad certificate cannot authenticate; send the person to /auth, which says why.
        // A malformed header is a 401 here too: nginx turns any other auth answer into a 500.
        Err(AppError::CertRejected(e)) => return Err(challenge(None, e.to_string())),
        Err(AppError::BadRequest(why)) => return Err(challenge(None, why)),
        Err(other) => return Err(other),
    }
    Err(challenge(
        None,
        cookie_problem.unwrap_or_else(|| "no credentials".into()),
    ))
}

/// The canonical host of the original request, if the proxy said.
fn meta_host(meta: &RequestMeta) -> Option<String> {
    meta.original_url
        .as_deref()
        .and_then(split_url)
        .and_then(|(authority, _)| canonical::host(authority).ok())
}

/// Traefik and Caddy pass the auth answer to the client as it is: they ask for a 302.
fn wants_redirect(req: &HttpRequest) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "redirect" && matches!(v.as_ref(), "1" | "true" | "yes"))
}

/// 200 with all four identity headers, empty for a public path, so a client-sent value can
/// never pass through.
fn allow(state: &AppState, who: Option<&Identity>) -> HttpResponse {
    let h = &state.config.headers;
    let mut res = HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish();
    let groups = who.map(|w| w.groups.join(",")).unwrap_or_default();
    for (name, value) in [
        (&h.user, who.map_or("", |w| w.user.as_str())),
        (&h.groups, groups.as_str()),
        (&h.email, who.and_then(|w| w.email.as_deref()).unwrap_or("")),
        (&h.name, who.and_then(|w| w.name.as_deref()).unwrap_or("")),
    ] {
        let value =
            HeaderValue::from_bytes(value.as_bytes()).unwrap_or(HeaderValue::from_static(""));
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            res.headers_mut().insert(name, value);
        }
    }
    res
}
