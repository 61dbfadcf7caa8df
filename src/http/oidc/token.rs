//! `POST /oidc/token`: a code (with PKCE) or a refresh token becomes an ID token, an access
//! token and, with `offline_access`, a new refresh token (RFC 6749 §4.1.3, §6; OpenID Connect
//! Core §3.1.3). Clients authenticate with HTTP Basic, the form, or (public clients) not at
//! all; secrets are compared in constant time (`client.rs`, shared with introspection
//! and revocation).

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};

use super::super::extract::RequestMeta;
use super::super::{AppState, Standing, State};
use super::client::{self, oauth};
use super::unavailable;
use crate::audit;
use crate::error::{AppError, OAuthError, OidcOutcome};
use crate::identity::Identity;
use crate::metrics::OidcEndpoint as Endpoint;
use crate::oidc::grants::{NewTokens, Peeked};
use crate::oidc::{grants, Client, Grant, IdToken, Profile, Provider, Redeemed, Refreshed};

pub async fn handle(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let Some(provider) = state.oidc.clone() else {
        return super::not_configured();
    };
    client::serve(
        &req,
        payload,
        &state,
        &provider,
        Endpoint::Token,
        |params, meta, client| token(&req, params, &state, &provider, meta, client),
        |json| (OidcOutcome::Ok, client::no_cache_json(&json)),
    )
    .await
}

