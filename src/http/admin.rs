//! Admin pages, for members of `admin.groups` signed in with their session: create an
//! enrollment link (with its QR code) for a user's new device; revoke a user, a certificate or
//! a session; lock a user out and let them back in (also as an API for an admin's
//! certificate, e.g. curl). Cross-site posts are refused.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::answer;
use super::extract::{self, RequestMeta};
use super::pages::{Form, Link, Page};
use super::{AppState, State};
use crate::ca::enroll::{EnrollStore, Enrollment};
use crate::error::{AppError, BadInput, Challenge, Denial};
use crate::identity::{self, Identity};
use crate::revocation::Entry;

mod lockout;
pub use lockout::user;

fn admin(req: &HttpRequest, state: &AppState) -> Result<Identity, AppError> {
    let cfg = &state.config;
    let here = format!("{}/admin/enroll", cfg.public_base());
    if let Some(claims) = state.session(req) {
        // A leaked cookie is not enough: the admin's own certificate must be on the request.
        let meta = RequestMeta::from_request(req, state);
        let presented = extract::verified_cert(req, state, &meta).ok().flatten();
        let bound = match (presented, &claims.cnf) {
            (Some(cert), Some(cnf)) => subtle::ConstantTimeEq::ct_eq(
                cert.cert().thumbprint.as_bytes(),
                cnf.x5t_s256.as_bytes(),
            )
            .into(),
            _ => false,
        };
        if !bound {
            return Err(AppError::Forbidden(Denial::NotBoundToCertificate));
        }
        let who = identity::from_claims(&claims, &cfg.identity)?;
        if who.groups.iter().any(|g| cfg.admin_groups.contains(g)) {
            return Ok(who);
        }
        return Err(AppError::Forbidden(Denial::NotAdmin { user: who.user }));
    }
    Err(AppError::Unauthenticated(Challenge {
        location: Some(state.auth_url(Some(&here))),
        redirect: true,
        refused: None,
        reason: "admin page without a session".into(),
    }))
}

/// What every admin route demands before its handler runs ([`super::routes::Class::Admin`]):
/// a session bound to an admin's certificate, or, without a session, an admin's certificate
/// alone (the API). Each handler then checks what its own route needs (origin, which of the
/// two it takes). Refusals are the handlers' own: no session and no certificate gets
/// [`admin`]'s challenge, a certificate of someone else [`admin_by_cert`]'s 403.
pub(super) fn gate(req: &HttpRequest, state: &AppState) -> Result<(), AppError> {
    if state.session(req).is_some() {
        return admin(req, state).map(drop);
    }
    let meta = RequestMeta::from_request(req, state);
    match extract::verified_cert(req, state, &meta)? {
        Some(cert) => admin_by_cert(&cert, state).map(drop),
        None => admin(req, state).map(drop),
    }
}

/// The certificate's holder, when they are in `admin.groups`.
fn admin_by_cert(cert: &crate::cert::VerifiedCert, state: &AppState) -> Result<Identity, AppError> {
    let who = state.cert_holder(cert)?;
    if who
        .groups
        .iter()
        .any(|g| state.config.admin_groups.contains(g))
    {
        Ok(who)
    } else {
        Err(AppError::Forbidden(Denial::NotAdmin { user: who.user }))
    }
}

/// Admin forms are posted by a browser from certgate's own origin: `Origin` must say exactly
/// that (a replayed request from a server has none).
fn same_origin(req: &HttpRequest, state: &AppState) -> Result<(), AppError> {
    let own = state.config.public_url.origin().ascii_serialization();
    match req
        .headers()
        .get(actix_web::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        Some(origin) if origin == own => Ok(()),
        _ => Err(AppError::Forbidden(Denial::ForeignOrigin { own })),
    }
}

fn person<'a>(req: &'a HttpRequest, state: &AppState) -> RequestMeta<'a> {
    let mut meta = RequestMeta::from_request(req, state);
    meta.wants_html = true;
    meta
}

fn form_page(state: &AppState, message: &str) -> Page {
    Page {
        title: "Enroll a device".into(),
        message: message.into(),
        hints: vec![
            "The link works once, for the minutes given, and issues one certificate for the user."
                .into(),
        ],
        link: None,
        secret: None,
        svg: None,
        form: Some(Form {
            action: state.public("/admin/enroll"),
            fields: vec![
                ("user".into(), "User".into(), String::new()),
                (
                    "device".into(),
                    "Device (e.g. phone, watch)".into(),
                    String::new(),
                ),
                (
                    "minutes".into(),
                    "Link valid for (minutes)".into(),
                    "15".into(),
                ),
                (
                    "days".into(),
                    "Certificate valid for (days)".into(),
                    "365".into(),
                ),
            ],
            buttons: vec![("create".into(), "1".into(), "Create link".into())],
        }),
        ..Page::default()
    }
}

