//! `POST /logout`: revoke this session and clear the cookie. A cross-site POST has no effect.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::extract::{self, RequestMeta};
use super::pages::Page;
use super::{cookie, redirect, AppState};
use crate::error;
use crate::jwt::TokenKind;

pub async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let meta = RequestMeta::from_request(&req, &state);
    if let Err(e) = extract::same_site_post(&req, &state) {
        return state.reply(&meta, &e);
    }
    let cfg = &state.config;
    let now = state.clock.now();
    for value in extract::session_cookies(&req, &cfg.session.cookie_name) {
        if let Ok(claims) = state.tokens.verify(&value, TokenKind::Session, now) {
            state.revocations.revoke_jti(&claims.jti, claims.exp, now);
            tracing::info!(event = "logout", user = %claims.sub, jti = %claims.jti, peer = ?meta.peer, "session revoked");
        }
    }
    let rd = url::form_urlencoded::parse(&body)
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
        None => error::html(StatusCode::OK, state.pages.render(&Page::signed_out())),
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
