//! What can go wrong while answering a request, as data: which credential, rule, header or
//! field. Handlers return `Result<_, AppError>`; the status and the stable machine [`Code`] are
//! decided here, and `http::answer` (above this module) turns the error into headers and a body (an HTML
//! page for people, JSON for programs).

mod code;

use std::fmt;

use actix_web::http::StatusCode;

use crate::cert::forwarded::ForwardedError;
use crate::cert::CertError;
use crate::identity::IdentityError;
use crate::jwt::TokenKind;
use crate::policy::canonical::CanonicalError;
pub use code::{Code, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No usable credential on a forward-auth check.
    #[error("authentication required")]
    Unauthenticated(Challenge),
    /// `/auth` without a client certificate, and the likely reason.
    #[error("no client certificate ({})", .0.code())]
    NoCertificate(NoCert),
    /// `/auth` with a certificate that does not verify.
    #[error("certificate rejected: {0}")]
    CertRejected(CertError),
    /// A known, valid credential that is not allowed.
    #[error("forbidden: {0}")]
    Forbidden(Denial),
    /// A valid bearer token used outside its scope (RFC 6750 `insufficient_scope`).
    #[error("insufficient scope: {OUT_OF_SCOPE}")]
    InsufficientScope,
    /// Malformed input, naming the header or field.
    #[error("bad request: {0}")]
    BadRequest(BadInput),
    /// RFC 6749 §5.2 error from `/token`.
    #[error("{error}: {description}")]
    OAuth {
        error: OAuthError,
        description: String,
    },
    /// A one-time link that was used or has expired.
    #[error("gone: {0}")]
    Gone(OneTime),
    /// State needed to decide is unknown (revocation lists unreadable, store too stale):
    /// never an allow.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a bearer token is refused with `insufficient_scope`.
pub const OUT_OF_SCOPE: &str = "the token's scope does not cover this request";

// === impl AppError ===

impl AppError {
    /// The status of the answer. A challenge is a 401; a browser that asked for redirects
    /// gets it as a 302 ([`Challenge::redirect`]).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) | Self::NoCertificate(_) => StatusCode::UNAUTHORIZED,
            // nginx's "SSL certificate error".
            Self::CertRejected(_) => StatusCode::from_u16(495).unwrap_or(StatusCode::BAD_REQUEST),
            Self::Forbidden(_) | Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::OAuth { error, .. } => error.status(),
            Self::Gone(_) => StatusCode::GONE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `error` field of the JSON answer, and the code on the page.
    pub fn code(&self) -> Code {
        match self {
            Self::Unauthenticated(ch) => ch.bearer_error().unwrap_or(Code::Unauthenticated),
            Self::NoCertificate(why) => why.code(),
            Self::CertRejected(e) => Code::from(e),
            Self::Forbidden(_) => Code::Forbidden,
            Self::InsufficientScope => Code::InsufficientScope,
            Self::BadRequest(_) => Code::BadRequest,
            Self::OAuth { error, .. } => error.code(),
            Self::Gone(_) => Code::Gone,
            Self::Unavailable(_) => Code::TemporarilyUnavailable,
            Self::Internal(_) => Code::Internal,
        }
    }

    /// `(result, reason)` labels for `certgate_decisions_total`: small fixed sets.
    pub fn labels(&self) -> (Outcome, Code) {
        match self {
            Self::Unauthenticated(ch) => (Outcome::Unauthenticated, ch.code()),
            Self::NoCertificate(why) => (Outcome::Unauthenticated, why.code()),
            Self::CertRejected(e) => (Outcome::Unauthenticated, Code::from(e)),
            Self::Forbidden(_) => (Outcome::Deny, Code::Forbidden),
            Self::InsufficientScope => (Outcome::Deny, Code::InsufficientScope),
            Self::BadRequest(_) | Self::OAuth { .. } => (Outcome::BadRequest, Code::BadRequest),
            Self::Gone(_) => (Outcome::BadRequest, Code::Gone),
            Self::Unavailable(_) => (Outcome::Unavailable, Code::StateUnknown),
            Self::Internal(_) => (Outcome::Error, Code::Internal),
        }
    }
}

impl From<CertError> for AppError {
    /// Unknown revocation state is certgate's problem, not the certificate's: 503, not 495.
    fn from(e: CertError) -> Self {
        match e {
            CertError::RevocationUnknown(why) => Self::Unavailable(why),
            other => Self::CertRejected(other),
        }
    }
}

impl From<ForwardedError> for AppError {
    fn from(e: ForwardedError) -> Self {
        Self::BadRequest(BadInput::CertHeader(e))
    }
}

impl From<IdentityError> for AppError {
    fn from(e: IdentityError) -> Self {
        Self::Forbidden(Denial::Identity(e))
    }
}

// === Challenge ===

/// How to ask for credentials on a forward-auth check.
#[derive(Debug, Clone, Default)]
pub struct Challenge {
    /// Absolute `/auth?rd=…` URL for browsers.
    pub location: Option<String>,
    /// Browsers get 302 instead of 401 (Traefik and Caddy pass answers through as they are).
    pub redirect: bool,
    /// The credential that was presented and refused; `None` when there was none.
    pub refused: Option<Refused>,
    /// Why, for the log.
    pub reason: String,
}

/// A credential that was presented and cannot authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A certgate token that does not verify, or is not meant for this request.
    Invalid(TokenKind),
    /// A certgate token that verifies and was revoked.
    Revoked(TokenKind),
    /// A certificate that does not verify, or a certificate header that cannot be read.
    Certificate,
}