pub async fn show(req: HttpRequest, state: State) -> HttpResponse {
    let meta = person(&req, &state);
    match admin(&req, &state) {
        Ok(_) => answer::html(
            StatusCode::OK,
            state.pages.render(&form_page(
                &state,
                "Create a one-time link that installs a certificate on a new device.",
            )),
        ),
        Err(e) => state.reply(&meta, &e),
    }
}

pub async fn create(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let meta = person(&req, &state);
    let result = same_origin(&req, &state)
        .and_then(|()| admin(&req, &state))
        .and_then(|who| link_page(&body, &state, &who));
    match result {
        Ok(page) => answer::html(StatusCode::OK, state.pages.render(&page)),
        Err(e) => state.reply(&meta, &e),
    }
}

/// A form field that cannot be used.
fn bad(field: &'static str, problem: String) -> AppError {
    AppError::BadRequest(BadInput::Field { field, problem })
}

fn link_page(body: &[u8], state: &AppState, who: &Identity) -> Result<Page, AppError> {
    let form = extract::Form::parse(body);
    let field = |name: &str| form.get(name).map(str::trim).filter(|v| !v.is_empty());
    let number = |name: &'static str, default: i64, max: i64| -> Result<i64, AppError> {
        match field(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| bad(name, format!("`{v}` is not a number from 1 to {max}"))),
        }
    };
    let user = field("user").ok_or_else(|| bad("user", "missing".into()))?;
    crate::ca::store::check_name(user, 256).map_err(|e| bad("user", e.to_string()))?;
    let device = field("device").map(String::from);
    if let Some(Err(e)) = device
        .as_deref()
        .map(|d| crate::ca::store::check_name(d, 64))
    {
        return Err(bad("device", e.to_string()));
    }
    let minutes = number("minutes", 15, 1440)?;
    let days = number("days", 365, 3650)?;
    let now = state.clock.now();
    let enrollment = Enrollment {
        user: user.to_string(),
        device: device.clone(),
        days,
        expires_at: now + minutes * 60,
    };
    let secret = EnrollStore::new(&state.config.data_dir)
        .create(&enrollment)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let link = format!("{}/enroll/{secret}", state.config.public_base());
    let svg = qrcode::QrCode::new(link.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(240, 240)
                .build()
        })
        .ok();
    tracing::info!(event = "enroll_link", admin = %who.user, user = %user, device = ?device, minutes, "enrollment link created");
    Ok(Page {
        title: "Enrollment link ready".into(),
        message: format!("Open this link on {user}'s device, or scan the code with it. It works once, for {minutes} minutes."),
        hints: Vec::new(),
        link: Some(Link { href: link.clone(), text: link }),
        secret: None,
        svg,
        form: None,
        ..Page::default()
    })
}

/// `/admin/revoke` from a browser (session bound to the admin's certificate, exact `Origin`) or
/// from an API client holding an admin's certificate and no cookie. A browser always sends
/// `Origin` on a POST, and presents a certificate to cross-site forms too, so any `Origin` must
/// be certgate's own.
fn revoke_admin(req: &HttpRequest, state: &AppState) -> Result<Identity, AppError> {
    let h = req.headers();
    // Anything a browser adds (even one that strips Origin) takes the browser path.
    let browser = h.contains_key(actix_web::http::header::ORIGIN)
        || h.contains_key("sec-fetch-site")
        || h.contains_key(actix_web::http::header::COOKIE)
        || h.contains_key(actix_web::http::header::REFERER);
    if browser {
        same_origin(req, state)?;
        return admin(req, state);
    }
    let meta = RequestMeta::from_request(req, state);
    let Some(cert) = extract::verified_cert(req, state, &meta)? else {
        return Err(AppError::Unauthenticated(Challenge {
            location: None,
            redirect: false,
            refused: None,
            reason: "admin API without a client certificate".into(),
        }));
    };
    admin_by_cert(&cert, state)
}

fn revoke_form(state: &AppState, message: &str) -> Page {
    let locked = state.revocations.locked_users();
    let sections = if locked.is_empty() {
        Vec::new()
    } else {
        vec![super::pages::Section {
            heading: "Locked out now".into(),
            items: locked,
        }]
    };
    Page {
        title: "Revoke".into(),
        message: message.into(),
        sections,
        hints: vec![
            "Fill in one field. A user: every session and token issued until now ends (they can sign in again with their certificate). A certificate serial: the certificate and every token minted from it stop working, for good. A device: the tokens minted from its certificate until now end, and it may sign in again. A session: one token id (jti) from the audit log.".into(),
            "Lock a user out: their certificates, sessions and tokens are refused until you let them back in (a user disabled in the configuration file stays disabled).".into(),
        ],
        form: Some(Form {
            action: state.public("/admin/revoke"),
            fields: vec![
                ("user".into(), "User".into(), String::new()),
                ("serial".into(), "Certificate serial (hex)".into(), String::new()),
                (
                    "device".into(),
                    "Sign out a device: its certificate serial (hex)".into(),
                    String::new(),
                ),
                ("jti".into(), "Session or token id (jti)".into(), String::new()),
            ],
            buttons: vec![
                ("revoke".into(), "1".into(), "Revoke".into()),
                ("lock".into(), "1".into(), "Lock user out".into()),
                ("unlock".into(), "1".into(), "Let user back in".into()),
            ],
        }),
        ..Page::default()
    }
}

