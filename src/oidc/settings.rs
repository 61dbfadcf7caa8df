//! `[oidc]` and `[[oidc.clients]]`: the relying parties certgate signs people in to.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::settings::{list, resolve, Checker};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawOidc {
    pub issuer: Option<String>,
    pub code_ttl: Option<String>,
    pub access_token_ttl: Option<String>,
    pub id_token_ttl: Option<String>,
    pub refresh_token_ttl: Option<String>,
    pub acr: Option<String>,
    pub clients: Vec<RawClient>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawClient {
    pub id: Option<String>,
    pub secret: Option<String>,
    pub secret_file: Option<String>,
    #[serde(deserialize_with = "list::string_or_list")]
    pub redirect_uris: Vec<String>,
    #[serde(deserialize_with = "list::string_or_list")]
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub id_token_signed_response_alg: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    #[serde(deserialize_with = "list::opt_string_or_list")]
    pub scopes: Option<Vec<String>>,
    #[serde(deserialize_with = "list::string_or_list")]
    pub users: Vec<String>,
    #[serde(deserialize_with = "list::string_or_list")]
    pub groups: Vec<String>,
    /// With `tls_client_auth` (RFC 8705 §2.1.2): the SAN the client's certificate must carry.
    pub tls_client_auth_san_dns: Option<String>,
    pub tls_client_auth_san_uri: Option<String>,
    pub tls_client_auth_san_email: Option<String>,
}

/// The scopes certgate knows; a client may be limited to fewer.
pub const SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];

/// How an ID token is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    pub const ALL: [Self; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

/// How a client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the id and secret.
    SecretBasic,
    /// `client_id` and `client_secret` in the form.
    SecretPost,
    /// A public client (a browser app, a phone app): no secret, PKCE required.
    None,
    /// The client's certificate (RFC 8705 §2): mutual TLS, on a chain to `client_ca`.
    TlsClientAuth,
}

impl AuthMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SecretBasic => "client_secret_basic",
            Self::SecretPost => "client_secret_post",
            Self::None => "none",
            Self::TlsClientAuth => "tls_client_auth",
        }
    }
}

/// One relying party.
#[derive(Clone)]
pub struct Client {
    pub id: String,
    /// `None`: a public client.
    pub secret: Option<zeroize::Zeroizing<String>>,
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser back to (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// Where back-channel logout tokens are POSTed; `None`: the app is not told.
    pub backchannel_logout_uri: Option<String>,
    pub alg: Alg,
    pub auth_method: AuthMethod,
    pub scopes: BTreeSet<String>,
    /// Who may sign in to it (by name, or by group); both empty: anyone certgate knows.
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// With `tls_client_auth`: the certificate that is the client.
    pub tls_subject: Option<TlsSubject>,
}

/// The certificate a `tls_client_auth` client presents, by one subject alternative name
/// (RFC 8705 §2.1.2), on a chain to `client_ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSubject {
    Dns(String),
    Uri(String),
    Email(String),
}