impl Challenge {
    /// Why, as a metric label.
    pub fn code(&self) -> Code {
        match self.refused {
            None => Code::NoCredentials,
            Some(Refused::Invalid(_)) => Code::InvalidToken,
            Some(Refused::Revoked(_)) => Code::Revoked,
            Some(Refused::Certificate) => Code::BadCertificate,
        }
    }

    /// RFC 6750 `error` for a bearer token that was ours and cannot be used.
    pub fn bearer_error(&self) -> Option<Code> {
        match self.refused {
            Some(Refused::Invalid(TokenKind::Bearer) | Refused::Revoked(TokenKind::Bearer)) => {
                Some(Code::InvalidToken)
            }
            _ => None,
        }
    }
}

// === Denial ===

/// Why a known, valid credential is not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The rules: `rule` decided (none: no rule matched), `because` says how, in words.
    /// `user` is `None` when the rules let nobody in, before any credential was read.
    ByRule {
        user: Option<String>,
        rule: Option<usize>,
        because: String,
    },
    /// Whom the credential names may not sign in (unlisted, disabled, the wrong CA…).
    Identity(IdentityError),
    /// An admin page's session without the certificate it was bound to on the request.
    NotBoundToCertificate,
    /// `user` is in none of `admin.groups`.
    NotAdmin { user: String },
    /// An admin form posted from another origin than `own`.
    ForeignOrigin { own: String },
    /// A cross-site POST (log-out, admin forms).
    CrossSite,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ByRule {
                user: None,
                because,
                ..
            } => write!(f, "Nobody may open this: {because}."),
            Self::ByRule {
                user: Some(user),
                because,
                ..
            } => write!(f, "{user} may not open this: {because}."),
            Self::Identity(e) => e.fmt(f),
            Self::NotBoundToCertificate => {
                f.write_str("admin pages need the certificate you signed in with on this request")
            }
            Self::NotAdmin { user } => {
                write!(f, "{user} is not in an admin group (admin.groups)")
            }
            Self::ForeignOrigin { own } => write!(f, "admin forms are accepted only from {own}"),
            Self::CrossSite => f.write_str("cross-site request refused"),
        }
    }
}

// === BadInput ===

/// Which input is malformed, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadInput {
    /// A certificate header from a trusted proxy (it names the header).
    CertHeader(ForwardedError),
    /// The original URL the proxy sent.
    OriginalUrl(CanonicalError),
    /// A form field.
    Field {
        field: &'static str,
        problem: String,
    },
    /// A revocation request; the message names the field.
    Revocation(String),
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CertHeader(e) => e.fmt(f),
            Self::OriginalUrl(e) => write!(f, "original URL: {e}"),
            Self::Field { field, problem } => write!(f, "{field}: {problem}"),
            Self::Revocation(why) => f.write_str(why),
        }
    }
}

// === OAuthError, OneTime ===

/// RFC 6749 §5.2 (and RFC 8707) error codes of `/token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    /// No credential, or one that does not verify: 401.
    InvalidClient,
    /// A code or refresh token that is unknown, expired, used, or not this client's.
    InvalidGrant,
    UnsupportedGrantType,
    /// RFC 8628 §3.5: a device's poll before the person decided, too soon, after a refusal,
    /// or after its code expired.
    AuthorizationPending,
    SlowDown,
    AccessDenied,
    ExpiredToken,
}

impl OAuthError {
    pub const fn code(self) -> Code {
        match self {
            Self::InvalidRequest => Code::InvalidRequest,
            Self::InvalidScope => Code::InvalidScope,
            Self::InvalidTarget => Code::InvalidTarget,
            Self::InvalidClient => Code::InvalidClient,
            Self::InvalidGrant => Code::InvalidGrant,
            Self::UnsupportedGrantType => Code::UnsupportedGrantType,
            Self::AuthorizationPending => Code::AuthorizationPending,
            Self::SlowDown => Code::SlowDown,
            Self::AccessDenied => Code::AccessDenied,
            Self::ExpiredToken => Code::ExpiredToken,
        }
    }

    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest
            | Self::InvalidScope
            | Self::InvalidTarget
            | Self::InvalidGrant
            | Self::UnsupportedGrantType
            | Self::AuthorizationPending
            | Self::SlowDown
            | Self::AccessDenied
            | Self::ExpiredToken => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.code().fmt(f)
    }
}

/// A one-time link that was used or has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTime {
    /// An enrollment link, or the download it led to.
    Enrollment,
}

impl fmt::Display for OneTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Enrollment => f.write_str("This enrollment link was used already or has expired. Ask your administrator for a new one."),
        }
    }
}

// === NoCert ===

/// Why `/auth` saw no certificate, as far as certgate can tell (see
/// `http::extract::why_no_cert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoCert {
    /// The browser was asked and sent none: not installed, or the prompt was cancelled.
    NotSent,
    /// The proxy passed nothing on: it did not ask for a certificate, or does not forward it.
    NotForwarded,
    /// The proxy checked the certificate itself and refused it.
    ProxyRejected,
    /// certgate was reached directly, or through a proxy that is not in `proxy.trusted`.
    UntrustedPeer,
}

impl NoCert {
    pub const fn code(self) -> Code {
        match self {
            Self::NotSent => Code::NoCertificate,
            Self::NotForwarded => Code::CertificateNotForwarded,
            Self::ProxyRejected => Code::CertificateRejectedByProxy,
            Self::UntrustedPeer => Code::UntrustedProxy,
        }
    }
}