pub async fn show_revoke(req: HttpRequest, state: State) -> HttpResponse {
    let meta = person(&req, &state);
    match admin(&req, &state) {
        Ok(_) => answer::html(
            StatusCode::OK,
            state.pages.render(&revoke_form(
                &state,
                "End access everywhere within a second: every certgate sharing this store refuses it.",
            )),
        ),
        Err(e) => state.reply(&meta, &e),
    }
}

/// The request of an admin form post: a browser's gets a page back (`RequestMeta` says so
/// for GET only), an API client's JSON.
fn form_post<'a>(req: &'a HttpRequest, state: &AppState) -> RequestMeta<'a> {
    let mut meta = RequestMeta::from_request(req, state);
    meta.wants_html = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    meta
}

/// `POST /admin/revoke` with one of `user`, `serial`, `device`, `jti` (form-encoded): a page for a
/// browser, `{"revoked": kind, "id": id}` for an API client.
pub async fn revoke(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let meta = form_post(&req, &state);
    let asked = revoke_admin(&req, &state).and_then(|who| Ok((who, requested(&body, &state)?)));
    carry_out(&state, &meta, asked).await
}

/// Stores what an admin asked for (a revocation or a lock-out) and answers, or says why not.
pub(super) async fn carry_out(
    state: &AppState,
    meta: &RequestMeta<'_>,
    asked: Result<(Identity, Entry), AppError>,
) -> HttpResponse {
    let stored = match asked {
        Ok((who, entry)) => store(state, meta, &who, entry).await,
        Err(e) => Err(e),
    };
    match stored {
        Ok(entry) => revoked(state, meta, &entry),
        Err(e) => state.reply(meta, &e),
    }
}

/// The one revocation (or lock-out) the form asks for.
fn requested(body: &[u8], state: &AppState) -> Result<Entry, AppError> {
    let form = extract::Form::parse(body);
    if let Some(lock) = lockout::requested(&form, state.clock.now_ms()) {
        return lock;
    }
    let field = |name: &str| form.get(name);
    Entry::requested(
        field("user"),
        field("serial"),
        field("device"),
        field("jti"),
        state.clock.now_ms(),
        state.config.max_lifetime(),
    )
    .map_err(|why| AppError::BadRequest(BadInput::Revocation(why)))
}

/// Stores `entry` (off the request threads: storing may wait on the network, Redis), counts
/// and audits it.
async fn store(
    state: &AppState,
    meta: &RequestMeta<'_>,
    who: &Identity,
    entry: Entry,
) -> Result<Entry, AppError> {
    let revocations = std::sync::Arc::clone(&state.revocations);
    let stored = entry.clone();
    web::block(move || revocations.revoke(stored))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
        .map_err(|why| {
            AppError::Unavailable(format!("the revocation could not be stored: {why}"))
        })?;
    let (kind, id) = entry.describe();
    state.metrics.revocations.with_label_values(&[kind]).inc();
    let actor = crate::audit::Actor {
        user: Some(&who.user),
        device: None,
        serial: None,
        client: meta.client,
    };
    match &entry {
        Entry::Lock { id, .. } => crate::audit::lock(&actor, id, true, "admin"),
        Entry::Unlock { id, .. } => crate::audit::lock(&actor, id, false, "admin"),
        _ => crate::audit::revoke(&actor, kind, id, "admin"),
    }
    Ok(entry)
}

/// The answer: a page or JSON, saying plainly when no certificate certgate knows of has the
/// serial (most often a mistyped or mis-copied one).
fn revoked(state: &AppState, meta: &RequestMeta, entry: &Entry) -> HttpResponse {
    let (kind, id) = entry.describe();
    if let Entry::Lock { id, .. } | Entry::Unlock { id, .. } = entry {
        return lockout::answer(state, meta, id, matches!(entry, Entry::Lock { .. }));
    }
    let known = match entry {
        Entry::Serial { id, .. } | Entry::Device { id, .. } => {
            crate::cert::Serial::parse(id).ok().map(|serial| {
                crate::revocation::known::describe(
                    &serial,
                    &state.config.data_dir,
                    &state.config.client_ca.crl_files,
                )
            })
        }
        _ => None,
    };
    if meta.wants_html {
        let note = known
            .as_ref()
            .map_or(String::new(), |(_, text)| format!(" {text}."));
        return answer::html(
            StatusCode::OK,
            state.pages.render(&revoke_form(
                state,
                &format!("Revoked {kind} {id}: refused everywhere within a second.{note}"),
            )),
        );
    }
    let mut body = serde_json::json!({"revoked": kind, "id": id});
    if let Some((found, text)) = known {
        body["known"] = serde_json::Value::Bool(found);
        body["note"] = serde_json::Value::String(text);
    }
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(body)
}
