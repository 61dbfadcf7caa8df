//! `GET /auth?rd=URL`: certificate ▶ identity ▶ session cookie ▶ back to `rd`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use super::answer;
use super::extract::{self, RequestMeta};
use super::pages::Page;
use super::{cookie, redirect, AppState, State};
use crate::audit;
use crate::error::AppError;
use crate::jwt::{JwtError, TokenKind};

pub async fn handle(req: HttpRequest, state: State) -> HttpResponse {
    let mut meta = RequestMeta::from_request(&req, &state);
    // /auth is navigated to by the browser itself: answer it as a person.
    meta.wants_html = meta.wants_html || !req.headers().contains_key(header::ACCEPT);
    match login(&req, &state, &meta) {
        Ok(res) => res,
        Err(e) => {
            let (_, reason) = e.labels();
            state
                .metrics
                .logins
                .with_label_values(&[reason.as_str()])
                .inc();
            let actor = audit::Actor {
                client: meta.client,
                ..audit::Actor::default()
            };
            audit::login_refused(&actor, &e.to_string());
            state.reply(&meta, &e)
        }
    }
}

fn login(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
) -> Result<HttpResponse, AppError> {
    let cfg = &state.config;
    let cert = extract::verified_cert(req, state, meta)?
        .ok_or_else(|| AppError::NoCertificate(extract::why_no_cert(req, state, meta)))?;
    let who = state.cert_holder(&cert)?;
    let (_, set_cookie) = mint_session(state, &cert, &who, meta)?;
    let target = rd_param(req).and_then(|rd| {
        let url = redirect::validate(
            &rd,
            &cfg.session.allowed_redirect_hosts,
            !cfg.session.secure,
        );
        if url.is_none() {
            // The value may carry tokens in its query: log its size, not its content.
            tracing::warn!(
                rd_len = rd.len(),
                "refused redirect target; showing the default page"
            );
        }
        url
    });
    let res = match target {
        Some(url) => HttpResponse::Found()
            .insert_header((header::LOCATION, url.as_str()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::SET_COOKIE, set_cookie))
            .finish(),
        None => {
            let mut res = answer::html(
                actix_web::http::StatusCode::OK,
                state.pages.render(&Page::signed_in(&who.user, &who.groups)),
            );
            if let Ok(v) = header::HeaderValue::from_str(&set_cookie) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
    };
    Ok(res)
}

/// A session for `who`, signed in with `cert` now: the token's claims and the `Set-Cookie`
/// value that carries it. Recorded for the status page and remembered by the token cache.
pub(super) fn mint_session(
    state: &AppState,
    cert: &crate::cert::VerifiedCert,
    who: &crate::identity::Identity,
    meta: &RequestMeta,
) -> Result<(crate::jwt::Claims, String), AppError> {
    let cfg = &state.config;
    let ttl = cfg.session.ttl;
    let subject = who.clone().subject_with_cert(cert);
    let (jwt, claims) = state
        .tokens
        .mint_at_ms(
            TokenKind::Session,
            &subject,
            i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            state.revocations.mint_time(
                &who.user,
                subject.cert_serial.as_deref(),
                state.clock.now_ms(),
            ),
        )
        .map_err(|e: JwtError| AppError::Internal(e.to_string()))?;
    state.issued(
        &claims,
        TokenKind::Session,
        cert.cert().device.as_deref(),
        meta,
    );
    // Found on the next check even behind junk values of the cookie's name (verify_each).
    state
        .tokens
        .remember(&jwt, TokenKind::Session, claims.clone());
    Ok((claims, cookie::session(&cfg.session, &jwt, ttl)))
}

/// `rd` exactly once; two values are ambiguous and get the default page.
fn rd_param(req: &HttpRequest) -> Option<String> {
    let mut values = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned());
    let first = values.next()?;
    values.next().is_none().then_some(first)
}
