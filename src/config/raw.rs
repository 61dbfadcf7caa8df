//! Stage one: the TOML file (plus environment overrides) as written, with no checks beyond types.
//! Unknown keys are collected by `serde_ignored` in [`super::load`], so every one is reported.
//! Each section's raw type belongs to the module that validates it.

use serde::Deserialize;

use crate::cert::forwarded::RawProxy;
use crate::cert::RawClientCa;
use crate::identity::{RawHeaders, RawIdentity, RawUser};
use crate::oidc::RawOidc;
use crate::policy::{RawAccess, RawRule};
use crate::revocation::RawStore;
use crate::session::{RawSession, RawToken};
use crate::settings::list;
use crate::tls::RawTls;

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
    /// Absent: certgate is no OpenID Connect provider (no OIDC routes).
    pub oidc: Option<RawOidc>,
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
