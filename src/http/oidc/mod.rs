//! The OpenID Connect provider's endpoints ([`crate::oidc`] holds what they share):
//! discovery and JWKS, [`authorize`], [`token`] and [`userinfo`]. Without `[oidc]` each answers
//! 404, as an unknown route would.

pub mod authorize;
pub mod token;
pub mod userinfo;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::{answer, State};

/// `GET /.well-known/openid-configuration` (and RFC 8414's `oauth-authorization-server`).
pub async fn discovery(state: State) -> HttpResponse {
    match &state.oidc {
        Some(provider) => answer::json(StatusCode::OK, &provider.discovery()),
        None => not_configured(),
    }
}

/// `GET /oidc/jwks`: the keys ID tokens are signed with.
pub async fn jwks(state: State) -> HttpResponse {
    match &state.oidc {
        Some(provider) => answer::json(StatusCode::OK, &provider.keys.jwks()),
        None => not_configured(),
    }
}

/// What an OIDC route answers while `[oidc]` is not configured.
pub fn not_configured() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("not found\n")
}

/// Form or query parameters by name. A parameter given twice is refused (OAuth 2.0 §3.1,
/// §3.2): which of the two counts would be a guess. An empty value counts as absent.
fn params(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw) {
        if value.is_empty() {
            continue;
        }
        if out.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(format!("the parameter {name} is given twice"));
        }
    }
    Ok(out)
}
