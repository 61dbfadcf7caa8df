//! `POST /oidc/token`: a code (with PKCE) or a refresh token becomes an ID token, an access
//! token and, with `offline_access`, a new refresh token (RFC 6749 §4.1.3, §6; OpenID Connect
//! Core §3.1.3). Clients authenticate with HTTP Basic, the form, or (public clients) not at
//! all; secrets are compared in constant time.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;

use super::super::extract::RequestMeta;
use super::super::{answer, AppState, Standing, State};
use crate::error::{AppError, OAuthError};
use crate::identity::Identity;
use crate::oidc::{
    grants, AuthMethod, Client, Grant, IdToken, Profile, Provider, Redeemed, Refreshed,
};

pub async fn handle(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let meta = RequestMeta::from_request(&req, &state);
    let Some(provider) = state.oidc.clone() else {
        return super::not_configured();
    };
    match token(&req, &body, &state, &provider) {
        Ok(json) => {
            let mut res = answer::json(StatusCode::OK, &json);
            res.headers_mut()
                .insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
            res
        }
        Err(e) => {
            let mut res = state.reply(&meta, &e);
            if matches!(
                e,
                AppError::OAuth {
                    error: OAuthError::InvalidClient,
                    ..
                }
            ) {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic realm=\"certgate\""),
                );
            }
            res
        }
    }
}

pub(super) fn oauth(error: OAuthError, description: impl Into<String>) -> AppError {
    AppError::OAuth {
        error,
        description: description.into(),
    }
}

fn token(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    provider: &Provider,
) -> Result<serde_json::Value, AppError> {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !form_type.is_some_and(|t| t.eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
        return Err(oauth(
            OAuthError::InvalidRequest,
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    let params = super::params(body).map_err(|why| oauth(OAuthError::InvalidRequest, why))?;
    let get = |name: &str| params.get(name).map(String::as_str);
    let client = client(req, provider, get("client_id"), get("client_secret"))?;
    let now = state.clock.now();
    match get("grant_type") {
        Some("authorization_code") => {
            let code =
                get("code").ok_or_else(|| oauth(OAuthError::InvalidRequest, "code is missing"))?;
            let (grant, redirect_uri, challenge) = match provider
                .grants
                .redeem(&grants::hash(code), now)
                .map_err(unavailable)?
            {
                Redeemed::Fresh {
                    grant,
                    redirect_uri,
                    challenge,
                } => (grant, redirect_uri, challenge),
                Redeemed::Replayed => {
                    tracing::warn!(target: "audit", event = "oidc_code_replayed", client = %client.id, "an authorization code was presented twice: its grant is revoked");
                    return Err(oauth(
                        OAuthError::InvalidGrant,
                        "the code was used already; every token issued from it is revoked",
                    ));
                }
                Redeemed::Expired | Redeemed::Unknown => {
                    return Err(oauth(
                        OAuthError::InvalidGrant,
                        "the code is unknown or expired",
                    ))
                }
            };
            if grant.made.client_id != client.id {
                provider
                    .grants
                    .revoke(&grant.id, state.clock.now_ms())
                    .map_err(unavailable)?;
                return Err(oauth(
                    OAuthError::InvalidGrant,
                    "the code was issued to another client",
                ));
            }
            if get("redirect_uri") != Some(redirect_uri.as_str()) {
                return Err(oauth(
                    OAuthError::InvalidGrant,
                    "redirect_uri is not the one the code was issued for",
                ));
            }
            match (challenge.as_deref(), get("code_verifier")) {
                (Some(c), Some(v)) if crate::oidc::pkce_matches(c, v) => {}
                (Some(_), _) => {
                    return Err(oauth(
                        OAuthError::InvalidGrant,
                        "code_verifier does not match the code_challenge",
                    ))
                }
                // A verifier for a code issued without a challenge: a PKCE downgrade
                // (authentik CVE-2024-23647).
                (None, Some(_)) => {
                    return Err(oauth(
                        OAuthError::InvalidGrant,
                        "the code was issued without a code_challenge",
                    ))
                }
                (None, None) => {}
            }
            let who = live(state, provider, &grant, now)?;
            issue(state, provider, client, &grant, &who, true)
        }
        Some("refresh_token") => {
            let refresh = get("refresh_token")
                .ok_or_else(|| oauth(OAuthError::InvalidRequest, "refresh_token is missing"))?;
            let grant = match provider
                .grants
                .refresh(&grants::hash(refresh), now)
                .map_err(unavailable)?
            {
                Refreshed::Fresh(grant) => grant,
                Refreshed::Reused => {
                    tracing::warn!(target: "audit", event = "oidc_refresh_reused", client = %client.id, "a refresh token was presented twice: its grant is revoked");
                    return Err(oauth(
                        OAuthError::InvalidGrant,
                        "the refresh token was used already; the sign-in is revoked",
                    ));
                }
                Refreshed::Expired | Refreshed::Unknown => {
                    return Err(oauth(
                        OAuthError::InvalidGrant,
                        "the refresh token is unknown or expired",
                    ))
                }
            };
            if grant.made.client_id != client.id {
                provider
                    .grants
                    .revoke(&grant.id, state.clock.now_ms())
                    .map_err(unavailable)?;
                return Err(oauth(
                    OAuthError::InvalidGrant,
                    "the refresh token was issued to another client",
                ));
            }
            let who = live(state, provider, &grant, now)?;
            issue(state, provider, client, &grant, &who, false)
        }
        Some(crate::oidc::DEVICE_GRANT) => {
            let code = get("device_code")
                .ok_or_else(|| oauth(OAuthError::InvalidRequest, "device_code is missing"))?;
            super::device::exchange(state, provider, client, code, now)
        }
        Some(_) => Err(oauth(
            OAuthError::UnsupportedGrantType,
            "grant_type must be authorization_code, refresh_token or urn:ietf:params:oauth:grant-type:device_code",
        )),
        None => Err(oauth(OAuthError::InvalidRequest, "grant_type is missing")),
    }
}

pub(super) fn unavailable(e: crate::db::DbError) -> AppError {
    AppError::Unavailable(format!("the grants cannot be read: {e}"))
}

/// The client the request authenticates as, by its configured method.
pub(super) fn client<'a>(
    req: &HttpRequest,
    provider: &'a Provider,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<&'a Client, AppError> {
    let invalid = |why: &str| oauth(OAuthError::InvalidClient, why);
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .map(|b64| {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| invalid("the Basic credentials are not base64 of id:secret"))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| invalid("the Basic credentials are not id:secret"))?;
            // RFC 6749 §2.3.1: each is form-urlencoded before it is joined.
            let unescape = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Ok::<_, AppError>((unescape(id), unescape(secret)))
        })
        .transpose()?;
    let (id, secret, method) = match (basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => {
            return Err(oauth(
                OAuthError::InvalidRequest,
                "use one way to authenticate the client, not Basic and client_secret",
            ))
        }
        (Some((id, secret)), form, None) => {
            if form.is_some_and(|f| f != id) {
                return Err(invalid("client_id differs from the Basic credentials"));
            }
            (id, Some(secret), AuthMethod::SecretBasic)
        }
        (None, Some(id), Some(secret)) => (
            id.to_string(),
            Some(secret.to_string()),
            AuthMethod::SecretPost,
        ),
        (None, Some(id), None) => (id.to_string(), None, AuthMethod::None),
        (None, None, _) => return Err(invalid("no client credentials")),
    };
    let client = provider
        .settings
        .client(&id)
        .ok_or_else(|| invalid("unknown client"))?;
    if client.auth_method != method {
        return Err(invalid(&format!(
            "this client authenticates with {}",
            client.auth_method.as_str()
        )));
    }
    let matches = match (&client.secret, secret) {
        (Some(expected), Some(given)) => bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            given.as_bytes(),
        )),
        (None, None) => true,
        _ => false,
    };
    if !matches {
        return Err(invalid("wrong client secret"));
    }
    Ok(client)
}

