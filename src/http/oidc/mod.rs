//! The OpenID Connect provider's endpoints ([`crate::oidc`] holds what they share):
//! discovery and JWKS, [`authorize`], [`token`], [`userinfo`], the [`device`] grant,
//! [`introspect`] (RFC 7662) and [`revoke`] (RFC 7009). Without `[oidc]` each answers 404, as
//! an unknown route would.

pub mod authorize;
mod client;
pub mod device;
pub mod introspect;
pub mod revoke;
pub mod token;
pub mod userinfo;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::extract::RequestMeta;
use super::{answer, AppState, Standing, State};
use crate::audit::Actor;
use crate::error::{AppError, Code, OidcOutcome};
use crate::identity::Identity;
use crate::metrics::OidcEndpoint as Endpoint;
use crate::oidc::{Grant, Provider};

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

/// Form or query parameters by name (see [`crate::oidc::params::parse`]): a parameter given
/// twice is refused, an empty value counts as absent.
fn params(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    crate::oidc::params::parse(raw).map_err(|e| e.to_string())
}

/// A grant store that cannot be read or written: 503, never a guess.
fn unavailable(e: crate::db::DbError) -> AppError {
    AppError::Unavailable(format!("the grants cannot be read: {e}"))
}

/// Counts one request in `certgate_oidc_requests_total`; `client` is a configured id.
fn count(state: &AppState, endpoint: Endpoint, client: Option<&str>, outcome: OidcOutcome) {
    state.metrics.oidc_request(endpoint, client, outcome);
}

/// The audit actor of a request: its address, and the user when known.
fn actor<'a>(meta: &RequestMeta, user: Option<&'a str>) -> Actor<'a> {
    Actor {
        user,
        client: meta.client,
        ..Actor::default()
    }
}

/// A refusal at an endpoint that authenticates clients (or `/authorize`): counted, and in the
/// audit log with its OAuth error and description (which never hold a token).
fn refused(
    state: &AppState,
    meta: &RequestMeta,
    endpoint: Endpoint,
    client: Option<&str>,
    e: &AppError,
) {
    let reason = match e {
        AppError::OAuth { description, .. } => description.clone(),
        other => other.to_string(),
    };
    refused_because(state, meta, endpoint, client, e.code(), &reason);
}

/// [`refused`], with the error's code and description given apart.
fn refused_because(
    state: &AppState,
    meta: &RequestMeta,
    endpoint: Endpoint,
    client: Option<&str>,
    error: Code,
    reason: &str,
) {
    count(state, endpoint, client, OidcOutcome::Refused(error));
    // A device polling while its person has not decided is waiting, not refused.
    if matches!(error, Code::AuthorizationPending | Code::SlowDown) {
        return;
    }
    crate::audit::oidc_refused(
        &actor(meta, None),
        endpoint.as_str(),
        client.unwrap_or(""),
        error.as_str(),
        reason,
    );
}

/// Whether a grant still counts, and its person: not revoked (a replayed code, a reused
/// refresh token, `certgate revoke --jti <grant id>`), nor through the certgate session it was
/// made from (a log-out), its user (log out everywhere, a lock-out), device or certificate;
/// and the user still known and admitted to the client.
fn grant_standing(
    state: &AppState,
    provider: &Provider,
    grant: &Grant,
    now: i64,
) -> Result<Identity, Standing> {
    if grant.revoked {
        return Err(Standing::Revoked("it was revoked"));
    }
    let standing = state.standing_of(
        &grant.id,
        &grant.made.user,
        grant.made.cert_serial.as_deref(),
        grant.made.created_ms,
        now,
    );
    if standing != Standing::Live {
        return Err(standing);
    }
    if grant
        .made
        .sid
        .as_deref()
        .is_some_and(|sid| state.revocations.is_jti_revoked(sid))
    {
        return Err(Standing::Revoked("its certgate session was logged out"));
    }
    let who = crate::identity::from_user(&grant.made.user, &state.config.identity)
        .map_err(|_| Standing::Revoked("its user is no longer known or is disabled"))?;
    let admitted = provider
        .settings
        .client(&grant.made.client_id)
        .is_some_and(|c| c.admits(&who.user, &who.groups));
    if !admitted {
        return Err(Standing::Revoked(
            "the user may no longer sign in to this app",
        ));
    }
    Ok(who)
}
