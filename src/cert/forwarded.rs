//! Certificates forwarded by a proxy in a request header, one decoder per format
//! (DESIGN.md §3). The caller decides whether the peer is trusted; here we only decode, with
//! size caps, into a [`PresentedChain`] that still has to pass [`super::TrustStore::verify`].

use actix_web::http::header::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::percent_decode_str;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::{PresentedChain, MAX_CHAIN_LEN};

mod settings;

pub use settings::{CertHeaderFormat, ProxySettings, RawProxy};

/// Largest header value decoded; a chain of five RSA-4096 certificates fits well within.
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
        CertHeaderFormat::Traefik => "X-Forwarded-Tls-Client-Cert",
        CertHeaderFormat::Caddy => "X-Client-Cert",
        CertHeaderFormat::Envoy => "X-Forwarded-Client-Cert",
        CertHeaderFormat::Rfc9440 => "Client-Cert",
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
    let fail = |problem: String| ForwardedError { header, problem };
    let mut values = headers.get_all(header);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(fail("sent more than once".into()));
    }
    if value.len() > MAX_HEADER_BYTES {
        return Err(fail("too large".into()));
    }
    let value = value.to_str().map_err(|_| fail("not ASCII".into()))?.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let certs = match format {
        CertHeaderFormat::Nginx => percent_decode(value).and_then(|pem| decode_pem(&pem)),
        CertHeaderFormat::Traefik => decode_traefik(value),
        CertHeaderFormat::Caddy if value.starts_with('{') => return Ok(None),
        CertHeaderFormat::Caddy => decode_base64_der(value).map(|c| vec![c]),
        CertHeaderFormat::Envoy => decode_envoy(value),
        CertHeaderFormat::Rfc9440 => decode_rfc9440(value).map(|c| vec![c]),
    }
    .map_err(fail)?;
    check_chain(certs).map(Some).map_err(fail)
}

fn check_chain(certs: Vec<CertificateDer<'static>>) -> Result<PresentedChain, String> {
    if certs.is_empty() {
        return Err("no certificate in the value".into());
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

fn percent_decode(value: &str) -> Result<String, String> {
    percent_decode_str(value)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "percent-decoded value is not UTF-8".to_string())
}

/// nginx `$ssl_client_escaped_cert`, Envoy's `Cert=`: percent-encoded PEM.
fn decode_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))
}

fn decode_base64_der(value: &str) -> Result<CertificateDer<'static>, String> {
    STANDARD
        .decode(value.trim())
        .map(CertificateDer::from)
        .map_err(|e| format!("not base64 DER: {e}"))
}

/// Traefik `passTLSClientCert` with `pem: true`: base64 DER, `,`-joined, leaf first.
/// Traefik up to 2.9.1 also percent-encoded the value.
fn decode_traefik(value: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let value = if value.contains('%') {
        percent_decode(value)?
    } else {
        value.to_string()
    };
    value
        .split(',')
        .map(|part| {
            // Some versions send PEM armour around each certificate.
            let body: String = part
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<Vec<_>>()
                .join("");
            decode_base64_der(&body)
        })
        .collect()
}

/// Envoy `x-forwarded-client-cert`: `By=…;Hash=…;Cert="<percent-encoded PEM>"`, one element
/// per hop, `,`-separated; the last element is the hop that talks to us.
fn decode_envoy(value: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let element = split_outside_quotes(value, ',')
        .pop()
        .ok_or_else(|| "empty value".to_string())?;
    let cert = split_outside_quotes(&element, ';')
        .into_iter()
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("cert")
                .then(|| v.trim().trim_matches('"').to_string())
        })
        .next()
        .ok_or_else(|| "no Cert= in the last element".to_string())?;
    decode_pem(&percent_decode(&cert)?)
}

fn split_outside_quotes(value: &str, sep: char) -> Vec<String> {
    let (mut parts, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in value.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c == sep && !quoted => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
}

/// RFC 9440 `Client-Cert`: a structured-field byte sequence, `:<base64 DER>:`.
fn decode_rfc9440(value: &str) -> Result<CertificateDer<'static>, String> {
    let inner = value
        .strip_prefix(':')
        .and_then(|v| v.strip_suffix(':'))
        .ok_or_else(|| "not a structured-field byte sequence (:base64:)".to_string())?;
    decode_base64_der(inner)
}

#[cfg(test)]
mod tests;
