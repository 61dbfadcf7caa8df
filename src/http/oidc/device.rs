//! The device authorization grant (RFC 8628) over HTTP: `POST /oidc/device` gives a device its
//! codes, `GET`/`POST /oidc/device/verify` is where a person with a certificate approves it,
//! and the token endpoint's `device_code` grant hands the device its tokens ([`exchange`]).

use std::collections::{BTreeSet, HashMap};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::super::extract::RequestMeta;
use super::super::pages::{Form, Page};
use super::super::{answer, AppState, State};
use super::client::oauth;
use super::token::{issue, live, Issuing};
use super::unavailable;
use crate::error::{AppError, Denial, OAuthError, OidcOutcome};
use crate::metrics::OidcEndpoint as Endpoint;
use crate::oidc::device::{normalize, user_code, Poll, Request};
use crate::oidc::{grants, Client, Provider};

/// How long a device's codes work, and how often it may poll (RFC 8628 §3.2).
const EXPIRES_IN: i64 = 600;
const INTERVAL: i64 = 5;

/// `POST /oidc/device`: a device asks to be signed in.
/// Its body and client authentication are the token endpoint's (`client.rs`).
pub async fn authorization(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let Some(provider) = state.oidc.clone() else {
        return super::not_configured();
    };
    super::client::serve(
        &req,
        payload,
        &state,
        &provider,
        Endpoint::Device,
        |params, _, client| codes(params, &state, &provider, client),
        |json| (OidcOutcome::Ok, answer::json(StatusCode::OK, &json)),
    )
    .await
}

fn codes(
    params: &HashMap<String, String>,
    state: &AppState,
    provider: &Provider,
    client: &Client,
) -> Result<serde_json::Value, AppError> {
    let get = |name: &str| params.get(name).map(String::as_str);
    let requested: BTreeSet<&str> = get("scope")
        .unwrap_or("openid")
        .split_whitespace()
        .collect();
    if !requested.contains("openid") {
        return Err(oauth(
            OAuthError::InvalidScope,
            "the scope must include openid",
        ));
    }
    let scopes: Vec<&str> = requested
        .into_iter()
        .filter(|s| client.scopes.contains(*s))
        .collect();
    let random_failed = || AppError::Internal("the system random number generator failed".into());
    let device_code = crate::oidc::secret().ok_or_else(random_failed)?;
    let now = state.clock.now();
    let request = Request {
        client_id: client.id.clone(),
        scopes: scopes.join(" "),
    };
    // A user code already taken (one in 10^10) is drawn again.
    let mut stored = None;
    for _ in 0..3 {
        let code = user_code().ok_or_else(random_failed)?;
        let made = provider.devices.create(
            &grants::hash(&device_code),
            &code,
            &request,
            now.saturating_add(EXPIRES_IN),
            INTERVAL,
        );
        if made.is_ok() {
            stored = Some(code);
            break;
        }
    }
    let code =
        stored.ok_or_else(|| AppError::Unavailable("cannot store the device request".into()))?;
    let verify = provider.endpoint("device/verify");
    Ok(serde_json::json!({
        "device_code": device_code,
        "user_code": code,
        "verification_uri": verify,
        "verification_uri_complete": format!("{verify}?user_code={code}"),
        "expires_in": EXPIRES_IN,
        "interval": INTERVAL,
    }))
}

/// The token endpoint's device grant: the device's poll.
///
/// # Errors
/// RFC 8628 §3.5's errors while the person has not approved; `invalid_grant` for a code that
/// is unknown, another client's, or spent.
pub(super) fn exchange(
    state: &AppState,
    provider: &Provider,
    meta: &RequestMeta,
    client: &Client,
    device_code: &str,
    now: i64,
) -> Result<serde_json::Value, AppError> {
    let poll = provider
        .devices
        .poll(&grants::hash(device_code), &client.id, now)
        .map_err(unavailable)?;
    let grant = match poll {
        Poll::Approved(grant) => grant,
        Poll::Pending => {
            return Err(oauth(
                OAuthError::AuthorizationPending,
                "the person has not approved the sign-in yet",
            ))
        }
        Poll::SlowDown => {
            return Err(oauth(
                OAuthError::SlowDown,
                "polled too often: wait 5 s longer",
            ))
        }
        Poll::Denied => {
            return Err(oauth(
                OAuthError::AccessDenied,
                "the person refused the sign-in",
            ))
        }
        Poll::Expired => {
            return Err(oauth(
                OAuthError::ExpiredToken,
                "the device code has expired",
            ))
        }
        Poll::Unknown | Poll::Spent => {
            return Err(oauth(
                OAuthError::InvalidGrant,
                "the device code is unknown or used",
            ))
        }
    };
    let who = live(state, provider, &grant, now)?;
    // Devices on this grant hold no certificate: their tokens are plain bearer tokens.
    issue(
        state,
        provider,
        meta,
        client,
        &grant,
        &who,
        &Issuing {
            first: false,
            bound: None,
        },
    )
}

