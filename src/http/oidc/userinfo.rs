//! `GET|POST /oidc/userinfo` (OpenID Connect Core §5.3): the claims the access token's scopes
//! allow, while its grant still counts (see `token::live`).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

use super::super::{answer, AppState, Standing, State};
use crate::error::{Code, OidcOutcome};
use crate::metrics::OidcEndpoint as Endpoint;
use crate::oidc::grants::{self, Kind};
use crate::oidc::{Profile, Provider};

pub async fn handle(req: HttpRequest, state: State) -> HttpResponse {
    let Some(provider) = state.oidc.clone() else {
        return super::not_configured();
    };
    let (client, outcome, res) = userinfo(&req, &state, &provider);
    // Only ever a configured client's id: the grant may outlive its client's configuration.
    let client = client.and_then(|id| provider.settings.client(&id).map(|c| c.id.as_str()));
    super::count(&state, Endpoint::Userinfo, client, outcome);
    res
}

/// The answer, the grant's client (if the token named one) and the outcome to count.
fn userinfo(
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
) -> (Option<String>, OidcOutcome, HttpResponse) {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        let res = refuse(None, "send the access token as Authorization: Bearer");
        return (None, OidcOutcome::Refused(Code::InvalidRequest), res);
    };
    let invalid = OidcOutcome::Refused(Code::InvalidToken);
    let now = state.clock.now();
    let found = match provider.grants.token(&grants::hash(token)) {
        Ok(found) => found.filter(|t| t.kind == Kind::Access),
        Err(e) => return (None, UNAVAILABLE, unavailable(&e.to_string())),
    };
    let Some(found) = found else {
        let res = refuse(Some(Code::InvalidToken), "the access token is unknown");
        return (None, invalid, res);
    };
    // A token bound to a certificate (RFC 8705 §3) works only over that certificate.
    if found.x5t.is_some() {
        let meta = super::super::extract::RequestMeta::from_request(req, state);
        let presented = super::token::presented(req, state, &meta).ok().flatten();
        if !found.bound_to(presented.as_deref()) {
            let res = refuse(
                Some(Code::InvalidToken),
                "the access token is bound to a certificate this request does not present",
            );
            return (Some(found.grant.made.client_id), invalid, res);
        }
    }
    let grant = found.grant;
    if found.expires <= now || found.revoked {
        let res = refuse(
            Some(Code::InvalidToken),
            "the access token has expired or was revoked",
        );
        return (Some(grant.made.client_id), invalid, res);
    }
    let client = Some(grant.made.client_id.clone());
    let who = match super::grant_standing(state, provider, &grant, now) {
        Ok(who) => who,
        Err(Standing::Unknown(why)) => return (client, UNAVAILABLE, unavailable(&why)),
        Err(standing) => {
            let why = match standing {
                Standing::Revoked(why) => why,
                _ => "revoked",
            };
            return (client, invalid, refuse(Some(Code::InvalidToken), why));
        }
    };
    let mut claims = serde_json::to_value(Profile::of(&who, &grant)).unwrap_or_default();
    if let Some(map) = claims.as_object_mut() {
        map.insert("sub".into(), grant.made.user.clone().into());
    }
    (
        client,
        OidcOutcome::Ok,
        answer::json(StatusCode::OK, &claims),
    )
}

const UNAVAILABLE: OidcOutcome = OidcOutcome::Refused(Code::TemporarilyUnavailable);

fn unavailable(why: &str) -> HttpResponse {
    answer::json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({"error": Code::TemporarilyUnavailable.as_str(), "error_description": why}),
    )
}

/// 401 with the RFC 6750 challenge.
fn refuse(error: Option<Code>, why: &str) -> HttpResponse {
    let challenge = match error {
        Some(e) => format!("Bearer realm=\"certgate\", error=\"{}\"", e.as_str()),
        None => "Bearer realm=\"certgate\"".into(),
    };
    let mut res = answer::json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({"error": error.unwrap_or(Code::InvalidRequest).as_str(), "error_description": why}),
    );
    if let Ok(v) = header::HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}
