//! HTTP endpoints. Handlers are thin: extract, call the pure logic, and hand errors to
//! [`answer::render`]. One file per endpoint.

mod admin;
pub mod answer;
mod auth;
mod cookie;
pub mod enroll;
pub mod extract;
mod front;
mod logout;
pub mod oidc;
mod ops;
pub mod pages;
pub mod redirect;
pub mod routes;
mod status;
mod token;
pub mod verify;

pub use front::Front;
pub use verify::Holders;

use std::sync::{Arc, PoisonError, RwLock};

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

use crate::cert::TrustStore;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{AppError, Code};
use crate::jwt::{Claims, TokenKind, Tokens};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::revocation::Revocations;
use answer::Audience;
use extract::RequestMeta;
use pages::Pages;

/// Everything a handler needs. One value per configuration: SIGHUP builds a new one from the
/// new file and swaps it in whole ([`Live`]), so a request sees one consistent set of settings,
/// trust anchors and rules. What must outlive a reload (keys, revocations, metrics, pending
/// downloads) is shared between the old and the new value.
#[derive(Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub trust: TrustStore,
    pub policy: Arc<Policy>,
    pub pages: Arc<Pages>,
    pub tokens: Arc<Tokens>,
    pub revocations: Arc<Revocations>,
    /// What was issued to whom, for the status page.
    pub sessions: Arc<crate::session::Sessions>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// PKCS#12 files from enrollment links, waiting for their one download.
    pub downloads: Arc<enroll::Downloads>,
    /// Token holders as this configuration resolves them.
    pub holders: verify::Holders,
    /// Certificates presented here, so a revoked serial can be told apart from a typo.
    pub seen: Arc<crate::revocation::known::Seen>,
    /// The OpenID Connect provider, when `[oidc]` is configured.
    pub oidc: Option<Arc<crate::oidc::Provider>>,
    /// The signing keys shared through Redis (`store.key_encryption_file`).
    pub keyshare: Option<Arc<crate::keyshare::KeyShare>>,
}

pub use crate::revocation::Standing;

/// A running gateway's state: `certgate explain` judged by the revocation checks of `/verify`
/// itself (the trust store with its CRLs and the built-in CA's list, the revocation store).
impl crate::explain::Standings for AppState {
    fn trust(&self) -> Option<&crate::cert::TrustStore> {
        Some(&self.trust)
    }
    fn token(&self, claims: &Claims, now: i64) -> Standing {
        self.standing(claims, now)
    }
    fn certificate(&self, cert: &crate::cert::VerifiedCert, now: i64) -> Standing {
        self.cert_standing(cert, now)
    }
    fn locked(&self, user: &str) -> bool {
        self.revocations.is_locked(user)
    }
}

/// The state in force; replaced whole on reload.
#[derive(Debug)]
pub struct Live(RwLock<Arc<AppState>>);

impl Live {
    pub fn new(state: AppState) -> Self {
        Self(RwLock::new(Arc::new(state)))
    }

    pub fn current(&self) -> Arc<AppState> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn replace(&self, state: AppState) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(state);
    }
}

/// Handler argument: the state in force when the request arrived.
pub struct State(Arc<AppState>);

impl std::ops::Deref for State {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0
    }
}

impl FromRequest for State {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.app_data::<web::Data<Live>>()
                .map(|live| Self(live.current()))
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("no state")),
        )
    }
}

impl AppState {
    /// The claims of the first session cookie that verifies and is still in standing.
    pub fn session(&self, req: &dyn extract::Incoming) -> Option<Arc<Claims>> {
        let now = self.clock.now();
        extract::session_tokens(req, self, now)
            .filter_map(Result::ok)
            .find(|c| matches!(self.standing(c, now), Standing::Live))
    }

    /// Whether a verified token still counts: not revoked by its id, by its user's "log out
    /// everywhere", or through the certificate it was minted from. `now` is `clock.now()`.
    pub fn standing(&self, c: &Claims, now: i64) -> Standing {
        self.standing_of(&c.jti, &c.sub, c.x5s.as_deref(), c.issued_ms(), now)
    }

    /// [`Self::standing`] of anything issued to `user` at `issued_ms` under the id `jti`
    /// (from the certificate `serial`): a token, or an OpenID Connect grant.
    pub fn standing_of(
        &self,
        jti: &str,
        user: &str,
        serial: Option<&str>,
        issued_ms: i64,
        now: i64,
    ) -> Standing {
        if let Some(why) = self.stale_at(now) {
            return Standing::Unknown(why);
        }
        if let Some(why) = self.revocations.why_revoked(jti, user, serial, issued_ms) {
            return Standing::Revoked(why);
        }
        match serial.map(|s| self.trust.serial_revoked(s)) {
            Some(Ok(true)) => Standing::Revoked("its certificate was revoked"),
            Some(Err(e)) => Standing::Unknown(e.to_string()),
            Some(Ok(false)) | None => Standing::Live,
        }
    }

