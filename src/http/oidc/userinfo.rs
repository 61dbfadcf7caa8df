//! `GET|POST /oidc/userinfo` (OpenID Connect Core §5.3): the claims the access token's scopes
//! allow, while its grant still counts (see `token::live`).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

use super::super::{answer, Standing, State};
use crate::oidc::{grants, Profile};

pub async fn handle(req: HttpRequest, state: State) -> HttpResponse {
    let Some(provider) = state.oidc.clone() else {
        return super::not_configured();
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return refuse(None, "send the access token as Authorization: Bearer");
    };
    let now = state.clock.now();
    let grant = match provider.grants.access(&grants::hash(token), now) {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            return refuse(
                Some("invalid_token"),
                "the access token is unknown or expired",
            )
        }
        Err(e) => return unavailable(&e.to_string()),
    };
    let who = match super::grant_standing(&state, &provider, &grant, now) {
        Ok(who) => who,
        Err(Standing::Unknown(why)) => return unavailable(&why),
        Err(standing) => {
            let why = match standing {
                Standing::Revoked(why) => why,
                _ => "revoked",
            };
            return refuse(Some("invalid_token"), why);
        }
    };
    let mut claims = serde_json::to_value(Profile::of(&who, &grant)).unwrap_or_default();
    if let Some(map) = claims.as_object_mut() {
        map.insert("sub".into(), grant.made.user.clone().into());
    }
    answer::json(StatusCode::OK, &claims)
}

fn unavailable(why: &str) -> HttpResponse {
    answer::json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({"error": "temporarily_unavailable", "error_description": why}),
    )
}

/// 401 with the RFC 6750 challenge.
fn refuse(error: Option<&str>, why: &str) -> HttpResponse {
    let challenge = match error {
        Some(e) => format!("Bearer realm=\"certgate\", error=\"{e}\""),
        None => "Bearer realm=\"certgate\"".into(),
    };
    let mut res = answer::json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({"error": error.unwrap_or("invalid_request"), "error_description": why}),
    );
    if let Ok(v) = header::HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}
