//! `POST /token`: a certificate holder (or a signed-in browser) trades its credential for a
//! bearer token, answered as RFC 6749 §5.1 JSON.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::extract::{self, RequestMeta};
use super::{AppState, State};
use crate::error::{AppError, OAuthError};
use crate::identity;
use crate::jwt::{Subject, TokenKind};

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

pub async fn handle(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let mut meta = RequestMeta::from_request(&req, &state);
    meta.wants_html = false;
    match mint(&req, &body, &state, &meta) {
        Ok(res) => res,
        Err(e) => state.reply(&meta, &e),
    }
}

fn oauth(error: OAuthError, description: impl Into<String>) -> AppError {
    AppError::OAuth {
        error,
        description: description.into(),
    }
}

fn mint(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    meta: &RequestMeta,
) -> Result<HttpResponse, AppError> {
    let cfg = &state.config;
    let now = state.clock.now();
    let form = extract::Form::parse(body);
    let ttl = ttl(form.get("ttl"), cfg.token.default_ttl, cfg.token.max_ttl)?;
    let scope = scope(form.get("scope"))?;
    let app_hosts = app_hosts(form.get("aud"))?;
    let (subject, not_after, device) = holder(req, state, meta)?;
    let subject = Subject {
        scope,
        app_hosts,
        ..subject
    };
    // A token minted from a session never outlives that session.
    let mut secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    if let Some(exp) = not_after {
        secs = secs.min(exp.saturating_sub(now)).max(1);
    }
    let (access_token, claims) = state
        .tokens
        .mint_at_ms(
            TokenKind::Bearer,
            &subject,
            secs,
            state.revocations.mint_time(
                &subject.user,
                subject.cert_serial.as_deref(),
                state.clock.now_ms(),
            ),
        )
        .map_err(|e| AppError::Internal(e.to_string()))?;
    state.issued(&claims, TokenKind::Bearer, device.as_deref(), meta);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: u64::try_from(secs).unwrap_or(0),
        }))
}

/// The `ttl` field: the default when absent, never more than `max`.
fn ttl(raw: Option<&str>, default: Duration, max: Duration) -> Result<Duration, AppError> {
    let ttl = match raw.filter(|v| !v.is_empty()) {
        None => default,
        Some(raw) => parse_ttl(raw).ok_or_else(|| {
            oauth(
                OAuthError::InvalidRequest,
                format!("ttl: `{raw}` is not a duration (use seconds or e.g. \"1h\")"),
            )
        })?,
    };
    if ttl > max {
        return Err(oauth(
            OAuthError::InvalidRequest,
            format!(
                "ttl: {} exceeds token.max_ttl ({})",
                humantime::format_duration(ttl),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(ttl)
}

/// The `scope` field, normalised. A scope only narrows: /verify applies the rules to the
/// holder as well, so a scoped token never carries more rights than the identity that minted
/// it.
fn scope(raw: Option<&str>) -> Result<Option<String>, AppError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    crate::policy::scope::parse(raw)
        .map_err(|e| oauth(OAuthError::InvalidScope, format!("scope: {e}")))?;
    Ok(Some(raw.split_whitespace().collect::<Vec<_>>().join(" ")))
}

/// The `aud` field: the app hosts (or https origins) the token is for; certgate refuses it
/// elsewhere.
fn app_hosts(raw: Option<&str>) -> Result<Vec<String>, AppError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Vec::new()),
        Some(raw) => audience(raw)
            .and_then(non_empty)
            .map_err(|e| oauth(OAuthError::InvalidTarget, format!("aud: {e}"))),
    }
}

/// Whom the token is for: the certificate's holder, else the session's. With the session's
/// expiry (a token never outlives it) and the certificate's device.
fn holder(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
) -> Result<(Subject, Option<i64>, Option<String>), AppError> {
    match extract::verified_cert(req, state, meta) {
        Ok(Some(cert)) => {
            let subject = state.cert_holder(&cert)?.subject_with_cert(&cert);
            Ok((subject, None, cert.cert().device.clone()))
        }
        Ok(None) => {
            let (subject, session_exp) = session_subject(req, state)?;
            Ok((subject, Some(session_exp), None))
        }
        Err(AppError::CertRejected(e)) => Err(oauth(OAuthError::InvalidClient, e.to_string())),
        Err(other) => Err(other),
    }
}

/// The session's holder and the session's expiry.
fn session_subject(req: &HttpRequest, state: &AppState) -> Result<(Subject, i64), AppError> {
    let claims = state.session(req).ok_or_else(|| {
        oauth(
            OAuthError::InvalidClient,
            "present a client certificate (curl --cert … --key …) or a session cookie",
        )
    })?;
    let subject =
        identity::from_claims(&claims, &state.config.identity)?.subject_with_session(&claims);
    Ok((subject, claims.exp))
}

fn non_empty(hosts: Vec<String>) -> Result<Vec<String>, String> {
    if hosts.is_empty() {
        Err("names no host".into())
    } else {
        Ok(hosts)
    }
}

/// Host names or https origins, separated by spaces or commas.
fn audience(raw: &str) -> Result<Vec<String>, String> {
    raw.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(|item| {
            let host = item
                .strip_prefix("https://")
                .unwrap_or(item)
                .trim_end_matches('/');
            let host =
                crate::policy::canonical::host(host).map_err(|e| format!("`{item}`: {e}"))?;
            let ok = host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if ok {
                Ok(host.into_owned())
            } else {
                Err(format!("`{item}` is not a host name or https origin"))
            }
        })
        .collect()
}

/// Seconds (`3600`) or a duration (`1h`, `90m`).
fn parse_ttl(raw: &str) -> Option<std::time::Duration> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return (secs > 0).then(|| std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(raw)
        .ok()
        .filter(|d| d.as_secs() > 0)
}