impl TlsSubject {
    /// Whether `cert` carries this name.
    pub fn matches(&self, cert: &crate::cert::ClientCert) -> bool {
        match self {
            Self::Dns(name) => cert.dns_names.iter().any(|d| d.eq_ignore_ascii_case(name)),
            Self::Uri(uri) => cert.uris.iter().any(|u| u == uri),
            Self::Email(email) => cert.emails.iter().any(|e| e.eq_ignore_ascii_case(email)),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("redirect_uris", &self.redirect_uris)
            .field("backchannel_logout_uri", &self.backchannel_logout_uri)
            .field("alg", &self.alg)
            .field("auth_method", &self.auth_method)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Whether `user` (in `groups`) may sign in to this client.
    pub fn admits(&self, user: &str, groups: &[String]) -> bool {
        (self.users.is_empty() && self.groups.is_empty())
            || self.users.iter().any(|u| u == user)
            || self.groups.iter().any(|g| groups.contains(g))
    }
}

/// `[oidc]`, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// No trailing slash; every endpoint is under it.
    pub issuer: String,
    pub code_ttl: Duration,
    pub access_token_ttl: Duration,
    pub id_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// The `acr` claim of every ID token (what the operator calls a certificate sign-in).
    pub acr: Option<String>,
    pub clients: Vec<Client>,
}

impl Settings {
    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// `[oidc]` as written; `public_url` is certgate's own (`None` when it is itself invalid).
    pub fn from_raw(
        c: &mut Checker,
        raw: &RawOidc,
        public_url: Option<&Url>,
        base: &Path,
    ) -> Option<Self> {
        let public = public_url.map(|u| u.as_str().trim_end_matches('/').to_string());
        let issuer = match (&raw.issuer, &public) {
            (Some(issuer), Some(public)) if issuer.trim_end_matches('/') != public => {
                c.fail(
                    "oidc.issuer",
                    format!("`{issuer}` is not public_url (`{public}`)"),
                    "certgate serves OpenID Connect under its public_url: remove oidc.issuer, or set it to public_url",
                );
                None
            }
            (_, public) => public.clone(),
        };
        let code_ttl = c.duration(
            "oidc.code_ttl",
            raw.code_ttl.as_deref(),
            Duration::from_secs(60),
        );
        if code_ttl > Duration::from_secs(60) {
            c.fail(
                "oidc.code_ttl",
                "is longer than 60s",
                "an authorization code is redeemed at once; at most \"60s\" (RFC 6749 §4.1.2 advises 10 min at most, certgate keeps it shorter)",
            );
        }
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let access_token_ttl = c.duration(
            "oidc.access_token_ttl",
            raw.access_token_ttl.as_deref(),
            minutes(10),
        );
        let id_token_ttl = c.duration(
            "oidc.id_token_ttl",
            raw.id_token_ttl.as_deref(),
            minutes(10),
        );
        let refresh_token_ttl = c.duration(
            "oidc.refresh_token_ttl",
            raw.refresh_token_ttl.as_deref(),
            minutes(30 * 24 * 60),
        );
        let acr = raw.acr.as_deref().map(str::trim);
        if acr.is_some_and(|a| a.is_empty() || a.len() > 255 || a.chars().any(char::is_control)) {
            c.fail(
                "oidc.acr",
                "is empty, longer than 255 characters or holds a control character",
                "name the assurance level apps are told, e.g. \"urn:example:acr:certificate\", or remove oidc.acr",
            );
        }
        if raw.clients.is_empty() {
            c.fail(
                "oidc.clients",
                "none: [oidc] without a client signs nobody in",
                "add a [[oidc.clients]] entry with an id and redirect_uris (see the README's OpenID Connect section), or remove [oidc]",
            );
        }
        let mut clients: Vec<Client> = Vec::new();
        for (i, rc) in raw.clients.iter().enumerate() {
            let key = format!("oidc.clients[{i}]");
            if let Some(client) = client(c, &key, rc, base) {
                if clients.iter().any(|other| other.id == client.id) {
                    c.fail(
                        &format!("{key}.id"),
                        format!("`{}` is used twice", client.id),
                        "give every client its own id",
                    );
                }
                clients.push(client);
            }
        }
        Some(Self {
            issuer: issuer?,
            code_ttl,
            access_token_ttl,
            id_token_ttl,
            refresh_token_ttl,
            acr: acr.filter(|a| !a.is_empty()).map(str::to_string),
            clients,
        })
    }
}

fn client(c: &mut Checker, key: &str, raw: &RawClient, base: &Path) -> Option<Client> {
    let id = raw.id.as_deref().map(str::trim).unwrap_or_default();
    let id_ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !id_ok {
        c.fail(
            &format!("{key}.id"),
            format!("`{id}` is not a client id"),
            "1 to 128 letters, digits, '.', '_' or '-', e.g. \"grafana\"",
        );
    }
    let secret = secret(c, key, raw, base);
    let auth_method = match (raw.token_endpoint_auth_method.as_deref(), &secret) {
        (None, Some(_)) | (Some("client_secret_basic"), Some(_)) => AuthMethod::SecretBasic,
        (Some("client_secret_post"), Some(_)) => AuthMethod::SecretPost,
        (None | Some("none"), None) => AuthMethod::None,
        (Some("none"), Some(_)) => {
            c.fail(
                &format!("{key}.token_endpoint_auth_method"),
                "\"none\" (a public client), but a secret is set",
                "remove secret/secret_file, or use \"client_secret_basic\"",
            );
            AuthMethod::None
        }
        (Some(m @ ("client_secret_basic" | "client_secret_post")), None) => {
            c.fail(
                &format!("{key}.token_endpoint_auth_method"),
                format!("\"{m}\" needs a secret"),
                "set secret_file (or secret), e.g. from `openssl rand -base64 32`; or \"none\" for a public client",
            );
            AuthMethod::None
        }
        (Some("tls_client_auth"), None) => AuthMethod::TlsClientAuth,
        (Some("tls_client_auth"), Some(_)) => {
            c.fail(
                &format!("{key}.token_endpoint_auth_method"),
                "\"tls_client_auth\" (the client is its certificate), but a secret is set",
                "remove secret/secret_file",
            );
            AuthMethod::TlsClientAuth
        }
        (Some(other), _) => {
            c.fail(
                &format!("{key}.token_endpoint_auth_method"),
                format!("`{other}` is not a method certgate knows"),
                "one of \"client_secret_basic\", \"client_secret_post\", \"tls_client_auth\", \"none\"",
            );
            AuthMethod::None
        }
    };
    if raw.redirect_uris.is_empty() {
        c.fail(
            &format!("{key}.redirect_uris"),
            "none",
            "the exact callback URL(s) the app sends, e.g. [\"https://grafana.example.com/login/generic_oauth\"]",
        );
    }
    for (j, uri) in raw.redirect_uris.iter().enumerate() {
        if let Err(why) = redirect_uri(uri) {
            c.fail(
                &format!("{key}.redirect_uris[{j}]"),
                format!("`{uri}` {why}"),
                "an absolute URL without a fragment, exactly as the app sends it",
            );
        }
    }
    for (j, uri) in raw.post_logout_redirect_uris.iter().enumerate() {
        if let Err(why) = redirect_uri(uri) {
            c.fail(
                &format!("{key}.post_logout_redirect_uris[{j}]"),
                format!("`{uri}` {why}"),
                "an absolute URL without a fragment, exactly as the app sends it at logout (a trailing slash counts)",
            );
        }
    }
    let backchannel_logout_uri = raw.backchannel_logout_uri.as_deref().and_then(|uri| {
        backchannel_uri(uri)
            .map_err(|why| {
                c.fail(
                    &format!("{key}.backchannel_logout_uri"),
                    format!("`{uri}` {why}"),
                    "the app's back-channel logout URL: absolute http(s), no fragment, e.g. \"https://app.example.com/backchannel\"",
                );
            })
            .ok()
    });
    let alg = match raw.id_token_signed_response_alg.as_deref() {
        None => Alg::Rs256,
        Some(raw_alg) => Alg::parse(raw_alg).unwrap_or_else(|| {
            c.fail(
                &format!("{key}.id_token_signed_response_alg"),
                format!("`{raw_alg}` is not an algorithm certgate signs with"),
                "\"RS256\" (what most apps accept), \"ES256\" or \"EdDSA\"",
            );
            Alg::Rs256
        }),
    };
    let scopes: BTreeSet<String> = match &raw.scopes {
        None => SCOPES.iter().map(|s| (*s).to_string()).collect(),
        Some(list) => list.iter().map(|s| s.trim().to_string()).collect(),
    };
    for scope in &scopes {
        if !SCOPES.contains(&scope.as_str()) {
            c.fail(
                &format!("{key}.scopes"),
                format!("`{scope}` is not a scope certgate knows"),
                format!("some of {}", SCOPES.join(", ")),
            );
        }
    }
    if !scopes.contains("openid") {
        c.fail(
            &format!("{key}.scopes"),
            "lacks \"openid\"",
            "every OpenID Connect sign-in asks for \"openid\": add it",
        );
    }
    let tls_subject = tls_subject(c, key, raw, auth_method);
    Some(Client {
        id: id.to_string(),
        secret,
        redirect_uris: raw.redirect_uris.clone(),
        post_logout_redirect_uris: raw.post_logout_redirect_uris.clone(),
        backchannel_logout_uri,
        alg,
        auth_method,
        scopes,
        users: raw.users.clone(),
        groups: raw.groups.clone(),
        tls_subject,
    })
}

/// The one `tls_client_auth_san_*` a `tls_client_auth` client needs, and none for others.
fn tls_subject(
    c: &mut Checker,
    key: &str,
    raw: &RawClient,
    method: AuthMethod,
) -> Option<TlsSubject> {
    let given: Vec<TlsSubject> = [
        raw.tls_client_auth_san_dns.clone().map(TlsSubject::Dns),
        raw.tls_client_auth_san_uri.clone().map(TlsSubject::Uri),
        raw.tls_client_auth_san_email.clone().map(TlsSubject::Email),
    ]
    .into_iter()
    .flatten()
    .collect();
    match (method, given.len()) {
        (AuthMethod::TlsClientAuth, 1) => given.into_iter().next(),
        (AuthMethod::TlsClientAuth, 0) => {
            c.fail(
                &format!("{key}.tls_client_auth_san_uri"),
                "missing: a tls_client_auth client is known by a name in its certificate",
                "set one of tls_client_auth_san_uri (e.g. \"urn:certgate:user:grafana-server\" for a certificate from `certgate ca issue --user grafana-server`), tls_client_auth_san_dns or tls_client_auth_san_email",
            );
            None
        }
        (AuthMethod::TlsClientAuth, _) => {
            c.fail(
                &format!("{key}.tls_client_auth_san_uri"),
                "more than one tls_client_auth_san_* is set",
                "keep exactly one (RFC 8705 §2.1.2)",
            );
            None
        }
        (_, 0) => None,
        (_, _) => {
            c.fail(
                &format!("{key}.tls_client_auth_san_uri"),
                "is set, but token_endpoint_auth_method is not \"tls_client_auth\"",
                "set token_endpoint_auth_method = \"tls_client_auth\", or remove the tls_client_auth_san_* key",
            );
            None
        }
    }
}

/// The client's secret, from `secret` or the file `secret_file` names (trimmed).
fn secret(
    c: &mut Checker,
    key: &str,
    raw: &RawClient,
    base: &Path,
) -> Option<zeroize::Zeroizing<String>> {
    let value = match (&raw.secret, &raw.secret_file) {
        (Some(_), Some(_)) => {
            c.fail(
                &format!("{key}.secret"),
                "both secret and secret_file are set",
                "keep one (secret_file keeps it out of the config)",
            );
            return None;
        }
        (Some(s), None) => zeroize::Zeroizing::new(s.trim().to_string()),
        (None, Some(file)) => {
            let path = resolve(base, file);
            match std::fs::read_to_string(&path) {
                Ok(s) => zeroize::Zeroizing::new(s.trim().to_string()),
                Err(e) => {
                    c.fail(
                        &format!("{key}.secret_file"),
                        format!("cannot read {}: {e}", path.display()),
                        "a file holding the client secret, readable by certgate",
                    );
                    return None;
                }
            }
        }
        (None, None) => return None,
    };
    if value.len() < 16 {
        c.fail(
            &format!("{key}.secret"),
            "is shorter than 16 characters",
            "use a long random secret, e.g. `openssl rand -base64 32`",
        );
    }
    Some(value)
}

/// Why `uri` cannot be a back-channel logout URI, if it cannot: certgate itself POSTs there,
/// so only http(s) with a host.
fn backchannel_uri(uri: &str) -> Result<String, &'static str> {
    let url = Url::parse(uri).map_err(|_| "is not an absolute URL")?;
    if url.fragment().is_some() {
        return Err("has a fragment (#…)");
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err("is not an http or https URL");
    }
    if url.host().is_none() {
        return Err("has no host");
    }
    Ok(uri.to_string())
}

/// Why `uri` cannot be a redirect URI, if it cannot.
fn redirect_uri(uri: &str) -> Result<(), &'static str> {
    let url = Url::parse(uri).map_err(|_| "is not an absolute URL")?;
    if url.fragment().is_some() {
        return Err("has a fragment (#…)");
    }
    if matches!(
        url.scheme(),
        "javascript" | "data" | "file" | "vbscript" | "blob"
    ) {
        return Err("has a scheme a browser must never be sent to");
    }
    if matches!(url.scheme(), "http" | "https") && url.host().is_none() {
        return Err("has no host");
    }
    Ok(())
}