/// `GET /oidc/device/verify`: the page a person approves a device on.
pub async fn page(req: HttpRequest, state: State) -> HttpResponse {
    let mut meta = RequestMeta::from_request(&req, &state);
    meta.wants_html = true;
    let Some(provider) = state.oidc.clone() else {
        return super::not_configured();
    };
    let typed = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.into_owned());
    let person = match super::authorize::person(&req, &state, &meta) {
        Ok(Some(person)) => person,
        Ok(None) => {
            let here = format!(
                "{}?{}",
                provider.endpoint("device/verify"),
                req.query_string()
            );
            return HttpResponse::Found()
                .insert_header((header::LOCATION, state.auth_url(Some(&here))))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
        }
        Err(e) => return state.reply(&meta, &e),
    };
    let now = state.clock.now();
    let pending = typed.as_deref().and_then(normalize).and_then(|code| {
        provider
            .devices
            .pending(&code, now)
            .ok()
            .flatten()
            .map(|r| (code, r))
    });
    let message = match &pending {
        Some((code, request)) => format!(
            "Sign in {} as {}? Approve only if the device you are holding shows {code}.",
            request.client_id, person.who.user
        ),
        None => format!(
            "Signed in as {}. Type the code the device shows, then approve.",
            person.who.user
        ),
    };
    let p = Page {
        title: "Sign in a device".into(),
        message,
        form: Some(Form {
            action: provider.endpoint("device/verify"),
            fields: vec![(
                "user_code".into(),
                "Code".into(),
                pending.map(|(code, _)| code).or(typed).unwrap_or_default(),
            )],
            buttons: vec![
                ("action".into(), "approve".into(), "Approve".into()),
                ("action".into(), "deny".into(), "Deny".into()),
            ],
        }),
        ..Page::default()
    };
    with_cookie(
        answer::html(StatusCode::OK, state.pages.render(&p)),
        person.set_cookie,
    )
}

/// `POST /oidc/device/verify`: the person's decision, from certgate's own page only.
pub async fn decide(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let mut meta = RequestMeta::from_request(&req, &state);
    meta.wants_html = true;
    let Some(provider) = state.oidc.clone() else {
        return super::not_configured();
    };
    let own = state.config.public_url.origin().ascii_serialization();
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    if origin != Some(own.as_str()) {
        return state.reply(&meta, &AppError::Forbidden(Denial::ForeignOrigin { own }));
    }
    let person = match super::authorize::person(&req, &state, &meta) {
        Ok(Some(person)) => person,
        Ok(None) => {
            return state.reply(
                &meta,
                &AppError::NoCertificate(super::super::extract::why_no_cert(&req, &state, &meta)),
            )
        }
        Err(e) => return state.reply(&meta, &e),
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let now = state.clock.now();
    let Some((code, request)) = field("user_code").and_then(normalize).and_then(|code| {
        provider
            .devices
            .pending(&code, now)
            .ok()
            .flatten()
            .map(|r| (code, r))
    }) else {
        return done(
            &state,
            StatusCode::BAD_REQUEST,
            "That code is unknown, used or expired: ask the device for a new one.",
        );
    };
    let approve = field("action") == Some("approve");
    let decided = if approve {
        let Some(client) = provider.settings.client(&request.client_id) else {
            return done(
                &state,
                StatusCode::BAD_REQUEST,
                "The app that asked is no longer configured.",
            );
        };
        if !client.admits(&person.who.user, &person.who.groups) {
            return done(
                &state,
                StatusCode::FORBIDDEN,
                &format!("{} may not sign in to {}.", person.who.user, client.id),
            );
        }
        let Some(grant_id) = crate::jwt::random_id() else {
            return state.reply(
                &meta,
                &AppError::Internal("the system random number generator failed".into()),
            );
        };
        let grant = person.grant(&state, &client.id, request.scopes.clone(), None);
        provider
            .devices
            .decide(&code, Some((&grant_id, &grant)), now)
    } else {
        provider.devices.decide(&code, None, now)
    };
    let res = match decided {
        Ok(true) if approve => {
            tracing::info!(target: "audit", event = "oidc_device_approved", user = %person.who.user, client = %request.client_id, "a device was signed in");
            done(
                &state,
                StatusCode::OK,
                &format!(
                    "{} is signed in as {}. You can close this page.",
                    request.client_id, person.who.user
                ),
            )
        }
        Ok(true) => done(
            &state,
            StatusCode::OK,
            "Refused: the device is not signed in.",
        ),
        Ok(false) => done(
            &state,
            StatusCode::BAD_REQUEST,
            "That code is unknown, used or expired: ask the device for a new one.",
        ),
        Err(e) => state.reply(&meta, &AppError::Unavailable(e.to_string())),
    };
    with_cookie(res, person.set_cookie)
}

fn done(state: &AppState, status: StatusCode, message: &str) -> HttpResponse {
    let p = Page {
        title: "Sign in a device".into(),
        message: message.to_string(),
        ..Page::default()
    };
    answer::html(status, state.pages.render(&p))
}

fn with_cookie(mut res: HttpResponse, cookie: Option<String>) -> HttpResponse {
    if let Some(v) = cookie.and_then(|c| header::HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}
