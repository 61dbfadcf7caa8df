//! Stage one of a check: the credential. Read in order (a certgate bearer token, from
//! `X-Certgate-Authorization` before `Authorization`; the session cookie; a certificate
//! presented on this very request), each verified (signature or chain) and then put through
//! the one check of its standing, [`standing`] (the revocation store; a certificate's CRLs and
//! the built-in CA's list are read by its chain check). A bearer token of ours decides alone;
//! an unusable cookie gives way to the next one and to the certificate.

use std::sync::Arc;

use super::Check;
use crate::cert::{CertError, VerifiedCert};
use crate::error::{AppError, Code, Refused};
use crate::http::{extract, AppState, Standing};
use crate::jwt::{Claims, TokenKind};

/// A credential that verified and is in standing.
pub(super) enum Credential {
    Bearer(Arc<Claims>),
    Session(Arc<Claims>),
    /// Boxed: a certificate is large, and the fast path (tokens) should not move its room.
    Certificate(Box<VerifiedCert>),
}

impl Credential {
    /// How a request it lets through was let through, as a metric label.
    pub(super) fn via(&self) -> Code {
        match self {
            Self::Bearer(_) => Code::Bearer,
            Self::Session(_) => Code::Session,
            Self::Certificate(_) => Code::Certificate,
        }
    }
}

/// A credential that was presented and cannot be used, and why (for the log).
type Unusable = (Refused, String);

/// The first usable credential.
///
/// # Errors
/// A challenge naming the last unusable credential (or none), or a 503 when the revocation
/// state is unknown.
pub(super) fn find(ck: &Check<'_>, now: i64) -> Result<Credential, AppError> {
    let refuse = |(refused, reason): Unusable| ck.challenge(Some(refused), reason);
    // certgate's own header first (the app keeps `Authorization`); a foreign token in
    // `Authorization` (the app's own API token) is not ours to judge.
    let tokens = &ck.state.tokens;
    let ours = match extract::certgate_bearer(ck.req) {
        Some(token) => Some(tokens.verify(token, TokenKind::Bearer, now)),
        None => extract::bearer(ck.req)
            .and_then(|token| tokens.verify_if_ours(token, TokenKind::Bearer, now)),
    };
    if let Some(verified) = ours {
        let claims =
            verified.map_err(|e| refuse((Refused::Invalid(TokenKind::Bearer), e.to_string())))?;
        return in_standing(ck.state, Credential::Bearer(claims), now)?.map_err(refuse);
    }
    let mut unusable = None;
    for verified in extract::session_tokens(ck.req, ck.state, now) {
        let refusal = match verified {
            Ok(claims) => match in_standing(ck.state, Credential::Session(claims), now)? {
                Ok(session) => return Ok(session),
                Err(refusal) => refusal,
            },
            Err(e) => (
                Refused::Invalid(TokenKind::Session),
                format!("session cookie: {e}"),
            ),
        };
        unusable = Some(refusal);
    }
    match extract::chain_verified(ck.req, ck.state, ck.meta) {
        Ok(Some(cert)) => {
            let cert = in_standing(ck.state, Credential::Certificate(Box::new(cert)), now)?
                .map_err(refuse)?;
            if let Credential::Certificate(c) = &cert {
                extract::seen(ck.state, c);
            }
            return Ok(cert);
        }
        Ok(None) => {}
        // A bad certificate cannot authenticate; send the person to /auth, which says why.
        // A malformed header is a 401 here too: nginx turns any other auth answer into a 500.
        Err(AppError::CertRejected(e)) => {
            return Err(refuse((Refused::Certificate, e.to_string())))
        }
        Err(AppError::BadRequest(why)) => {
            return Err(refuse((Refused::Certificate, why.to_string())))
        }
        Err(other) => return Err(other),
    }
    Err(match unusable {
        Some(refusal) => refuse(refusal),
        None => ck.challenge(None, "no credentials".into()),
    })
}

/// The credential back when it is in standing, or why it is not.
///
/// # Errors
/// A 503 when the revocation state is unknown: never an allow, never taken for a logout.
fn in_standing(
    state: &AppState,
    credential: Credential,
    now: i64,
) -> Result<Result<Credential, Unusable>, AppError> {
    match standing(state, &credential, now) {
        Standing::Live => Ok(Ok(credential)),
        Standing::Revoked(why) => Ok(Err(match credential {
            Credential::Bearer(_) => (Refused::Revoked(TokenKind::Bearer), format!("token {why}")),
            Credential::Session(_) => (
                Refused::Revoked(TokenKind::Session),
                format!("session {why}"),
            ),
            Credential::Certificate(_) => (Refused::Certificate, CertError::Revoked.to_string()),
        })),
        Standing::Unknown(why) => Err(AppError::Unavailable(why)),
    }
}

/// The one revocation check of a credential on `/verify`.
fn standing(state: &AppState, credential: &Credential, now: i64) -> Standing {
    match credential {
        Credential::Bearer(claims) | Credential::Session(claims) => state.standing(claims, now),
        Credential::Certificate(cert) => state.cert_standing(cert, now),
    }
}
