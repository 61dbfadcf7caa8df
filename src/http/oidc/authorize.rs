//! `GET /oidc/authorize`: the authorization code flow's front door (OpenID Connect Core §3.1.2).
//!
//! Until the client and its redirect URI are known to be registered, every error is a page on
//! certgate and never a redirect: an open redirect is how authorization endpoints are most
//! often abused (Pocket ID GHSA-2wvm-8mvp-22qv, GHSA-9h33-g3ww-mqff). After that, errors go
//! back to the client with `error`, `state` and `iss` (RFC 9207).

use std::collections::BTreeSet;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

use super::super::auth::mint_session;
use super::super::extract::{self, RequestMeta};
use super::super::pages::Page;
use super::super::{answer, AppState, State};
use crate::error::AppError;
use crate::identity::Identity;
use crate::oidc::{AuthMethod, Client, NewGrant, Provider};

/// The longest value certgate takes for any parameter (a `state` or `nonce` longer than this
/// is not a random value but an attack on storage).
const MAX_VALUE: usize = 2048;

pub async fn handle(req: HttpRequest, state: State) -> HttpResponse {
    let mut meta = RequestMeta::from_request(&req, &state);
    meta.wants_html = true;
    let Some(provider) = state.oidc.clone() else {
        return super::not_configured();
    };
    match authorize(&req, &state, &meta, &provider) {
        Ok(res) => res,
        Err(Refusal::Page(status, why)) => page(&state, status, &why),
        Err(Refusal::App(e)) => state.reply(&meta, &e),
        Err(Refusal::Back(back)) => back.response(),
    }
}

/// How a request is refused.
enum Refusal {
    /// A page on certgate: the client or its redirect URI is not to be trusted.
    Page(StatusCode, String),
    /// As certgate refuses a certificate anywhere (a page saying why).
    App(AppError),
    /// Back to the client's registered redirect URI with an error.
    Back(Back),
}

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

/// An answer to the client's redirect URI.
struct Back {
    redirect_uri: url::Url,
    params: Vec<(&'static str, String)>,
}

impl Back {
    fn error(
        redirect_uri: &url::Url,
        issuer: &str,
        state: Option<&str>,
        error: &str,
        why: &str,
    ) -> Refusal {
        let mut params = vec![
            ("error", error.to_string()),
            ("error_description", why.to_string()),
        ];
        if let Some(s) = state {
            params.push(("state", s.to_string()));
        }
        params.push(("iss", issuer.to_string()));
        Refusal::Back(Self {
            redirect_uri: redirect_uri.clone(),
            params,
        })
    }

