//! `POST /token`: a certificate holder (or a signed-in browser) trades its credential for a
//! bearer token, answered as RFC 6749 §5.1 JSON.

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
    let field = |name: &str| form.get(name);

    let max = cfg.token.max_ttl;
    let ttl = match field("ttl").filter(|v| !v.is_empty()) {
        None => cfg.token.default_ttl,
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
    // A scope only narrows: /verify applies the rules to the holder as well, so a scoped
    // token never carries more rights than the identity that minted it.
    let scope = match field("scope").map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => {
            crate::policy::scope::parse(raw)
                .map_err(|e| oauth(OAuthError::InvalidScope, format!("scope: {e}")))?;
            Some(raw.split_whitespace().collect::<Vec<_>>().join(" "))
        }
    };

    // `aud`: the app hosts (or https origins) the token is for; certgate refuses it elsewhere.
    let app_hosts = match field("aud").map(str::trim).filter(|s| !s.is_empty()) {
        None => Vec::new(),
        Some(raw) => audience(raw)
            .and_then(non_empty)
            .map_err(|e| oauth(OAuthError::InvalidTarget, format!("aud: {e}")))?,
    };

    // A token minted from a session never outlives that session.
    let mut not_after = None;
    let mut device = None;
    let subject = match extract::verified_cert(req, state, meta) {
        Ok(Some(cert)) => {
            device.clone_from(&cert.cert().device);
            let who = identity::from_cert(&cert, &cfg.identity)?;
            Subject {
                user: who.user,
                groups: who.groups,
                email: who.email,
                name: who.name,
                scope: None,
                cert_thumbprint: Some(cert.cert().thumbprint.clone()),
                cert_serial: Some(cert.cert().serial.to_string()),
                cert_ca: Some(cert.issuer().claim()),
                app_hosts: Vec::new(),
            }
        }
        Ok(None) => {
            let (subject, session_exp) = session_subject(req, state)?;
            not_after = Some(session_exp);
            subject
        }
        Err(AppError::CertRejected(e)) => {
            return Err(oauth(OAuthError::InvalidClient, e.to_string()))
        }
        Err(other) => return Err(other),
    };
    let subject = Subject {
        scope,
        app_hosts,
        ..subject
    };
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

/// The session's holder and the session's expiry.
fn session_subject(req: &HttpRequest, state: &AppState) -> Result<(Subject, i64), AppError> {
    let claims = state.session(req).ok_or_else(|| {
        oauth(
            OAuthError::InvalidClient,
            "present a client certificate (curl --cert … --key …) or a session cookie",
        )
    })?;
    let who = identity::from_claims(&claims, &state.config.identity)?;
    let subject = Subject {
        user: who.user,
        groups: who.groups,
        email: who.email,
        name: who.name,
        scope: None,
        cert_thumbprint: claims.cnf.as_ref().map(|c| c.x5t_s256.clone()),
        cert_serial: claims.x5s.clone(),
        cert_ca: claims.x5ca.clone(),
        app_hosts: Vec::new(),
    };
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
