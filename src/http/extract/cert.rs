//! The client certificate of a request: presented (own mTLS listener, or forwarded by a
//! trusted proxy), verified, in standing; or why there is none.

use super::names::*;
use super::{first, Connection, Incoming, RequestMeta};
use crate::cert::forwarded::CertHeaderFormat;
use crate::cert::{forwarded, PresentedChain, VerifiedCert};
use crate::error::{AppError, NoCert};
use crate::http::{AppState, Standing};

/// The client certificate for this request: the connection's own on the mTLS listener, or
/// the one a trusted proxy forwarded on the plain listener. Untrusted peers' headers are ignored.
///
/// # Errors
/// [`AppError::BadRequest`] when a trusted proxy sent a malformed header.
pub fn presented_chain(
    req: &dyn Incoming,
    state: &AppState,
    meta: &RequestMeta,
) -> Result<Option<PresentedChain>, AppError> {
    match req.connection() {
        Some(Connection::Mtls { peer_chain }) if !peer_chain.is_empty() => {
            Ok(Some(PresentedChain(peer_chain.clone())))
        }
        Some(Connection::Mtls { .. }) => Ok(None),
        _ if meta.trusted_peer => Ok(forwarded::decode(
            state.config.proxy.cert_header,
            req.headers(),
        )?),
        _ => {
            let header = forwarded::header_name(state.config.proxy.cert_header);
            if req.headers().contains_key(header) {
                tracing::warn!(peer = ?meta.peer, header, "ignored a certificate header from an untrusted peer");
            }
            Ok(None)
        }
    }
}

/// Why a request carried no certificate, read from what the connection and proxy said.
pub fn why_no_cert(req: &dyn Incoming, state: &AppState, meta: &RequestMeta) -> NoCert {
    if matches!(req.connection(), Some(Connection::Mtls { .. })) {
        return NoCert::NotSent;
    }
    if !meta.trusted_peer {
        return NoCert::UntrustedPeer;
    }
    let headers = req.headers();
    let format = state.config.proxy.cert_header;
    match format {
        // nginx says what its own check found: NONE (asked, nothing sent) or FAILED:reason.
        CertHeaderFormat::Nginx => match first(headers, &[X_SSL_CLIENT_VERIFY]) {
            Some(v) if v.starts_with("FAILED") => NoCert::ProxyRejected,
            Some(_) => NoCert::NotSent,
            None => NoCert::NotForwarded,
        },
        // Caddy sends the header empty (or its placeholder) when the browser sent nothing.
        CertHeaderFormat::Caddy if headers.contains_key(forwarded::header_name(format)) => {
            NoCert::NotSent
        }
        CertHeaderFormat::Caddy => NoCert::NotForwarded,
        // Traefik and the others leave the header out either way: the common case is a person
        // without a certificate, not a broken proxy.
        _ => NoCert::NotSent,
    }
}

/// The presented certificate, verified and in standing.
///
/// # Errors
/// [`AppError::CertRejected`] when it does not verify or was revoked; `BadRequest` when the
/// header is malformed; `Unavailable` when the revocation state is unknown.
pub fn verified_cert(
    req: &dyn Incoming,
    state: &AppState,
    meta: &RequestMeta,
) -> Result<Option<VerifiedCert>, AppError> {
    let Some(cert) = chain_verified(req, state, meta)? else {
        return Ok(None);
    };
    match state.cert_standing(&cert, state.clock.now()) {
        Standing::Live => {}
        Standing::Revoked(_) => return Err(crate::cert::CertError::Revoked.into()),
        Standing::Unknown(why) => return Err(AppError::Unavailable(why)),
    }
    seen(state, &cert);
    Ok(Some(cert))
}

/// The presented certificate with its chain verified; its standing is the caller's to check
/// ([`AppState::cert_standing`]).
///
/// # Errors
/// [`AppError::CertRejected`] when it does not verify; `BadRequest` when the header is malformed.
pub fn chain_verified(
    req: &dyn Incoming,
    state: &AppState,
    meta: &RequestMeta,
) -> Result<Option<VerifiedCert>, AppError> {
    let Some(chain) = presented_chain(req, state, meta)? else {
        return Ok(None);
    };
    Ok(Some(state.trust.verify(&chain, state.clock.now())?))
}

/// Remembers a certificate that was presented and is in standing. Only one that signs
/// someone in counts as seen (not a disabled user's, nor one of the wrong CA).
pub fn seen(state: &AppState, cert: &VerifiedCert) {
    state.seen.record(
        &cert.cert().serial,
        || {
            crate::identity::from_cert(cert, &state.config.identity)
                .map(|who| who.user)
                .ok()
        },
        state.clock.now(),
    );
}
