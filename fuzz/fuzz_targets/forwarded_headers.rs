//! Every proxy certificate-header decoder on arbitrary values: never a panic, and anything
//! decoded is a bounded chain of parseable certificates.
#![no_main]

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use certgate::cert::forwarded::CertHeaderFormat;
use certgate::cert::forwarded::{decode, header_name, MAX_HEADER_BYTES};
use libfuzzer_sys::fuzz_target;

const FORMATS: [CertHeaderFormat; 5] = [
    CertHeaderFormat::Nginx,
    CertHeaderFormat::Traefik,
    CertHeaderFormat::Caddy,
    CertHeaderFormat::Envoy,
    CertHeaderFormat::Rfc9440,
];

fuzz_target!(|data: &[u8]| {
    let Some((selector, value)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(*selector) % FORMATS.len()];
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    let Ok(name) = HeaderName::from_bytes(header_name(format).as_bytes()) else {
        return;
    };
    headers.insert(name, value.clone());
    if let Ok(Some(chain)) = decode(format, &headers) {
        assert!(!chain.0.is_empty() && chain.0.len() <= certgate::cert::MAX_CHAIN_LEN);
        assert!(value.len() <= MAX_HEADER_BYTES);
    }
});
