//! The OpenID Connect provider's endpoints ([`crate::oidc`] holds what they share):
//! discovery and JWKS, [`authorize`], [`token`], [`userinfo`], the [`device`] grant,
//! [`introspect`] (RFC 7662), [`revoke`] (RFC 7009) and [`logout`] (RP-initiated). Without
//! `[oidc]` each answers 404, as an unknown route would. [`sweep`] ends the grants that a
//! revocation reached, so that their apps are told.

pub mod authorize;
mod client;
pub mod device;
pub mod introspect;
pub mod logout;
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
fn unavailable(e: crate::oidc::StoreError) -> AppError {
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
    let standing = state.standing_of(
        &grant.id,
        &grant.made.user,
        grant.made.cert_serial.as_deref(),
        grant.made.created_ms,
        now,
    );
    let session_ended = grant
        .made
        .sid
        .as_deref()
        .is_some_and(|sid| state.revocations.is_jti_revoked(sid));
    // The revocation that ended it, when there is one: more telling than the flag that the
    // sweep (`sweep`) sets soon after.
    let why = match &standing {
        Standing::Revoked(why) => Some(*why),
        Standing::Live | Standing::Unknown(_) => None,
    }
    .or(session_ended.then_some("its certgate session was logged out"));
    if grant.revoked {
        return Err(Standing::Revoked(why.unwrap_or("it was revoked")));
    }
    if let Some(why) = why {
        return Err(Standing::Revoked(why));
    }
    if standing != Standing::Live {
        return Err(standing);
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

/// Marks revoked every live grant that no longer counts (by [`grant_standing`], so for every
/// reason it knows: a revoked user, device, certificate, session or grant id, a lock-out, a
/// CRL, a user or client gone from the configuration), which queues its app's logout token.
/// Nothing is ended while the revocation view is stale. Runs beside the servers, after each
/// revocation sync that brought news and every second (CRLs change without one); it writes,
/// so never on a request thread. Returns how many grants this call ended.
///
/// # Errors
/// When the grants cannot be read or written.
pub fn sweep(state: &AppState) -> Result<usize, crate::oidc::StoreError> {
    let Some(provider) = &state.oidc else {
        return Ok(0);
    };
    let now = state.clock.now();
    if state.stale().is_some() {
        return Ok(0);
    }
    let mut ended = 0;
    for grant in provider.grants.live()? {
        let why = match grant_standing(state, provider, &grant, now) {
            Err(Standing::Revoked(why)) => why,
            Ok(_) | Err(Standing::Live | Standing::Unknown(_)) => continue,
        };
        if provider.grants.revoke(&grant.id, state.clock.now_ms())? {
            ended += 1;
            tracing::info!(
                target: "audit",
                event = "oidc_grant_ended",
                user = %grant.made.user,
                client = %grant.made.client_id,
                grant = %grant.id,
                reason = why,
                "an app's sign-in ended"
            );
        }
    }
    Ok(ended)
}