/// The person of a grant, if the grant still counts (see `grant_standing`).
pub(super) fn live(
    state: &AppState,
    provider: &Provider,
    grant: &Grant,
    now: i64,
) -> Result<Identity, AppError> {
    super::grant_standing(state, provider, grant, now).map_err(|standing| match standing {
        Standing::Unknown(why) => AppError::Unavailable(why),
        Standing::Revoked(why) => oauth(
            OAuthError::InvalidGrant,
            format!("the sign-in has ended: {why}"),
        ),
        Standing::Live => AppError::Internal("a live grant refused".into()),
    })
}

/// New tokens for `grant`: an access token, an ID token (with the nonce on the code's
/// exchange) and, with `offline_access`, a refresh token.
pub(super) fn issue(
    state: &AppState,
    provider: &Provider,
    client: &Client,
    grant: &Grant,
    who: &Identity,
    first: bool,
) -> Result<serde_json::Value, AppError> {
    let random = || {
        crate::oidc::secret()
            .ok_or_else(|| AppError::Internal("the system random number generator failed".into()))
    };
    let now = state.clock.now();
    let ttl = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let settings = &provider.settings;
    let access = random()?;
    let refresh = grant.has_scope("offline_access").then(random).transpose()?;
    let access_ttl = ttl(settings.access_token_ttl);
    provider
        .grants
        .add_tokens(
            &grant.id,
            (&grants::hash(&access), now.saturating_add(access_ttl)),
            refresh
                .as_ref()
                .map(|r| {
                    (
                        grants::hash(r),
                        now.saturating_add(ttl(settings.refresh_token_ttl)),
                    )
                })
                .as_ref()
                .map(|(h, e)| (h.as_str(), *e)),
        )
        .map_err(unavailable)?;
    let claims = IdToken {
        iss: &settings.issuer,
        sub: &grant.made.user,
        aud: &client.id,
        exp: now.saturating_add(ttl(settings.id_token_ttl)),
        iat: now,
        auth_time: grant.made.auth_time,
        nonce: grant.made.nonce.as_deref().filter(|_| first),
        sid: grant.made.sid.as_deref(),
        amr: ["mtls"],
        at_hash: crate::oidc::at_hash(client.alg, &access),
        profile: Profile::of(who, grant),
    };
    let id_token = provider
        .keys
        .sign(client.alg, &claims)
        .map_err(AppError::Internal)?;
    tracing::info!(
        target: "audit",
        event = "oidc_token",
        user = %grant.made.user,
        client = %client.id,
        grant = %grant.id,
        refresh = !first,
        "tokens issued"
    );
    let mut json = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": access_ttl,
        "id_token": id_token,
        "scope": grant.made.scopes,
    });
    if let (Some(r), Some(map)) = (refresh, json.as_object_mut()) {
        map.insert("refresh_token".into(), r.into());
    }
    Ok(json)
}
