//! `GET|POST /oidc/logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), the
//! discovery document's `end_session_endpoint`.
//!
//! - `id_token_hint` (an ID token certgate signed, expired or not): its `sid` names the certgate
//!   session to end, its `aud` the app. A hint that certgate did not sign is refused with a
//!   page and ends nothing.
//! - `client_id` alone (apps with a fixed logout URL cannot carry a hint): this browser's own
//!   session (its cookie) ends, once the person confirms on certgate's page (the
//!   specification asks for that without a hint: any site could send a browser here).
//! - `post_logout_redirect_uri`: the browser goes back there (with `state`) only when it is
//!   one of that app's `post_logout_redirect_uris`, exactly; otherwise a "signed out" page.
//!
//! Ending the session ends every grant made from it: the grant check sees the session's id
//! revoked at once, and the sweep beside the servers marks those grants and queues their apps'
//! back-channel logout tokens. With a valid hint no confirmation is asked (the specification
//! allows that: the app proves it signed the person in).

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::super::pages::Page;
use super::super::{answer, cookie, AppState, State};
use crate::oidc::{Client, Provider};

/// The longest value taken for any parameter (an ID token is well below).
const MAX_VALUE: usize = 8192;

pub async fn get(req: HttpRequest, state: State) -> HttpResponse {
    let raw = req.query_string().as_bytes().to_vec();
    handle(&req, &raw, state).await
}

/// The form's fields, and (from the confirmation page, which keeps the app's parameters in
/// its action URL) the query's.
pub async fn post(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let mut raw = req.query_string().as_bytes().to_vec();
    if !raw.is_empty() && !body.is_empty() {
        raw.push(b'&');
    }
    raw.extend_from_slice(&body);
    handle(&req, &raw, state).await
}

/// A certgate session to end: its id, when it expires at the latest, its user.
struct Ending {
    jti: String,
    until: i64,
    user: String,
}

