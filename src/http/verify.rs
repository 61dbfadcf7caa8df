//! `/verify` (any method): the forward-auth check. Credentials in order: a certgate bearer
//! token, the session cookie, a certificate presented on this very request. 200 with every
//! identity header, or a challenge; never 101, never a cookie (proxies drop it), never cached.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use super::extract::{self, RequestMeta};
use super::AppState;
use crate::error::{AppError, Challenge};
use crate::identity::{self, Identity};
use crate::jwt::TokenKind;

pub async fn handle(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let meta = RequestMeta::from_request(&req, &state);
    match check(&req, &state, &meta) {
        Ok(who) => allow(&state, &who),
        Err(e) => state.reply(&meta, &e),
    }
}

fn check(req: &HttpRequest, state: &AppState, meta: &RequestMeta) -> Result<Identity, AppError> {
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
            return Ok(identity::from_claims(&claims, &cfg.identity)?);
        }
    }

    let mut cookie_problem = None;
    for value in extract::session_cookies(req, &cfg.session.cookie_name) {
        match state.tokens.verify(&value, TokenKind::Session, now) {
            Ok(claims) if state.revocations.is_jti_revoked(&claims.jti) => {
                cookie_problem = Some("session revoked".to_string());
            }
            Ok(claims) => return Ok(identity::from_claims(&claims, &cfg.identity)?),
            Err(e) => cookie_problem = Some(format!("session cookie: {e}")),
        }
    }

    match extract::verified_cert(req, state, meta) {
        Ok(Some(cert)) => return Ok(identity::from_cert(&cert, &cfg.identity)?),
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

/// Traefik and Caddy pass the auth answer to the client as it is: they ask for a 302.
fn wants_redirect(req: &HttpRequest) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "redirect" && matches!(v.as_ref(), "1" | "true" | "yes"))
}

fn allow(state: &AppState, who: &Identity) -> HttpResponse {
    let h = &state.config.headers;
    let mut res = HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish();
    let groups = who.groups.join(",");
    // Always all four, empty when unknown, so a client-sent value can never pass through.
    for (name, value) in [
        (&h.user, who.user.as_str()),
        (&h.groups, groups.as_str()),
        (&h.email, who.email.as_deref().unwrap_or("")),
        (&h.name, who.name.as_deref().unwrap_or("")),
    ] {
        let value =
            HeaderValue::from_bytes(value.as_bytes()).unwrap_or(HeaderValue::from_static(""));
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            res.headers_mut().insert(name, value);
        }
    }
    res
}
