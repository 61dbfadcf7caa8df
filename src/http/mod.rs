//! HTTP endpoints. Handlers are thin: extract, call the pure logic, and hand errors to
//! [`crate::error::render`]. One file per endpoint.

mod admin;
mod auth;
mod cookie;
pub mod enroll;
pub mod extract;
mod logout;
pub mod pages;
pub mod redirect;
mod status;
mod token;
mod verify;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::cert::TrustStore;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{self, AppError, Audience};
use crate::jwt::Tokens;
use crate::policy::Policy;
use crate::revocation::Revocations;
use extract::RequestMeta;
use pages::Pages;

/// Everything a handler needs, built once at start-up.
#[derive(Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub trust: TrustStore,
    pub tokens: Tokens,
    pub revocations: Revocations,
    pub clock: Arc<dyn Clock>,
    pub pages: Pages,
    /// Swapped whole on SIGHUP; a check reads one consistent set of rules.
    pub policy: std::sync::RwLock<Arc<Policy>>,
    /// PKCS#12 files from enrollment links, waiting for their one download.
    pub downloads: enroll::Downloads,
}

impl AppState {
    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(
            &self
                .policy
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The claims of the first session cookie that verifies and is not revoked (by logout, or
    /// through the certificate it came from).
    pub fn session(&self, req: &HttpRequest) -> Option<crate::jwt::Claims> {
        let now = self.clock.now();
        extract::session_cookies(req, &self.config.session.cookie_name)
            .into_iter()
            .filter_map(|v| {
                self.tokens
                    .verify(&v, crate::jwt::TokenKind::Session, now)
                    .ok()
            })
            .find(|c| {
                !self.revocations.is_jti_revoked(&c.jti)
                    && !c
                        .x5s
                        .as_deref()
                        .is_some_and(|s| self.trust.is_serial_revoked(s))
            })
    }

    pub fn replace_policy(&self, policy: Policy) {
        *self
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
    }

    /// `{public_url}{path}`: links and form actions on certgate's pages (public_url may have a path).
    pub fn public(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.config.public_url.as_str().trim_end_matches('/')
        )
    }

    /// `{public_url}/auth`, with `rd` when the original URL is known.
    pub fn auth_url(&self, rd: Option<&str>) -> String {
        let base = format!(
            "{}/auth",
            self.config.public_url.as_str().trim_end_matches('/')
        );
        match rd {
            Some(rd) => format!(
                "{base}?rd={}",
                percent_encoding::utf8_percent_encode(rd, percent_encoding::NON_ALPHANUMERIC)
            ),
            None => base,
        }
    }

    /// Renders an error for this request's audience.
    pub fn reply(&self, meta: &RequestMeta, err: &AppError) -> HttpResponse {
        error::render(
            err,
            &Audience {
                wants_html: meta.wants_html,
                pages: &self.pages,
            },
        )
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth", web::get().to(auth::handle))
        .route("/verify", web::route().to(verify::handle))
        .route("/token", web::post().to(token::handle))
        .route("/logout", web::post().to(logout::handle))
        .route("/.well-known/jwks.json", web::get().to(jwks))
        .route("/", web::get().to(status::show))
        .route("/metrics", web::get().to(metrics))
        .route("/healthz", web::get().to(healthz))
        .route("/ca/crl.pem", web::get().to(crl))
        .route("/admin/enroll", web::get().to(admin::show))
        .route("/admin/enroll", web::post().to(admin::create))
        .route("/enroll/download/{id}", web::get().to(enroll::download))
        .route("/enroll/{secret}", web::get().to(enroll::show))
        .route("/enroll/{secret}", web::post().to(enroll::redeem))
        .default_service(web::to(not_found));
}

async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.tokens.jwks())
}

/// The built-in CA's CRL, signed fresh (valid 7 days), for proxies that fetch it.
async fn crl(state: web::Data<AppState>) -> HttpResponse {
    let store = crate::ca::store::CaStore::new(&state.config.data_dir);
    if !store.key_path().exists() {
        return HttpResponse::NotFound().body("no built-in CA here\n");
    }
    match store.crl(state.clock.now(), 7) {
        Ok((pem, _)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/x-pem-file"))
            .insert_header((header::CACHE_CONTROL, "max-age=300"))
            .body(pem),
        Err(e) => {
            tracing::error!(error = %e, "cannot sign the CRL");
            HttpResponse::InternalServerError().body("the CRL cannot be made; the log says why\n")
        }
    }
}

/// Only for `proxy.trusted` peers on the plain listener: it names every user and device.
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let meta = RequestMeta::from_request(&req, &state);
    if !meta.trusted_peer {
        return state.reply(
            &meta,
            &AppError::Forbidden("/metrics answers only proxy.trusted peers".into()),
        );
    }
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(crate::metrics::render(
            &state.config.data_dir,
            state.clock.now(),
        ))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body("ok\n")
}

async fn not_found(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let meta = RequestMeta::from_request(&req, &state);
    let mut res = state.reply(
        &meta,
        &AppError::BadRequest(format!("no such route: {}", req.path())),
    );
    *res.status_mut() = actix_web::http::StatusCode::NOT_FOUND;
    res
}
