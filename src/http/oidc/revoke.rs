//! `POST /oidc/revoke` (RFC 7009): a client ends a token it was issued. A refresh token ends
//! its whole grant (every token made from the sign-in; an app with a `backchannel_logout_uri`
//! is sent its logout token); an access token ends alone. Clients authenticate as at the
//! token endpoint. An unknown token, or another client's, is answered 200 as well and nothing
//! changes (RFC 7009 §2.2): the answer tells nobody which tokens exist. Both token types can
//! be revoked, so `unsupported_token_type` is never the answer, and `token_type_hint` is only
//! a hint.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::super::extract::RequestMeta;
use super::super::State;
use super::client::{self, oauth};
use crate::audit;
use crate::error::{AppError, OAuthError, OidcOutcome};
use crate::metrics::OidcEndpoint as Endpoint;
use crate::oidc::grants::{self, Kind};
use crate::oidc::{Client, Provider};

pub async fn handle(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let Some(provider) = state.oidc.clone() else {
        return super::not_configured();
    };
    let now_ms = state.clock.now_ms();
    client::serve(
        &req,
        payload,
        &state,
        &provider,
        Endpoint::Revoke,
        |params, meta, client| revoke(params, &provider, meta, now_ms, client),
        |()| {
            let res = HttpResponse::build(StatusCode::OK)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
            (OidcOutcome::Ok, res)
        },
    )
    .await
}

fn revoke(
    params: &HashMap<String, String>,
    provider: &Provider,
    meta: &RequestMeta,
    now_ms: i64,
    client: &Client,
) -> Result<(), AppError> {
    let get = |name: &str| params.get(name).map(String::as_str);
    let token = get("token").ok_or_else(|| {
        oauth(
            OAuthError::InvalidRequest,
            "token is missing: send the token to revoke as the form parameter token",
        )
    })?;
    let hash = grants::hash(token);
    let found = provider
        .grants
        .token(&hash)
        .map_err(super::unavailable)?
        .filter(|t| t.grant.made.client_id == client.id);
    let Some(found) = found else {
        audit::oidc_revoke(&super::actor(meta, None), &client.id, "", "");
        return Ok(());
    };
    let grant = &found.grant;
    let kind = match found.kind {
        Kind::Access => {
            provider
                .grants
                .revoke_token(&hash)
                .map_err(super::unavailable)?;
            "access"
        }
        Kind::Refresh => {
            provider
                .grants
                .revoke(&grant.id, now_ms)
                .map_err(super::unavailable)?;
            "refresh"
        }
    };
    audit::oidc_revoke(
        &super::actor(meta, Some(&grant.made.user)),
        &client.id,
        kind,
        &grant.id,
    );
    Ok(())
}
