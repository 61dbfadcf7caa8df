//! Each decoder with values shaped as the real proxies send them.

use super::*;
use actix_web::http::header::{HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

struct Fixture {
    leaf_pem: String,
    leaf_der: Vec<u8>,
    ca_der: Vec<u8>,
}

/// Two certificates, as a chain's first and second: the decoders only carry bytes, and
/// `TrustStore::verify` checks the chain later.
fn fixture() -> Fixture {
    let leaf = rcgen::generate_simple_self_signed(vec!["alice".to_string()]).unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["Forwarded CA".to_string()]).unwrap();
    Fixture {
        leaf_pem: leaf.cert.pem(),
        leaf_der: leaf.cert.der().to_vec(),
        ca_der: ca.cert.der().to_vec(),
    }
}

fn headers(name: &str, values: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn decode_one(
    format: CertHeaderFormat,
    value: &str,
) -> Result<Option<PresentedChain>, ForwardedError> {
    decode(format, &headers(header_name(format), &[value]))
}

fn ders(chain: &PresentedChain) -> Vec<Vec<u8>> {
    chain.0.iter().map(|c| c.as_ref().to_vec()).collect()
}

/// nginx `$ssl_client_escaped_cert` escapes everything but unreserved characters.
fn nginx_escape(pem: &str) -> String {
    utf8_percent_encode(pem, NON_ALPHANUMERIC).to_string()
}

#[test]
fn nginx_escaped_pem_decodes_to_the_leaf() {
    let f = fixture();
    let chain = decode_one(CertHeaderFormat::Nginx, &nginx_escape(&f.leaf_pem))
        .unwrap()
        .unwrap();
    assert_eq!(ders(&chain), vec![f.leaf_der]);
}

#[test]
fn traefik_comma_joined_base64_chain_keeps_the_leaf_first() {
    let f = fixture();
    let value = format!(
        "{},{}",
        STANDARD.encode(&f.leaf_der),
        STANDARD.encode(&f.ca_der)
    );
    let chain = decode_one(CertHeaderFormat::Traefik, &value)
        .unwrap()
        .unwrap();
    assert_eq!(ders(&chain), vec![f.leaf_der.clone(), f.ca_der.clone()]);
    // Traefik <= 2.9.1 percent-encoded the same value.
    let old = utf8_percent_encode(&value, NON_ALPHANUMERIC).to_string();
    let chain = decode_one(CertHeaderFormat::Traefik, &old)
        .unwrap()
        .unwrap();
    assert_eq!(ders(&chain), vec![f.leaf_der, f.ca_der]);
}

#[test]
fn caddy_base64_der_and_its_empty_forms() {
    let f = fixture();
    let chain = decode_one(CertHeaderFormat::Caddy, &STANDARD.encode(&f.leaf_der))
        .unwrap()
        .unwrap();
    assert_eq!(ders(&chain), vec![f.leaf_der]);
    assert!(decode_one(CertHeaderFormat::Caddy, "").unwrap().is_none());
    // Caddy leaves the placeholder as it is when the client sent no certificate.
    assert!(decode_one(
        CertHeaderFormat::Caddy,
        "{http.request.tls.client.certificate_der_base64}"
    )
    .unwrap()
    .is_none());
}

#[test]
fn envoy_takes_the_last_elements_cert() {
    let f = fixture();
    let other = fixture();
    let first = format!(
        "By=spiffe://proxy-a;Hash=aa;Cert=\"{}\";Subject=\"CN=mallory,O=a,C=b\"",
        nginx_escape(&other.leaf_pem)
    );
    let last = format!(
        "By=spiffe://proxy-b;Hash=bb;Subject=\"CN=alice,O=x\";URI=;Cert=\"{}\"",
        nginx_escape(&f.leaf_pem)
    );
    let chain = decode_one(CertHeaderFormat::Envoy, &format!("{first},{last}"))
        .unwrap()
        .unwrap();
    assert_eq!(ders(&chain), vec![f.leaf_der]);
    assert!(
        decode_one(CertHeaderFormat::Envoy, "By=spiffe://x;Hash=aa").is_err(),
        "no Cert= is an error"
    );
}

#[test]
fn rfc9440_structured_field_byte_sequence() {
    let f = fixture();
    let chain = decode_one(
        CertHeaderFormat::Rfc9440,
        &format!(":{}:", STANDARD.encode(&f.leaf_der)),
    )
    .unwrap()
    .unwrap();
    assert_eq!(ders(&chain), vec![f.leaf_der.clone()]);
    assert!(
        decode_one(CertHeaderFormat::Rfc9440, &STANDARD.encode(&f.leaf_der)).is_err(),
        "colons are required"
    );
}

#[test]
fn every_format_refuses_malformed_oversized_and_repeated_values() {
    let f = fixture();
    let garbage_pem = "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----";
    let cases: [(CertHeaderFormat, &[&str]); 5] = [
        (CertHeaderFormat::Nginx, &["garbage", garbage_pem, "%FF%FE"]),
        (
            CertHeaderFormat::Traefik,
            &["not base64!", "AAAA", "QUJD,@@@"],
        ),
        (CertHeaderFormat::Caddy, &["not base64!", "AAAA"]),
        (
            CertHeaderFormat::Envoy,
            &["Cert=\"garbage\"", "Cert=\"%FF\""],
        ),
        (CertHeaderFormat::Rfc9440, &[":AAAA:", "::", ":not base64:"]),
    ];
    let big = "A".repeat(MAX_HEADER_BYTES + 1);
    for (format, bad) in cases {
        for value in bad {
            let err = decode_one(format, value).unwrap_err();
            assert_eq!(err.header, header_name(format), "{format:?} {value}");
        }
        assert_eq!(
            decode_one(format, &big).unwrap_err().problem,
            "too large",
            "{format:?}"
        );
        let twice = decode(format, &headers(header_name(format), &["a", "b"])).unwrap_err();
        assert_eq!(twice.problem, "sent more than once", "{format:?}");
        assert!(decode(format, &HeaderMap::new()).unwrap().is_none());
    }
    // A chain longer than the cap is refused before any parsing of it matters.
    let long = vec![STANDARD.encode(&f.leaf_der); MAX_CHAIN_LEN + 1].join(",");
    assert!(decode_one(CertHeaderFormat::Traefik, &long)
        .unwrap_err()
        .problem
        .contains("more than"));
}
