//! The stable machine codes: the `error` field of JSON answers, the code under a page's title
//! and the labels of `certgate_decisions_total` and `certgate_logins_total`. Proxies, scripts
//! and dashboards match on these strings; each is spelled here and nowhere else.

use std::fmt;

use crate::cert::CertError;

/// Why a request was answered as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    // --- a forward-auth check without a usable credential (metric reasons)
    NoCredentials,
    InvalidToken,
    Revoked,
    BadCertificate,
    /// The JSON `error` of a challenge for anything but a bad bearer token.
    Unauthenticated,

    // --- `/auth` without a certificate ([`super::NoCert`])
    NoCertificate,
    CertificateNotForwarded,
    CertificateRejectedByProxy,
    UntrustedProxy,

    // --- a certificate that does not verify ([`CertError`])
    CertMalformed,
    CertChainTooLong,
    CertUnknownIssuer,
    CertExpired,
    CertNotYetValid,
    CertNotClientAuth,
    CertIsCa,
    CertRevoked,
    RevocationUnknown,
    CrlExpired,
    CertRejected,

    // --- refusals and failures
    Forbidden,
    InsufficientScope,
    BadRequest,
    Gone,
    /// The metric reason of a 503.
    StateUnknown,
    /// The JSON `error` and page code of a 503.
    TemporarilyUnavailable,
    Internal,
    NotFound,

    // --- RFC 6749 §5.2 errors of `/token`
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    AuthorizationPending,
    SlowDown,
    AccessDenied,
    ExpiredToken,

    // --- how an allowed check was let through (metric reasons)
    Bypass,
    Bearer,
    Session,
    Certificate,
}

impl Code {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoCredentials => "no_credentials",
            Self::InvalidToken => "invalid_token",
            Self::Revoked => "revoked",
            Self::BadCertificate => "bad_certificate",
            Self::Unauthenticated => "unauthenticated",
            Self::NoCertificate => "no_certificate",
            Self::CertificateNotForwarded => "certificate_not_forwarded",
            Self::CertificateRejectedByProxy => "certificate_rejected_by_proxy",
            Self::UntrustedProxy => "untrusted_proxy",
            Self::CertMalformed => "cert_malformed",
            Self::CertChainTooLong => "cert_chain_too_long",
            Self::CertUnknownIssuer => "cert_unknown_issuer",
            Self::CertExpired => "cert_expired",
            Self::CertNotYetValid => "cert_not_yet_valid",
            Self::CertNotClientAuth => "cert_not_client_auth",
            Self::CertIsCa => "cert_is_ca",
            Self::CertRevoked => "cert_revoked",
            Self::RevocationUnknown => "revocation_unknown",
            Self::CrlExpired => "crl_expired",
            Self::CertRejected => "cert_rejected",
            Self::Forbidden => "forbidden",
            Self::InsufficientScope => "insufficient_scope",
            Self::BadRequest => "bad_request",
            Self::Gone => "gone",
            Self::StateUnknown => "state_unknown",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::Internal => "internal",
            Self::NotFound => "not_found",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
            Self::Bypass => "bypass",
            Self::Bearer => "bearer",
            Self::Session => "session",
            Self::Certificate => "certificate",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&CertError> for Code {
    fn from(e: &CertError) -> Self {
        match e {
            CertError::Malformed(_) => Self::CertMalformed,
            CertError::ChainTooLong => Self::CertChainTooLong,
            CertError::UnknownIssuer => Self::CertUnknownIssuer,
            CertError::Expired { .. } => Self::CertExpired,
            CertError::NotYetValid { .. } => Self::CertNotYetValid,
            CertError::NotForClientAuth => Self::CertNotClientAuth,
            CertError::CaAsClient => Self::CertIsCa,
            CertError::Revoked => Self::CertRevoked,
            CertError::RevocationUnknown(_) => Self::RevocationUnknown,
            CertError::CrlExpired { .. } => Self::CrlExpired,
            CertError::Other(_) => Self::CertRejected,
        }
    }
}

/// The `result` label of `certgate_decisions_total`: what a check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Unauthenticated,
    Deny,
    BadRequest,
    Unavailable,
    Error,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Unauthenticated => "unauthenticated",
            Self::Deny => "deny",
            Self::BadRequest => "bad_request",
            Self::Unavailable => "unavailable",
            Self::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_codes_are_the_ones_cert_errors_always_had() {
        for (e, code) in [
            (CertError::Malformed("x".into()), "cert_malformed"),
            (CertError::ChainTooLong, "cert_chain_too_long"),
            (CertError::UnknownIssuer, "cert_unknown_issuer"),
            (
                CertError::Expired {
                    now: 2,
                    not_after: 1,
                },
                "cert_expired",
            ),
            (
                CertError::NotYetValid {
                    now: 1,
                    not_before: 2,
                },
                "cert_not_yet_valid",
            ),
            (CertError::NotForClientAuth, "cert_not_client_auth"),
            (CertError::CaAsClient, "cert_is_ca"),
            (CertError::Revoked, "cert_revoked"),
            (
                CertError::RevocationUnknown("x".into()),
                "revocation_unknown",
            ),
            (
                CertError::CrlExpired {
                    now: 2,
                    next_update: 1,
                },
                "crl_expired",
            ),
            (CertError::Other("x".into()), "cert_rejected"),
        ] {
            assert_eq!(Code::from(&e).as_str(), code);
        }
    }
}
