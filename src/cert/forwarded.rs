//! Certificates forwarded by a proxy in a request header. The caller decides whether the peer
//! is trusted; here we only decode, with size caps, into a [`PresentedChain`] that still has to
//! pass [`super::TrustStore::verify`].

use actix_web::http::header::HeaderMap;
use percent_encoding::percent_decode_str;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::{PresentedChain, MAX_CHAIN_LEN};
use crate::config::CertHeaderFormat;

/// Largest header value decoded; a PEM chain of five P-256/RSA-4096 certs fits well within.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// A forwarded certificate header that is present but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{header}: {problem}")]
pub struct ForwardedError {
    pub header: &'static str,
    pub problem: String,
}

/// The header each format uses.
pub fn header_name(format: CertHeaderFormat) -> &'static str {
    match format {
        CertHeaderFormat::Nginx => "X-SSL-Client-Cert",
    }
}

/// Decodes the forwarded certificate, if any.
///
/// # Errors
/// A [`ForwardedError`] naming the header when it is present but malformed or too large.
pub fn decode(
    format: CertHeaderFormat,
    headers: &HeaderMap,
) -> Result<Option<PresentedChain>, ForwardedError> {
    let header = header_name(format);
    let Some(value) = headers.get(header) else {
        return Ok(None);
    };
    let fail = |problem: &str| ForwardedError {
        header,
        problem: problem.to_string(),
    };
    if value.len() > MAX_HEADER_BYTES {
        return Err(fail("too large"));
    }
    let value = value.to_str().map_err(|_| fail("not ASCII"))?.trim();
    if value.is_empty() {
        return Ok(None);
    }
    match format {
        CertHeaderFormat::Nginx => {
            // nginx sends an empty value when the client presented nothing; `X-SSL-Client-Verify`
            // is informational only, since certgate re-verifies.
            decode_nginx(value).map(Some).map_err(|p| fail(&p))
        }
    }
}

/// `$ssl_client_escaped_cert`: the leaf as percent-encoded PEM.
fn decode_nginx(value: &str) -> Result<PresentedChain, String> {
    let pem = percent_decode_str(value)
        .decode_utf8()
        .map_err(|_| "percent-decoded value is not UTF-8".to_string())?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate in the value".into());
    }
    if certs.len() > MAX_CHAIN_LEN {
        return Err(format!("more than {MAX_CHAIN_LEN} certificates"));
    }
    for der in &certs {
        x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    }
    Ok(PresentedChain(certs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    fn nginx_escape(pem: &str) -> String {
        // nginx escapes everything but unreserved characters, as $ssl_client_escaped_cert does.
        percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    #[test]
    fn nginx_escaped_pem_decodes_to_the_leaf() {
        let ca = crate::ca::Ca::generate("Test CA").unwrap();
        let alice = ca.issue_client("alice", 30).unwrap();
        let h = headers("x-ssl-client-cert", &nginx_escape(&alice.cert_pem));
        let chain = decode(CertHeaderFormat::Nginx, &h).unwrap().unwrap();
        assert_eq!(chain.0.len(), 1);
        assert_eq!(chain.0[0].as_ref(), alice.cert_der.as_slice());
    }

    #[test]
    fn empty_nginx_header_means_no_cert() {
        let h = headers("x-ssl-client-cert", "");
        assert!(decode(CertHeaderFormat::Nginx, &h).unwrap().is_none());
        assert!(decode(CertHeaderFormat::Nginx, &HeaderMap::new())
            .unwrap()
            .is_none());
    }

    #[test]
    fn malformed_nginx_header_is_an_error_naming_the_header() {
        for bad in [
            "garbage",
            "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A",
            "%FF%FE",
        ] {
            let err =
                decode(CertHeaderFormat::Nginx, &headers("x-ssl-client-cert", bad)).unwrap_err();
            assert_eq!(err.header, "X-SSL-Client-Cert", "{bad}");
        }
    }

    #[test]
    fn oversized_nginx_header_is_refused() {
        let big = "A".repeat(MAX_HEADER_BYTES + 1);
        let err = decode(CertHeaderFormat::Nginx, &headers("x-ssl-client-cert", &big)).unwrap_err();
        assert_eq!(err.problem, "too large");
    }
}