    /// The holder of a certificate whose chain verified, as the user table says, unless they
    /// are locked out (`certgate user disable`): refused like a user disabled in the file.
    ///
    /// # Errors
    /// When the user may not sign in (unlisted, disabled, the wrong CA, locked out).
    pub fn cert_holder(
        &self,
        cert: &crate::cert::VerifiedCert,
    ) -> Result<crate::identity::Identity, crate::identity::IdentityError> {
        let who = crate::identity::from_cert(cert, &self.config.identity)?;
        if self.revocations.is_locked(&who.user) {
            return Err(crate::identity::IdentityError::Locked(who.user));
        }
        Ok(who)
    }

    /// Whether a certificate whose chain verified still counts: `certgate revoke --serial`
    /// works for any CA's certificates (the chain check read the CRLs and the built-in CA's
    /// list), and nothing counts while the revocation view is stale. `now` is `clock.now()`.
    pub fn cert_standing(&self, cert: &crate::cert::VerifiedCert, now: i64) -> Standing {
        if self
            .revocations
            .is_serial_revoked(cert.cert().serial.as_str())
        {
            return Standing::Revoked("the certificate was revoked");
        }
        match self.stale_at(now) {
            Some(why) => Standing::Unknown(why),
            None => Standing::Live,
        }
    }

    /// Why nothing may be allowed now: the revocation view is older than `store.max_staleness`.
    pub fn stale(&self) -> Option<String> {
        self.stale_at(self.clock.now())
    }

    fn stale_at(&self, now: i64) -> Option<String> {
        let max = i64::try_from(self.config.store.max_staleness.as_secs()).unwrap_or(i64::MAX);
        self.revocations.stale(now, max)
    }

    /// Remembers a token for the status page and writes its audit line (a sign-in or a
    /// bearer token) and metric.
    pub fn issued(
        &self,
        claims: &Claims,
        kind: TokenKind,
        device: Option<&str>,
        meta: &RequestMeta,
    ) {
        let actor = crate::audit::Actor {
            user: Some(&claims.sub),
            device,
            serial: claims.x5s.as_deref(),
            client: meta.client,
        };
        let label = match kind {
            TokenKind::Session => {
                crate::audit::login(&actor, &claims.jti);
                self.metrics.logins.with_label_values(&["ok"]).inc();
                "browser session"
            }
            TokenKind::Bearer => {
                let ttl = u64::try_from(claims.exp.saturating_sub(claims.iat)).unwrap_or(0);
                crate::audit::token(
                    &actor,
                    &claims.jti,
                    claims.scope.as_deref().unwrap_or(""),
                    ttl,
                );
                self.metrics.tokens.inc();
                "bearer token"
            }
        };
        let issued = crate::session::Issued {
            jti: claims.jti.clone(),
            kind: label,
            device: device.map(String::from),
            serial: claims.x5s.clone(),
            client: meta.client,
            issued_at: claims.iat,
            issued_ms: claims.issued_ms(),
            expires_at: claims.exp,
        };
        self.sessions.record(&claims.sub, issued, self.clock.now());
    }

    /// `{public_url}{path}`: links and form actions on certgate's pages (public_url may have a path).
    pub fn public(&self, path: &str) -> String {
        format!("{}{path}", self.config.public_base())
    }

    /// `{public_url}/auth`, with `rd` when the original URL is known.
    pub fn auth_url(&self, rd: Option<&str>) -> String {
        let base = format!("{}/auth", self.config.public_base());
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
        answer::render(
            err,
            &Audience {
                wants_html: meta.wants_html,
                pages: &self.pages,
                contact: self.config.admin_contact.as_deref(),
            },
        )
    }
}

pub(crate) async fn jwks(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.tokens.jwks(state.clock.now()))
}

/// The built-in CA's CRL, signed fresh (valid 7 days), for proxies that fetch it: its own list
/// and the serials it issued that the revocation store revoked. Not while the store's view is
/// too stale to trust (a CRL missing a revocation would let its certificate through).
pub(crate) async fn crl(state: State) -> HttpResponse {
    let store = crate::ca::store::CaStore::new(&state.config.data_dir);
    if !store.key_path().exists() {
        return HttpResponse::NotFound().body("no built-in CA here\n");
    }
    if let Some(why) = state.stale() {
        tracing::warn!(reason = %why, "no CRL while the revocation view is stale");
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .body("the revocation store cannot be read right now; try again soon\n");
    }
    match store.crl(state.clock.now(), 7, &state.revocations.revoked_serials()) {
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

pub(crate) async fn not_found(req: HttpRequest, state: State) -> HttpResponse {
    let meta = RequestMeta::from_request(&req, &state);
    let status = actix_web::http::StatusCode::NOT_FOUND;
    if meta.wants_html {
        let page = pages::Page {
            code: Some("404".into()),
            ..pages::Page::message(
                "Not found",
                "certgate has no page at this address.",
                "The pages people use are /auth (sign in) and / (your status).",
            )
        };
        return answer::html(status, state.pages.render(&page));
    }
    answer::json(
        status,
        &serde_json::json!({"error": Code::NotFound.as_str(), "error_description": format!("no such route: {}", req.path())}),
    )
}