fn token(
    req: &HttpRequest,
    params: &HashMap<String, String>,
    state: &AppState,
    provider: &Provider,
    meta: &RequestMeta,
    client: &Client,
) -> Result<serde_json::Value, AppError> {
    let get = |name: &str| params.get(name).map(String::as_str);
    let now = state.clock.now();
    match get("grant_type") {
        Some("authorization_code") => {
            let code =
                get("code").ok_or_else(|| oauth(OAuthError::InvalidRequest, "code is missing"))?;
            exchange_code(req, params, state, provider, meta, client, code, now)
        }
        Some("refresh_token") => {
            let refresh = get("refresh_token")
                .ok_or_else(|| oauth(OAuthError::InvalidRequest, "refresh_token is missing"))?;
            // A token bound to a certificate (RFC 8705 §3) is checked before it is used up.
            let presented = presented(req, state, meta)?;
            let stored = provider
                .grants
                .token(&grants::hash(refresh))
                .map_err(unavailable)?;
            if stored.is_some_and(|t| !t.bound_to(presented.as_deref())) {
                return Err(oauth(
                    OAuthError::InvalidGrant,
                    "the refresh token is bound to a certificate this request does not present",
                ));
            }
            let grant = match provider
                .grants
                .refresh(&grants::hash(refresh), now)
                .map_err(unavailable)?
            {
                Refreshed::Fresh(grant) => grant,
                Refreshed::Reused => {
                    audit::oidc_replayed(&super::actor(meta, None), &client.id, "refresh token");
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
            owned_by(state, provider, client, &grant, "refresh token")?;
            let who = live(state, provider, &grant, now)?;
            issue(state, provider, meta, client, &grant, &who, &Issuing { first: false, bound: presented.as_deref() })
        }
        Some(crate::oidc::DEVICE_GRANT) => {
            let code = get("device_code")
                .ok_or_else(|| oauth(OAuthError::InvalidRequest, "device_code is missing"))?;
            super::device::exchange(state, provider, meta, client, code, now)
        }
        Some(_) => Err(oauth(
            OAuthError::UnsupportedGrantType,
            "grant_type must be authorization_code, refresh_token or urn:ietf:params:oauth:grant-type:device_code",
        )),
        None => Err(oauth(OAuthError::InvalidRequest, "grant_type is missing")),
    }
}

/// A code's exchange: the code is used up, checked, and tokens are issued for its grant. When
/// the code as read just before ([`Grants::peek_code`]) passes every check, the code is used
/// up and the tokens stored in one write ([`Grants::redeem_and_add_tokens`]), provided the
/// write takes the very grant that was read. Otherwise (a check fails, or the grant changed in
/// between) what the redemption found goes through [`redeemed`], as every exchange did before:
/// the same refusals, in the same order, with the same effects.
///
/// [`Grants::peek_code`]: crate::oidc::Grants::peek_code
/// [`Grants::redeem_and_add_tokens`]: crate::oidc::Grants::redeem_and_add_tokens
#[allow(clippy::too_many_arguments)]
fn exchange_code(
    req: &HttpRequest,
    params: &HashMap<String, String>,
    state: &AppState,
    provider: &Provider,
    meta: &RequestMeta,
    client: &Client,
    code: &str,
    now: i64,
) -> Result<serde_json::Value, AppError> {
    let code_hash = grants::hash(code);
    let ready = provider
        .grants
        .peek_code(&code_hash, now)
        .map_err(unavailable)?
        .and_then(|peeked| Ready::of(req, params, state, provider, meta, client, peeked, now));
    let Some(ready) = ready else {
        let found = provider
            .grants
            .redeem(&code_hash, now)
            .map_err(unavailable)?;
        return redeemed(req, params, state, provider, meta, client, found, now);
    };
    let (found, stored) = provider
        .grants
        .redeem_and_add_tokens(&code_hash, now, |grant, redirect_uri, challenge| {
            let same = *grant == ready.peeked.grant
                && redirect_uri == ready.peeked.redirect_uri
                && challenge == ready.peeked.challenge.as_deref();
            same.then(|| ready.minted.tokens(ready.bound.as_deref()))
        })
        .map_err(unavailable)?;
    if !stored {
        return redeemed(req, params, state, provider, meta, client, found, now);
    }
    let how = Issuing {
        first: true,
        bound: ready.bound.as_deref(),
    };
    answer(
        provider,
        meta,
        client,
        &ready.peeked.grant,
        &ready.who,
        &how,
        ready.minted,
    )
}

/// A fresh code, read before it is used up, that passed every check of [`redeemed`] (without
/// their effects), with what issuing its tokens takes.
struct Ready {
    peeked: Peeked,
    who: Identity,
    bound: Option<String>,
    minted: Minted,
}

impl Ready {
    /// `None` when any check refuses (the code's exchange then takes the path it always
    /// took, which refuses it the same way).
    #[allow(clippy::too_many_arguments)]
    fn of(
        req: &HttpRequest,
        params: &HashMap<String, String>,
        state: &AppState,
        provider: &Provider,
        meta: &RequestMeta,
        client: &Client,
        peeked: Peeked,
        now: i64,
    ) -> Option<Self> {
        let grant = &peeked.grant;
        if grant.made.client_id != client.id
            || code_matches(params, &peeked.redirect_uri, peeked.challenge.as_deref()).is_err()
        {
            return None;
        }
        let who = live(state, provider, grant, now).ok()?;
        let bound = presented(req, state, meta).ok()?;
        let minted = Minted::new(state, provider, grant).ok()?;
        Some(Self {
            peeked,
            who,
            bound,
            minted,
        })
    }
}

/// What follows a code's redemption: its refusal, or the checks of the code against the
/// request and of its grant's standing, and then the tokens (issued in a write of their own).
#[allow(clippy::too_many_arguments)]
fn redeemed(
    req: &HttpRequest,
    params: &HashMap<String, String>,
    state: &AppState,
    provider: &Provider,
    meta: &RequestMeta,
    client: &Client,
    found: Redeemed,
    now: i64,
) -> Result<serde_json::Value, AppError> {
    let (grant, redirect_uri, challenge) = match found {
        Redeemed::Fresh {
            grant,
            redirect_uri,
            challenge,
        } => (grant, redirect_uri, challenge),
        Redeemed::Replayed => {
            audit::oidc_replayed(&super::actor(meta, None), &client.id, "code");
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
    owned_by(state, provider, client, &grant, "code")?;
    code_matches(params, &redirect_uri, challenge.as_deref())?;
    let who = live(state, provider, &grant, now)?;
    let presented = presented(req, state, meta)?;
    issue(
        state,
        provider,
        meta,
        client,
        &grant,
        &who,
        &Issuing {
            first: true,
            bound: presented.as_deref(),
        },
    )
}

/// The request's `redirect_uri` is the one the code was issued for, and its `code_verifier`
/// matches the code's challenge (PKCE), or neither has one.
fn code_matches(
    params: &HashMap<String, String>,
    redirect_uri: &str,
    challenge: Option<&str>,
) -> Result<(), AppError> {
    let get = |name: &str| params.get(name).map(String::as_str);
    if get("redirect_uri") != Some(redirect_uri) {
        return Err(oauth(
            OAuthError::InvalidGrant,
            "redirect_uri is not the one the code was issued for",
        ));
    }
    match (challenge, get("code_verifier")) {
        (Some(c), Some(v)) if crate::oidc::pkce_matches(c, v) => Ok(()),
        (Some(_), _) => Err(oauth(
            OAuthError::InvalidGrant,
            "code_verifier does not match the code_challenge",
        )),
        // A verifier for a code issued without a challenge: a PKCE downgrade
        // (authentik CVE-2024-23647).
        (None, Some(_)) => Err(oauth(
            OAuthError::InvalidGrant,
            "the code was issued without a code_challenge",
        )),
        (None, None) => Ok(()),
    }
}

/// The thumbprint of the certificate the request carries (certgate's mTLS listener, or one a
/// trusted proxy forwarded), verified: tokens issued over it are bound to it (RFC 8705 §3).
///
/// # Errors
/// A certificate that does not verify or was revoked.
pub(super) fn presented(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
) -> Result<Option<String>, AppError> {
    Ok(super::super::extract::verified_cert(req, state, meta)?
        .map(|cert| cert.cert().thumbprint.clone()))
}

/// A code or refresh token presented by a client it was not issued to was stolen: its whole
/// grant ends.
fn owned_by(
    state: &AppState,
    provider: &Provider,
    client: &Client,
    grant: &Grant,
    what: &str,
) -> Result<(), AppError> {
    if grant.made.client_id == client.id {
        return Ok(());
    }
    provider
        .grants
        .revoke(&grant.id, state.clock.now_ms())
        .map_err(unavailable)?;
    Err(oauth(
        OAuthError::InvalidGrant,
        format!("the {what} was issued to another client"),
    ))
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

/// How tokens are issued: on a code's exchange (`first`: the ID token carries the nonce), and
/// bound to the certificate with this thumbprint (RFC 8705 §3) or not.
pub(super) struct Issuing<'a> {
    pub(super) first: bool,
    pub(super) bound: Option<&'a str>,
}

/// New tokens for `grant`: an access token, an ID token (with the nonce on the code's
/// exchange) and, with `offline_access`, a refresh token.
pub(super) fn issue(
    state: &AppState,
    provider: &Provider,
    meta: &RequestMeta,
    client: &Client,
    grant: &Grant,
    who: &Identity,
    how: &Issuing<'_>,
) -> Result<serde_json::Value, AppError> {
    let minted = Minted::new(state, provider, grant)?;
    let tokens = minted.tokens(how.bound);
    provider
        .grants
        .add_tokens(
            &grant.id,
            tokens.issued,
            tokens.access,
            tokens.refresh,
            tokens.bound,
        )
        .map_err(unavailable)?;
    answer(provider, meta, client, grant, who, how, minted)
}

/// New secrets for a grant's tokens, made before they are stored: what the client is given,
/// and their hashes and expiries as the grant store keeps them.
pub(super) struct Minted {
    now: i64,
    access: String,
    access_hash: String,
    access_expires: i64,
    /// With `offline_access`: the secret, its hash and its expiry.
    refresh: Option<(String, String, i64)>,
}

fn ttl(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Minted {
    fn new(state: &AppState, provider: &Provider, grant: &Grant) -> Result<Self, AppError> {
        let random = || {
            crate::oidc::secret().ok_or_else(|| {
                AppError::Internal("the system random number generator failed".into())
            })
        };
        let now = state.clock.now();
        let settings = &provider.settings;
        let access = random()?;
        let refresh = grant.has_scope("offline_access").then(random).transpose()?;
        Ok(Self {
            now,
            access_hash: grants::hash(&access),
            access,
            access_expires: now.saturating_add(ttl(settings.access_token_ttl)),
            refresh: refresh.map(|r| {
                let hash = grants::hash(&r);
                (r, hash, now.saturating_add(ttl(settings.refresh_token_ttl)))
            }),
        })
    }

    /// The rows to store, bound to the certificate with thumbprint `bound` or not.
    fn tokens<'a>(&'a self, bound: Option<&'a str>) -> NewTokens<'a> {
        NewTokens {
            issued: self.now,
            access: (&self.access_hash, self.access_expires),
            refresh: self
                .refresh
                .as_ref()
                .map(|(_, hash, expires)| (hash.as_str(), *expires)),
            bound,
        }
    }
}

/// The answer for tokens stored: the ID token signed, the issue audited, and the JSON.
#[allow(clippy::too_many_arguments)]
fn answer(
    provider: &Provider,
    meta: &RequestMeta,
    client: &Client,
    grant: &Grant,
    who: &Identity,
    how: &Issuing<'_>,
    minted: Minted,
) -> Result<serde_json::Value, AppError> {
    let first = how.first;
    let now = minted.now;
    let settings = &provider.settings;
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
        acr: settings.acr.as_deref(),
        at_hash: crate::oidc::at_hash(client.alg, &minted.access),
        profile: Profile::of(who, grant),
    };
    let id_token = provider
        .keys
        .sign(client.alg, &claims)
        .map_err(AppError::Internal)?;
    audit::oidc_token(
        &super::actor(meta, Some(&grant.made.user)),
        &client.id,
        &grant.id,
        !first,
    );
    let mut json = serde_json::json!({
        "access_token": minted.access,
        "token_type": "Bearer",
        "expires_in": ttl(settings.access_token_ttl),
        "id_token": id_token,
        "scope": grant.made.scopes,
    });
    if let (Some((r, _, _)), Some(map)) = (minted.refresh, json.as_object_mut()) {
        map.insert("refresh_token".into(), r.into());
    }
    Ok(json)
}
