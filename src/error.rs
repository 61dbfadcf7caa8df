//! What can go wrong while answering a request. Handlers return `Result<_, AppError>`;
//! [`crate::http::answer`] turns the error into the status, headers and body (an HTML page for
//! people, JSON for programs).

use actix_web::http::StatusCode;

use crate::cert::forwarded::ForwardedError;
use crate::cert::CertError;
use crate::identity::IdentityError;

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
    Forbidden(String),
    /// A valid bearer token used outside its scope (RFC 6750 `insufficient_scope`).
    #[error("insufficient scope: {0}")]
    InsufficientScope(String),
    /// Malformed input; the message names the header or field.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// RFC 6749 §5.2 error from `/token`.
    #[error("{code}: {description}")]
    OAuth {
        status: StatusCode,
        code: &'static str,
        description: String,
    },
    /// A one-time link that was used or has expired.
    #[error("gone: {0}")]
    Gone(String),
    /// State needed to decide is unknown (revocation lists unreadable, store too stale):
    /// never an allow.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// `(result, reason)` labels for `certgate_decisions_total`: small fixed sets.
    pub fn labels(&self) -> (&'static str, &'static str) {
        match self {
            Self::Unauthenticated(ch) => ("unauthenticated", ch.code),
            Self::NoCertificate(why) => ("unauthenticated", why.code()),
            Self::CertRejected(e) => ("unauthenticated", e.code()),
            Self::Forbidden(_) => ("deny", "forbidden"),
            Self::InsufficientScope(_) => ("deny", "insufficient_scope"),
            Self::BadRequest(_) | Self::OAuth { .. } => ("bad_request", "bad_request"),
            Self::Gone(_) => ("bad_request", "gone"),
            Self::Unavailable(_) => ("unavailable", "state_unknown"),
            Self::Internal(_) => ("error", "internal"),
        }
    }
}

/// How to ask for credentials on a forward-auth check.
#[derive(Debug, Clone, Default)]
pub struct Challenge {
    /// Absolute `/auth?rd=…` URL for browsers.
    pub location: Option<String>,
    /// Browsers get 302 instead of 401 (Traefik and Caddy pass answers through as they are).
    pub redirect: bool,
    /// RFC 6750 `error` for a bearer token that was ours but invalid.
    pub bearer_error: Option<&'static str>,
    /// Why, for the log.
    pub reason: String,
    /// Why, as a metric label: no_credentials, invalid_token, revoked, bad_certificate.
    pub code: &'static str,
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
        Self::BadRequest(e.to_string())
    }
}

impl From<IdentityError> for AppError {
    fn from(e: IdentityError) -> Self {
        Self::Forbidden(e.to_string())
    }
}

/// Why `/auth` saw no certificate, as far as certgate can tell (see
/// [`crate::http::extract::why_no_cert`]).
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
    pub fn code(self) -> &'static str {
        match self {
            Self::NotSent => "no_certificate",
            Self::NotForwarded => "certificate_not_forwarded",
            Self::ProxyRejected => "certificate_rejected_by_proxy",
            Self::UntrustedPeer => "untrusted_proxy",
        }
    }

    /// The most likely cause, in words for the person in front of the browser.
    pub fn cause(self) -> &'static str {
        match self {
            Self::NotSent => "Your browser was asked for a certificate and did not send one. Most likely no certificate for this site is installed on this device, or the certificate prompt was cancelled.",
            Self::NotForwarded => "The sign-in server never received a certificate: the proxy in front of it did not ask your browser for one, or did not pass it on. This is a setup problem the administrator has to fix.",
            Self::ProxyRejected => "The proxy in front of this site refused your certificate: it was probably issued by another authority, has expired, or was revoked.",
            Self::UntrustedPeer => "This sign-in was reached by an address that is not allowed to pass certificates on. This is a setup problem the administrator has to fix.",
        }
    }

    pub fn admin_hint(self) -> Option<&'static str> {
        match self {
            Self::NotForwarded => Some("Administrator: the proxy must ask for the certificate (nginx `ssl_verify_client optional_no_ca`, Traefik `clientAuth`, Caddy `client_auth`) and forward it to /auth; `certgate proxy-config` prints a working configuration."),
            Self::UntrustedPeer => Some("Administrator: add the proxy's address to `proxy.trusted`, or send people to certgate's own mTLS address."),
            Self::NotSent | Self::ProxyRejected => None,
        }
    }
}
