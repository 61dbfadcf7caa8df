//! `POST /oidc/introspect` (RFC 7662): whether a token certgate issued still counts, asked by
//! the client it was issued to. Clients authenticate as at the token endpoint. A token is
//! `active` only while it is unexpired, unused (a rotated refresh token is not), not revoked,
//! its grant still counts (`grant_standing`) and it is the asking client's; anything
//! else is `{"active": false}`, which never says which of these failed.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};

use super::super::extract::RequestMeta;
use super::super::{AppState, Standing, State};
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
    client::serve(
        &req,
        payload,
        &state,
        &provider,
        Endpoint::Introspect,
        |params, meta, client| introspect(params, &state, &provider, meta, client),
        |json| {
            let outcome = if json["active"] == true {
                OidcOutcome::Ok
            } else {
                OidcOutcome::Inactive
            };
            (outcome, client::no_cache_json(&json))
        },
    )
    .await
}

fn introspect(
    params: &HashMap<String, String>,
    state: &AppState,
    provider: &Provider,
    meta: &RequestMeta,
    client: &Client,
) -> Result<serde_json::Value, AppError> {
    let get = |name: &str| params.get(name).map(String::as_str);
    let token = get("token").ok_or_else(|| {
        oauth(
            OAuthError::InvalidRequest,
            "token is missing: send the token to introspect as the form parameter token",
        )
    })?;
    // token_type_hint is a hint only (RFC 7662 §2.1): every kind is looked up anyway.
    let now = state.clock.now();
    let found = provider
        .grants
        .token(&grants::hash(token))
        .map_err(super::unavailable)?
        .filter(|t| t.grant.made.client_id == client.id);
    let inactive = |kind: &str, grant: &str| {
        audit::oidc_introspect(&super::actor(meta, None), &client.id, false, kind, grant);
        Ok(serde_json::json!({"active": false}))
    };
    let Some(found) = found else {
        return inactive("", "");
    };
    let (kind, token_type) = match found.kind {
        Kind::Access => ("access", "Bearer"),
        Kind::Refresh => ("refresh", "refresh_token"),
    };
    let grant = &found.grant;
    if !found.usable(now) {
        return inactive(kind, &grant.id);
    }
    match super::grant_standing(state, provider, grant, now) {
        Ok(_) => {}
        // Never an "inactive" for an outage: an app would sign its user out.
        Err(Standing::Unknown(why)) => return Err(AppError::Unavailable(why)),
        Err(_) => return inactive(kind, &grant.id),
    }
    audit::oidc_introspect(
        &super::actor(meta, Some(&grant.made.user)),
        &client.id,
        true,
        kind,
        &grant.id,
    );
    let mut json = serde_json::json!({
        "active": true,
        "scope": grant.made.scopes,
        "client_id": client.id,
        "sub": grant.made.user,
        "exp": found.expires,
        "token_type": token_type,
        "iss": provider.settings.issuer,
    });
    if let Some(map) = json.as_object_mut() {
        if let Some(iat) = found.issued {
            map.insert("iat".into(), iat.into());
        }
        // RFC 8705 §3.2: the certificate a bound token works over.
        if let Some(x5t) = &found.x5t {
            map.insert("cnf".into(), serde_json::json!({ "x5t#S256": x5t }));
        }
    }
    Ok(json)
}
