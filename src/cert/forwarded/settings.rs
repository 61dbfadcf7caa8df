//! `[proxy]`: which peers may forward a certificate and `X-Forwarded-*`, and how their
//! certificate header is encoded.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::settings::{ip_network, list, Checker};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawProxy {
    #[serde(deserialize_with = "list::opt_string_or_list")]
    pub trusted: Option<Vec<String>>,
    pub cert_header: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub trusted: Vec<IpNet>,
    pub cert_header: CertHeaderFormat,
}

/// How the proxy in front encodes the client certificate it verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertHeaderFormat {
    Nginx,
    Traefik,
    Caddy,
    Envoy,
    Rfc9440,
}

impl ProxySettings {
    /// Only these peers may forward certificates and `X-Forwarded-*`.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.trusted.iter().any(|net| net.contains(&peer))
    }

    /// Loopback only, unless `proxy.trusted` says otherwise.
    pub fn from_raw(c: &mut Checker, raw: RawProxy) -> Self {
        Self {
            trusted: trusted_networks(c, raw.trusted),
            cert_header: match raw.cert_header.as_deref().unwrap_or("nginx") {
                "nginx" => CertHeaderFormat::Nginx,
                "traefik" => CertHeaderFormat::Traefik,
                "caddy" => CertHeaderFormat::Caddy,
                "envoy" => CertHeaderFormat::Envoy,
                "rfc9440" => CertHeaderFormat::Rfc9440,
                other => {
                    c.fail(
                        "proxy.cert_header",
                        format!("`{other}` is not a certificate header format"),
                        "use one of nginx, traefik, caddy, envoy, rfc9440",
                    );
                    CertHeaderFormat::Nginx
                }
            },
        }
    }
}

fn trusted_networks(c: &mut Checker, raw: Option<Vec<String>>) -> Vec<IpNet> {
    let raw = raw.unwrap_or_else(|| vec!["127.0.0.1/32".into(), "::1/128".into()]);
    raw.iter()
        .filter_map(|s| {
            let parsed = ip_network(s);
            if parsed.is_none() {
                c.fail(
                    "proxy.trusted",
                    format!("`{s}` is not an IP network"),
                    "use CIDR notation, e.g. \"10.0.0.0/8\" or \"::1/128\"",
                );
            }
            parsed
        })
        .collect()
}
