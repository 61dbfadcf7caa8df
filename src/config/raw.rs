//! Stage one: the TOML file (plus environment overrides) as written, with no checks beyond types.
//! Unknown keys are collected by `serde_ignored` in [`super::load`], so every one is reported.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    pub public_url: Option<String>,
    pub data_dir: Option<String>,
    pub listen: RawListen,
    pub tls: RawTls,
    pub client_ca: RawClientCa,
    pub proxy: RawProxy,
    pub identity: RawIdentity,
    pub users: Vec<RawUser>,
    pub session: RawSession,
    pub token: RawToken,
    pub store: RawStore,
    pub headers: RawHeaders,
    pub access: RawAccess,
    pub rules: Vec<RawRule>,
    pub admin: RawAdmin,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawAdmin {
    #[serde(deserialize_with = "list::string_or_list")]
    pub groups: Vec<String>,
    /// Whom people should ask for access: shown on the denied and no-certificate pages.
    pub contact: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawAccess {
    pub allow_unmatched: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawRule {
    pub host: Option<String>,
    pub path: Option<String>,
    pub methods: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub networks: Vec<String>,
    pub action: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawListen {
    pub http: Option<String>,
    pub mtls: Option<String>,
    /// The operator's listener; `""` turns it off.
    pub metrics: Option<String>,
    pub workers: Option<i64>,
    pub header_timeout: Option<String>,
    pub tls_handshake_timeout: Option<String>,
    pub max_connections: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawTls {
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawClientCa {
    pub bundle: Option<String>,
    #[serde(deserialize_with = "list::string_or_list")]
    pub crl: Vec<String>,
    pub danger_accept_expired_crl: Option<bool>,
    /// With several CAs in the bundle: let any of them issue any user (no binding).
    pub danger_any_ca_for_any_user: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawProxy {
    #[serde(deserialize_with = "list::opt_string_or_list")]
    pub trusted: Option<Vec<String>>,
    pub cert_header: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawIdentity {
    pub username_from: Option<String>,
    pub allow_unlisted: Option<bool>,
    /// Group name to the CA (subject CN, or `sha256:` fingerprint) that issues its members.
    pub group_ca: std::collections::BTreeMap<String, String>,
    /// The CA(s) that may issue users not listed in `[[users]]` (with `allow_unlisted`).
    #[serde(deserialize_with = "list::string_or_list")]
    pub unlisted_ca: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawUser {
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// The CA(s) that may issue this user's certificates: subject CN, or `sha256:` fingerprint.
    #[serde(deserialize_with = "list::string_or_list")]
    pub ca: Vec<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub disabled: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSession {
    pub cookie_name: Option<String>,
    pub cookie_domain: Option<String>,
    pub ttl: Option<String>,
    #[serde(deserialize_with = "list::opt_string_or_list")]
    pub allowed_redirect_hosts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawToken {
    pub default_ttl: Option<String>,
    pub max_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawStore {
    pub backend: Option<String>,
    pub redis_url: Option<String>,
    pub max_staleness: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawHeaders {
    pub user: Option<String>,
    pub groups: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// Lists may come from TOML arrays or, through environment overrides, as "a,b,c".
mod list {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }

    fn split(v: OneOrMany) -> Vec<String> {
        match v {
            OneOrMany::Many(v) => v,
            OneOrMany::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        }
    }

    pub fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        OneOrMany::deserialize(d).map(split)
    }

    pub fn opt_string_or_list<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<String>>, D::Error> {
        OneOrMany::deserialize(d).map(split).map(Some)
    }
}
