//! `POST /logout`: revoke this session and clear the cookie; with `everywhere=1`, end every
//! session and bearer token of the user ("log out everywhere"). A cross-site POST has no effect.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::answer;
use super::extract::{self, RequestMeta};
use super::pages::Page;
use super::{cookie, redirect, AppState, Standing, State};
use crate::audit;
use crate::error::AppError;
use crate::jwt::Claims;

pub async fn handle(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let meta = RequestMeta::from_request(&req, &state);
    if let Err(e) = extract::same_site_post(&req, &state) {
        return state.reply(&meta, &e);
    }
    let now = state.clock.now();
    let everywhere = url::form_urlencoded::parse(&body)
        .any(|(k, v)| k == "everywhere" && matches!(v.as_ref(), "1" | "true" | "yes"));
    for verified in extract::session_tokens(&req, &state, now) {
        let Ok(claims) = verified else {
            continue;
        };
        // Already ended (by id, user, device or certificate): nothing more to record, and
        // replaying an ended cookie must not keep writing cut-offs.
        if matches!(state.standing(&claims, now), Standing::Revoked(_)) {
            continue;
        }
        if let Err(e) = end(&state, &meta, &claims, everywhere).await {
            return state.reply(&meta, &e);
        }
    }
    signed_out(&req, &body, &state, everywhere)
}

/// Ends the session `claims` (and with `everywhere`, every token of its user), counts and
/// audits it.
async fn end(
    state: &AppState,
    meta: &RequestMeta<'_>,
    claims: &Claims,
    everywhere: bool,
) -> Result<(), AppError> {
    let now_ms = state.clock.now_ms();
    // Off the request threads: storing may wait on the network (Redis).
    let revocations = std::sync::Arc::clone(&state.revocations);
    let (jti, exp, user) = (claims.jti.clone(), claims.exp, claims.sub.clone());
    let recorded = actix_web::web::block(move || {
        // Both, even if the first cannot be stored: each is in force here at once.
        let session = revocations.revoke_jti(&jti, exp);
        let all = if everywhere {
            revocations.revoke_user(&user, now_ms)
        } else {
            Ok(())
        };
        session.and(all)
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    // In force here already, but not kept: say so rather than pretend.
    recorded
        .map_err(|why| AppError::Internal(format!("the log-out could not be recorded: {why}")))?;
    let actor = audit::Actor {
        user: Some(&claims.sub),
        device: None,
        serial: claims.x5s.as_deref(),
        client: meta.client,
    };
    state
        .metrics
        .revocations
        .with_label_values(&["session"])
        .inc();
    audit::revoke(&actor, "session", &claims.jti, "logout");
    if everywhere {
        state.metrics.revocations.with_label_values(&["user"]).inc();
        audit::revoke(&actor, "user", &claims.sub, "log out everywhere");
    }
    Ok(())
}

/// The cookie cleared, and the way back (`rd`, when allowed) or the signed-out page.
fn signed_out(req: &HttpRequest, body: &[u8], state: &AppState, everywhere: bool) -> HttpResponse {
    let cfg = &state.config;
    let rd = url::form_urlencoded::parse(body)
        .chain(url::form_urlencoded::parse(req.query_string().as_bytes()))
        .find(|(k, _)| k == "rd")
        .and_then(|(_, v)| {
            redirect::validate(&v, &cfg.session.allowed_redirect_hosts, !cfg.session.secure)
        });
    let clear = cookie::clear(&cfg.session);
    let mut res = match rd {
        Some(url) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, url.as_str()))
            .finish(),
        None => answer::html(
            StatusCode::OK,
            state.pages.render(&Page::signed_out(everywhere)),
        ),
    };
    if let Ok(v) = header::HeaderValue::from_str(&clear) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}