    fn response(self) -> HttpResponse {
        let mut url = self.redirect_uri;
        url.query_pairs_mut()
            .extend_pairs(self.params.iter().map(|(k, v)| (*k, v.as_str())));
        HttpResponse::Found()
            .insert_header((header::LOCATION, url.as_str()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()
    }
}

fn page(state: &AppState, status: StatusCode, why: &str) -> HttpResponse {
    let p = Page {
        title: "Sign-in request refused".into(),
        message: why.to_string(),
        hints: vec![
            "The app that sent you here is not set up for sign-in with certgate, or sent a request certgate does not take. Tell its administrator what this page says.".into(),
        ],
        code: Some(format!("{} · invalid_request", status.as_u16())),
        ..Page::default()
    };
    answer::html(status, state.pages.render(&p))
}

fn authorize(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
    provider: &Provider,
) -> Result<HttpResponse, Refusal> {
    let bad = |why: String| Refusal::Page(StatusCode::BAD_REQUEST, why);
    let params = super::params(req.query_string().as_bytes()).map_err(bad)?;
    for (name, value) in &params {
        if value.len() > MAX_VALUE {
            return Err(bad(format!(
                "the parameter {name} is longer than {MAX_VALUE} characters"
            )));
        }
    }
    let get = |name: &str| params.get(name).map(String::as_str);
    let client = get("client_id")
        .and_then(|id| provider.settings.client(id))
        .ok_or_else(|| {
            bad(match get("client_id") {
                Some(id) => format!("no app with the client_id `{id}` is registered here"),
                None => "the request names no client_id".into(),
            })
        })?;
    let redirect_uri = get("redirect_uri")
        .filter(|uri| client.redirect_uris.iter().any(|r| r == uri))
        .and_then(|uri| url::Url::parse(uri).ok())
        .ok_or_else(|| bad(format!(
            "the redirect_uri is not one registered for {} (oidc.clients' redirect_uris must list it exactly)",
            client.id
        )))?;
    let issuer = provider.settings.issuer.as_str();
    let client_state = get("state");
    let back =
        |error: &str, why: &str| Back::error(&redirect_uri, issuer, client_state, error, why);

    if get("request").is_some() {
        return Err(back(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if get("request_uri").is_some() {
        return Err(back(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    if get("response_type") != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "only the authorization code flow (response_type=code) is supported",
        ));
    }
    if get("response_mode").is_some_and(|m| m != "query") {
        return Err(back(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    let requested: BTreeSet<&str> = get("scope")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if !requested.contains("openid") {
        return Err(back("invalid_scope", "the scope must include openid"));
    }
    let scopes: Vec<&str> = requested
        .iter()
        .copied()
        .filter(|s| client.scopes.contains(*s))
        .collect();
    let challenge = pkce(client, get("code_challenge"), get("code_challenge_method"))
        .map_err(|why| back("invalid_request", why))?;
    let prompt: BTreeSet<&str> = get("prompt")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if prompt.contains("none") && prompt.len() > 1 {
        return Err(back(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }

    let Some(person) = person(req, state, meta)? else {
        if prompt.contains("none") {
            return Err(back(
                "login_required",
                "no certgate session and no client certificate",
            ));
        }
        // A browser signs in with its certificate at /auth and comes back here.
        let here = format!(
            "{}/oidc/authorize?{}",
            state.config.public_base(),
            req.query_string()
        );
        return Ok(HttpResponse::Found()
            .insert_header((header::LOCATION, state.auth_url(Some(&here))))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish());
    };
    if !client.admits(&person.who.user, &person.who.groups) {
        return Err(Refusal::Page(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not sign in to {} (oidc.clients' users and groups).",
                person.who.user, client.id
            ),
        ));
    }

    let (Some(code), Some(grant_id)) = (crate::oidc::secret(), crate::jwt::random_id()) else {
        return Err(AppError::Internal("the system random number generator failed".into()).into());
    };
    let now = state.clock.now();
    let grant = person.grant(
        state,
        &client.id,
        scopes.join(" "),
        get("nonce").map(String::from),
    );
    let expires =
        now.saturating_add(i64::try_from(provider.settings.code_ttl.as_secs()).unwrap_or(60));
    provider
        .grants
        .create(
            &grant_id,
            &grant,
            &crate::oidc::grants::hash(&code),
            redirect_uri.as_str(),
            challenge,
            expires,
        )
        .map_err(|e| AppError::Unavailable(format!("cannot store the grant: {e}")))?;
    tracing::info!(
        target: "audit",
        event = "oidc_code",
        user = %person.who.user,
        client = %client.id,
        grant = %grant_id,
        serial = person.serial.as_deref().unwrap_or(""),
        "authorization code issued"
    );
    let mut params = vec![("code", code)];
    if let Some(s) = client_state {
        params.push(("state", s.to_string()));
    }
    params.push(("iss", issuer.to_string()));
    let mut res = Back {
        redirect_uri,
        params,
    }
    .response();
    if let Some(cookie) = person.set_cookie {
        if let Ok(v) = header::HeaderValue::from_str(&cookie) {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

/// The PKCE challenge to bind to the code: S256 only; required of public clients.
fn pkce<'a>(
    client: &Client,
    challenge: Option<&'a str>,
    method: Option<&str>,
) -> Result<Option<&'a str>, &'static str> {
    match (challenge, method) {
        (None, Some(_)) => Err("code_challenge_method without code_challenge"),
        (None, None) if client.auth_method == AuthMethod::None => {
            Err("a public client must use PKCE (code_challenge with code_challenge_method=S256)")
        }
        (None, None) => Ok(None),
        (Some(_), None | Some("plain")) => {
            Err("code_challenge_method must be S256 (plain is not accepted)")
        }
        (Some(_), Some(m)) if m != "S256" => Err("code_challenge_method must be S256"),
        (Some(c), Some(_)) => {
            let shaped = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if shaped {
                Ok(Some(c))
            } else {
                Err("code_challenge is not an S256 challenge (43 base64url characters)")
            }
        }
    }
}

/// Who is signing in, and the certgate session the grant belongs to.
pub(super) struct Person {
    pub(super) who: Identity,
    /// The certgate session's id: the ID token's `sid`.
    pub(super) sid: String,
    pub(super) serial: Option<String>,
    pub(super) auth_time: i64,
    /// A session minted here for a certificate without one.
    pub(super) set_cookie: Option<String>,
}

impl Person {
    /// A new grant of `scopes` to `client_id` for this person, made now.
    pub(super) fn grant(
        &self,
        state: &AppState,
        client_id: &str,
        scopes: String,
        nonce: Option<String>,
    ) -> NewGrant {
        NewGrant {
            client_id: client_id.to_string(),
            user: self.who.user.clone(),
            sid: Some(self.sid.clone()),
            cert_serial: self.serial.clone(),
            scopes,
            nonce,
            auth_time: self.auth_time,
            created_ms: state.revocations.mint_time(
                &self.who.user,
                self.serial.as_deref(),
                state.clock.now_ms(),
            ),
        }
    }
}

/// The person behind the request: their live certgate session, else their certificate (a
/// session is started for it). `None`: neither.
pub(super) fn person(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
) -> Result<Option<Person>, AppError> {
    if let Some(claims) = state.session(req) {
        let who = crate::identity::from_claims(&claims, &state.config.identity)?;
        if state.revocations.is_locked(&who.user) {
            return Err(crate::identity::IdentityError::Locked(who.user).into());
        }
        return Ok(Some(Person {
            who,
            sid: claims.jti.clone(),
            serial: claims.x5s.clone(),
            auth_time: claims.iat,
            set_cookie: None,
        }));
    }
    let Some(cert) = extract::verified_cert(req, state, meta)? else {
        return Ok(None);
    };
    // Verified, and not revoked (verified_cert checks its standing).
    let who = state.cert_holder(&cert)?;
    let (claims, set_cookie) = mint_session(state, &cert, &who, meta)?;
    Ok(Some(Person {
        who,
        sid: claims.jti,
        serial: claims.x5s,
        auth_time: claims.iat,
        set_cookie: Some(set_cookie),
    }))
}
