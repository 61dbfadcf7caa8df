//! What the token, introspection, revocation and device authorization endpoints share: the
//! form body (capped at [`MAX_BODY`] bytes, read as it arrives), client authentication by the
//! client's configured method (HTTP Basic, the form, or none for public clients; secrets
//! compared in constant time), and the `WWW-Authenticate: Basic` challenge on `invalid_client`.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;

use super::super::extract::RequestMeta;
use super::super::AppState;
use crate::error::{AppError, OAuthError};
use crate::oidc::params::{self, MAX_BODY};
use crate::oidc::{AuthMethod, Client, Provider};

pub fn oauth(error: OAuthError, description: impl Into<String>) -> AppError {
    AppError::OAuth {
        error,
        description: description.into(),
    }
}

/// The parameters of a form POST: `application/x-www-form-urlencoded`, at most [`MAX_BODY`]
/// bytes (a longer body is not read further), each parameter once.
///
/// # Errors
/// `invalid_request`, naming what is wrong.
pub async fn form(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<HashMap<String, String>, AppError> {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !form_type.is_some_and(|t| t.eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
        return Err(oauth(
            OAuthError::InvalidRequest,
            "send the parameters as application/x-www-form-urlencoded (Content-Type)",
        ));
    }
    let too_large = || {
        oauth(
            OAuthError::InvalidRequest,
            params::ParamError::TooLarge { limit: MAX_BODY }.to_string(),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            oauth(
                OAuthError::InvalidRequest,
                format!("the request body cannot be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    params::parse(&body).map_err(|e| oauth(OAuthError::InvalidRequest, e.to_string()))
}

/// The configured client a request names, authenticated or not: the metric label and the
/// audit log's client are only ever a configured id (or none).
pub fn named<'a>(
    req: &HttpRequest,
    provider: &'a Provider,
    form_id: Option<&str>,
) -> Option<&'a Client> {
    let basic = basic(req).and_then(Result::ok).map(|(id, _)| id);
    basic
        .as_deref()
        .or(form_id)
        .and_then(|id| provider.settings.client(id))
}

fn basic(req: &HttpRequest) -> Option<Result<(String, String), &'static str>> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .map(params::basic_credentials)
}

/// The client the request authenticates as, by its configured method.
///
/// # Errors
/// `invalid_client` (no, unknown or wrong credentials, or another method than the client's);
/// `invalid_request` for Basic credentials and a `client_secret` at once.
pub fn authenticate<'a>(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
    provider: &'a Provider,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<&'a Client, AppError> {
    let invalid = |why: &str| oauth(OAuthError::InvalidClient, why);
    let basic = basic(req).transpose().map_err(invalid)?;
    let (id, secret, method) = match (basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => {
            return Err(oauth(
                OAuthError::InvalidRequest,
                "use one way to authenticate the client, not Basic and client_secret",
            ))
        }
        (Some((id, secret)), form, None) => {
            if form.is_some_and(|f| f != id) {
                return Err(invalid("client_id differs from the Basic credentials"));
            }
            (id, Some(secret), AuthMethod::SecretBasic)
        }
        (None, Some(id), Some(secret)) => (
            id.to_string(),
            Some(secret.to_string()),
            AuthMethod::SecretPost,
        ),
        (None, Some(id), None) => (id.to_string(), None, AuthMethod::None),
        (None, None, _) => return Err(invalid("no client credentials")),
    };
    let client = provider
        .settings
        .client(&id)
        .ok_or_else(|| invalid("unknown client"))?;
    if client.auth_method == AuthMethod::TlsClientAuth && method == AuthMethod::None {
        return by_certificate(req, state, meta, client);
    }
    if client.auth_method != method {
        return Err(invalid(&format!(
            "this client authenticates with {}",
            client.auth_method.as_str()
        )));
    }
    let matches = match (&client.secret, secret) {
        (Some(expected), Some(given)) => bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            given.as_bytes(),
        )),
        (None, None) => true,
        _ => false,
    };
    if !matches {
        return Err(invalid("wrong client secret"));
    }
    Ok(client)
}

/// A `tls_client_auth` client (RFC 8705 §2): the request's certificate, verified on a chain to
/// `client_ca` and not revoked, carries the name the client is known by.
fn by_certificate<'a>(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
    client: &'a Client,
) -> Result<&'a Client, AppError> {
    let invalid = |why: &str| oauth(OAuthError::InvalidClient, why);
    let cert = super::super::extract::verified_cert(req, state, meta)
        .map_err(|e| invalid(&format!("the client certificate was refused: {e}")))?
        .ok_or_else(|| {
            invalid("this client authenticates with its certificate: present it (tls_client_auth)")
        })?;
    match &client.tls_subject {
        Some(subject) if subject.matches(cert.cert()) => Ok(client),
        _ => Err(invalid("the certificate presented is not this client's")),
    }
}

/// The answer to a refused request: JSON, and on `invalid_client` the Basic challenge
/// (RFC 6749 §5.2).
pub fn refuse(state: &AppState, meta: &RequestMeta, e: &AppError) -> HttpResponse {
    let mut res = state.reply(meta, e);
    if matches!(
        e,
        AppError::OAuth {
            error: OAuthError::InvalidClient,
            ..
        }
    ) {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"certgate\""),
        );
    }
    res
}

/// A client-authenticated form endpoint, whole: reads the form (capped), authenticates the
/// client, runs `work` with the parameters and the client, counts the request under the client
/// it names, and answers: `ok` turns a result into its outcome and response; a refusal is
/// audited and answered as [`refuse`] does.
pub async fn serve<T>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    provider: &Provider,
    endpoint: crate::metrics::OidcEndpoint,
    work: impl FnOnce(&HashMap<String, String>, &RequestMeta, &Client) -> Result<T, AppError>,
    ok: impl FnOnce(T) -> (crate::error::OidcOutcome, HttpResponse),
) -> HttpResponse {
    let meta = RequestMeta::from_request(req, state);
    let (named, answer) = match form(req, payload).await {
        Ok(params) => {
            let get = |name: &str| params.get(name).map(String::as_str);
            let answer = authenticate(
                req,
                state,
                &meta,
                provider,
                get("client_id"),
                get("client_secret"),
            )
            .and_then(|client| work(&params, &meta, client));
            (named(req, provider, get("client_id")), answer)
        }
        Err(e) => (named(req, provider, None), Err(e)),
    };
    let client_id = named.map(|c| c.id.as_str());
    match answer {
        Ok(value) => {
            let (outcome, res) = ok(value);
            super::count(state, endpoint, client_id, outcome);
            res
        }
        Err(e) => {
            super::refused(state, &meta, endpoint, client_id, &e);
            refuse(state, &meta, &e)
        }
    }
}

/// A JSON answer that no cache keeps (RFC 6749 §5.1).
pub fn no_cache_json(json: &serde_json::Value) -> HttpResponse {
    let mut res = super::super::answer::json(actix_web::http::StatusCode::OK, json);
    res.headers_mut()
        .insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    res
}