async fn handle(req: &HttpRequest, raw: &[u8], state: State) -> HttpResponse {
    let Some(provider) = state.oidc.clone() else {
        return super::not_configured();
    };
    let params = match super::params(raw) {
        Ok(p) => p,
        Err(why) => return refused(&state, &why),
    };
    if let Some((name, _)) = params.iter().find(|(_, v)| v.len() > MAX_VALUE) {
        return refused(
            &state,
            &format!("the parameter {name} is longer than {MAX_VALUE} characters"),
        );
    }
    if !params.contains_key("id_token_hint") && !confirmed(req, &state, &params) {
        return confirm(&state, &provider, &params);
    }
    let (client, endings) = match what_to_end(req, &state, &provider, &params) {
        Ok(found) => found,
        Err(why) => return refused(&state, &why),
    };
    let browser_ended = state
        .session(req)
        .is_some_and(|own| endings.iter().any(|e| e.jti == own.jti));
    if let Err(why) = end(&state, &endings).await {
        tracing::error!(error = %why, "RP-initiated logout could not be recorded");
        return answer::html(
            StatusCode::SERVICE_UNAVAILABLE,
            state.pages.render(&Page::message(
                "Not signed out",
                "certgate could not record the logout.",
                "Try again in a moment; the administrator finds why in certgate's log.",
            )),
        );
    }
    let back = back_to(client, &params);
    let mut res = match &back {
        Some(url) => HttpResponse::Found()
            .insert_header((header::LOCATION, url.as_str()))
            .finish(),
        None => {
            let mut page = Page::signed_out(false);
            if params.contains_key("post_logout_redirect_uri") {
                page.hints.push("The app asked certgate to send you back to an address it has not registered, so you stay here: go back to the app yourself.".into());
            }
            answer::html(StatusCode::OK, state.pages.render(&page))
        }
    };
    if browser_ended {
        if let Ok(v) = header::HeaderValue::from_str(&cookie::clear(&state.config.session)) {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

/// The person's "Sign out" from the confirmation page: posted from certgate's own origin.
fn confirmed(req: &HttpRequest, state: &AppState, params: &HashMap<String, String>) -> bool {
    let own = state.config.public_url.origin().ascii_serialization();
    req.method() == actix_web::http::Method::POST
        && params.get("confirm").map(String::as_str) == Some("1")
        && req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            == Some(own.as_str())
}

/// Asks the person whether to sign out, carrying the app's parameters to the answer.
fn confirm(
    state: &AppState,
    provider: &Provider,
    params: &HashMap<String, String>,
) -> HttpResponse {
    let mut action = url::Url::parse(&provider.endpoint("logout")).ok();
    if let Some(url) = action.as_mut() {
        let mut query = url.query_pairs_mut();
        for name in [
            "client_id",
            "post_logout_redirect_uri",
            "state",
            "ui_locales",
        ] {
            if let Some(value) = params.get(name) {
                query.append_pair(name, value);
            }
        }
    }
    let app = params
        .get("client_id")
        .filter(|id| provider.settings.client(id).is_some())
        .map_or_else(|| "An app".to_string(), |id| format!("The app {id}"));
    let page = Page {
        title: "Sign out?".into(),
        message: format!("{app} asks certgate to sign you out of certgate and of the apps you signed in to with it."),
        form: Some(super::super::pages::Form {
            action: action.map_or_else(|| provider.endpoint("logout"), String::from),
            fields: Vec::new(),
            buttons: vec![("confirm".into(), "1".into(), "Sign out".into())],
        }),
        ..Page::default()
    };
    let mut res = answer::html(StatusCode::OK, state.pages.render(&page));
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

/// The app the request names (by the hint's `aud`, or `client_id`) and the sessions to end.
fn what_to_end<'p>(
    req: &HttpRequest,
    state: &AppState,
    provider: &'p Provider,
    params: &HashMap<String, String>,
) -> Result<(Option<&'p Client>, Vec<Ending>), String> {
    let get = |name: &str| params.get(name).map(String::as_str);
    let hint = get("id_token_hint")
        .map(|t| {
            provider
                .keys
                .verify_id_token(t, &provider.settings.issuer)
                .map_err(|why| format!("id_token_hint is not an ID token certgate signed: {why}"))
        })
        .transpose()?;
    let audience = hint.as_ref().and_then(|c| match &c["aud"] {
        serde_json::Value::String(a) => Some(a.clone()),
        serde_json::Value::Array(all) if all.len() == 1 => {
            all.first().and_then(|a| a.as_str()).map(String::from)
        }
        _ => None,
    });
    let client_id = match (audience, get("client_id")) {
        (Some(aud), Some(id)) if aud != id => {
            return Err(format!(
                "client_id `{id}` is not the app the id_token_hint was issued to"
            ))
        }
        (Some(aud), _) => Some(aud),
        (None, id) => id.map(String::from),
    };
    let client = client_id
        .as_deref()
        .and_then(|id| provider.settings.client(id));
    let own = state.session(req);
    let mut endings = Vec::new();
    match hint
        .as_ref()
        .map(|c| (c["sid"].as_str(), c["sub"].as_str()))
    {
        // The session the app's sign-in came from, whichever browser asks.
        Some((Some(sid), sub)) => {
            if !state.revocations.is_jti_revoked(sid) {
                endings.push(Ending {
                    jti: sid.to_string(),
                    until: state
                        .clock
                        .now()
                        .saturating_add(state.config.max_lifetime()),
                    user: sub.unwrap_or_default().to_string(),
                });
            }
        }
        // A hint without a session: this browser's, if it is the same person's.
        Some((None, sub)) => {
            endings.extend(own.filter(|c| Some(c.sub.as_str()) == sub).map(|c| Ending {
                jti: c.jti.clone(),
                until: c.exp,
                user: c.sub.clone(),
            }))
        }
        None => endings.extend(own.map(|c| Ending {
            jti: c.jti.clone(),
            until: c.exp,
            user: c.sub.clone(),
        })),
    }
    Ok((client, endings))
}

/// Revokes the sessions (off the request thread: storing may wait), counts and audits them.
async fn end(state: &AppState, endings: &[Ending]) -> Result<(), String> {
    if endings.is_empty() {
        return Ok(());
    }
    let revocations = std::sync::Arc::clone(&state.revocations);
    let ids: Vec<(String, i64)> = endings.iter().map(|e| (e.jti.clone(), e.until)).collect();
    web::block(move || {
        ids.iter()
            .map(|(jti, until)| revocations.revoke_jti(jti, *until))
            .collect::<Result<Vec<()>, String>>()
    })
    .await
    .map_err(|e| e.to_string())??;
    for e in endings {
        state
            .metrics
            .revocations
            .with_label_values(&["session"])
            .inc();
        let actor = crate::audit::Actor {
            user: Some(&e.user),
            device: None,
            serial: None,
            client: None,
        };
        crate::audit::revoke(&actor, "session", &e.jti, "rp-initiated logout");
    }
    Ok(())
}

/// The registered `post_logout_redirect_uri` with `state`, if the request names one exactly.
fn back_to(client: Option<&Client>, params: &HashMap<String, String>) -> Option<url::Url> {
    let uri = params.get("post_logout_redirect_uri")?;
    let client = client?;
    if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
        return None;
    }
    let mut url = url::Url::parse(uri).ok()?;
    if let Some(s) = params.get("state") {
        url.query_pairs_mut().append_pair("state", s);
    }
    Some(url)
}

fn refused(state: &AppState, why: &str) -> HttpResponse {
    let page = Page {
        title: "Logout request refused".into(),
        message: why.to_string(),
        hints: vec![
            "Nothing was signed out. The app that sent you here sent a request certgate does not take; tell its administrator what this page says.".into(),
        ],
        code: Some("400 · invalid_request".into()),
        ..Page::default()
    };
    answer::html(StatusCode::BAD_REQUEST, state.pages.render(&page))
}
