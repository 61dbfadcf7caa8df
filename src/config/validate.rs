//! Stage two: turn [`RawConfig`] into a [`Config`] the rest of certgate can trust, loading the
//! files it names (so a bad path or a CA that is not a CA is reported here, with its key).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::http::header::HeaderName;
use ipnet::IpNet;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use url::Url;

use super::listen::Listen;
use super::raw::{RawConfig, RawRule};
use super::{Problem, Problems};
use crate::policy::{Action, HostPattern, PathPattern, Policy, Rule};

/// The validated configuration. Built once at start-up; never changes while serving.
#[derive(Debug)]
pub struct Config {
    /// Absolute base for `Location` headers; `/auth` lives at `{public_url}/auth`. No trailing slash.
    pub public_url: Url,
    pub data_dir: PathBuf,
    pub listen: Listen,
    /// Server certificate chain and key of the mTLS listener.
    pub tls: Option<ServerTls>,
    /// Trust anchors for client certificates, DER, each checked to be a CA.
    pub client_ca: Vec<CertificateDer<'static>>,
    /// CRL files (re-read when they change) and whether an expired one still counts.
    pub crl_files: Vec<PathBuf>,
    pub danger_accept_expired_crl: bool,
    pub proxy: ProxyConfig,
    pub identity: IdentityConfig,
    pub session: SessionConfig,
    pub token: TokenConfig,
    pub headers: HeaderNames,
    /// `[[rules]]` and `[access]`; reloaded on SIGHUP.
    pub policy: Policy,
    /// Members of these groups may use the admin pages (none: the pages are off).
    pub admin_groups: Vec<String>,
    /// Whom to ask for access (`admin.contact`), shown on refusal pages.
    pub admin_contact: Option<String>,
    pub store: StoreConfig,
}

/// `[store]`: where revocations live.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// A view older than this answers 503 instead of allowing.
    pub max_staleness: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// `data_dir/revocations.jsonl`, shared by every certgate on the host.
    Embedded,
    /// A Redis stream, shared by replicas anywhere; the URL as given.
    Redis(String),
}

fn store(c: &mut Checker, raw: &super::raw::RawStore) -> StoreConfig {
    let url = raw
        .redis_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let backend = match (raw.backend.as_deref().unwrap_or("embedded"), url) {
        ("embedded", None) => StoreBackend::Embedded,
        ("embedded", Some(_)) => {
            c.fail(
                "store.redis_url",
                "set, but store.backend is \"embedded\"",
                "set store.backend = \"redis\", or remove store.redis_url",
            );
            StoreBackend::Embedded
        }
        ("redis", Some(u)) => {
            if let Err(e) = redis::Client::open(u) {
                c.fail(
                    "store.redis_url",
                    format!("`{u}`: {e}"),
                    "e.g. \"redis://127.0.0.1:6379/0\" or \"rediss://:password@redis.example.com/\"",
                );
            }
            StoreBackend::Redis(u.to_string())
        }
        ("redis", None) => {
            c.fail(
                "store.redis_url",
                "missing: store.backend is \"redis\"",
                "e.g. \"redis://127.0.0.1:6379/0\"",
            );
            StoreBackend::Embedded
        }
        (other, _) => {
            c.fail(
                "store.backend",
                format!("`{other}` is not a store"),
                "use \"embedded\" (one host) or \"redis\" (replicas)",
            );
            StoreBackend::Embedded
        }
    };
    let max_staleness = c.duration(
        "store.max_staleness",
        raw.max_staleness.as_deref(),
        Duration::from_secs(10),
    );
    if max_staleness < Duration::from_secs(1) {
        c.fail(
            "store.max_staleness",
            "must be at least 1s",
            "the view is brought up to date several times a second; e.g. \"10s\"",
        );
    }
    StoreConfig {
        backend,
        max_staleness,
    }
}

impl Config {
    /// `public_url` without its trailing slash: the base every absolute URL certgate sends
    /// (Location headers, links, the token issuer) is built on.
    pub fn public_base(&self) -> &str {
        self.public_url.as_str().trim_end_matches('/')
    }

    /// On reload: keeps the values that are read only at start-up (listeners, TLS, data
    /// directory, public URL, which the signing keys and cookies depend on) and names those
    /// the new file changed.
    pub fn keep_restart_only(&mut self, old: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.public_url != old.public_url {
            changed.push("public_url");
        }
        if self.data_dir != old.data_dir {
            changed.push("data_dir");
        }
        if self.listen != old.listen {
            changed.push("listen");
        }
        let der = |t: &Option<ServerTls>| t.as_ref().map(|t| t.chain.clone());
        if der(&self.tls) != der(&old.tls) {
            changed.push("tls");
        }
        // Checked per request after a reload, but the CA names the mTLS listener offers
        // browsers (so they know which certificate to pick) are fixed at start.
        if self.listen.mtls.is_some() && self.client_ca != old.client_ca {
            changed.push("client_ca.bundle (the CA names the mTLS listener sends browsers)");
        }
        if self.store.backend != old.store.backend {
            changed.push("store.backend / store.redis_url");
        }
        self.public_url = old.public_url.clone();
        self.data_dir = old.data_dir.clone();
        self.store.backend = old.store.backend.clone();
        self.listen = old.listen;
        changed
    }
}

#[derive(Debug)]
pub struct ServerTls {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub trusted: Vec<IpNet>,
    pub cert_header: CertHeaderFormat,
}

impl ProxyConfig {
    /// Only these peers may forward certificates and `X-Forwarded-*`.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.trusted.iter().any(|net| net.contains(&peer))
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernameFrom {
    Cn,
    SanEmail,
    SanUri,
    SanDns,
}

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub username_from: UsernameFrom,
    pub allow_unlisted: bool,
    pub users: BTreeMap<String, User>,
    /// The CAs that may issue users not listed (`identity.unlisted_ca`); empty: see `any_ca`.
    pub unlisted_ca: Vec<crate::cert::IssuerCa>,
    /// Whether any CA of the bundle may issue a user bound to none: one CA in the bundle, or
    /// `client_ca.danger_any_ca_for_any_user`.
    pub any_ca: bool,
    /// The bundle's CAs, one entry each (what a token's `x5ca` claim names).
    pub cas: Vec<crate::cert::IssuerCa>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub disabled: bool,
    /// The CAs that may issue this user's certificates (see `config::binding`); empty: any,
    /// where `IdentityConfig::any_ca` says so, else none.
    pub ca: Vec<crate::cert::IssuerCa>,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The full cookie name, prefix included (`__Host-certgate`).
    pub cookie_name: String,
    /// `Domain` attribute for single sign-on across subdomains.
    pub cookie_domain: Option<String>,
    /// False only when `public_url` is plain http (a lab without TLS).
    pub secure: bool,
    pub ttl: Duration,
    /// Lower-case host names; `*.example.com` matches any subdomain.
    pub allowed_redirect_hosts: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct TokenConfig {
    pub default_ttl: Duration,
    pub max_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct HeaderNames {
    pub user: HeaderName,
    pub groups: HeaderName,
    pub email: HeaderName,
    pub name: HeaderName,
}

/// Collects problems so that all of them are reported together.
#[derive(Default)]
pub(super) struct Checker(pub(super) Vec<Problem>);

impl Checker {
    pub(super) fn fail(&mut self, key: &str, problem: impl Into<String>, hint: impl Into<String>) {
        self.0.push(Problem::new(key, problem, hint));
    }

    fn duration(&mut self, key: &str, raw: Option<&str>, default: Duration) -> Duration {
        let Some(raw) = raw else { return default };
        match humantime::parse_duration(raw) {
            Ok(d) if d > MAX_TTL => {
                self.fail(
                    key,
                    format!("`{raw}` is longer than a year"),
                    "certgate's lifetimes are at most 365d",
                );
                default
            }
            Ok(d) if d.as_secs() > 0 => d,
            Ok(_) => {
                self.fail(key, "must be at least one second", "e.g. \"1h\"");
                default
            }
            Err(e) => {
                self.fail(
                    key,
                    format!("`{raw}` is not a duration: {e}"),
                    "use a number and a unit, e.g. \"90s\", \"1h\", \"30d\"",
                );
                default
            }
        }
    }
}

pub(super) fn validate(raw: RawConfig, base: &Path, origin: &str) -> Result<Config, Problems> {
    let mut c = Checker::default();
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };

    let public_url = public_url(&mut c, raw.public_url.as_deref());
    let data_dir = resolve(raw.data_dir.as_deref().unwrap_or("./certgate-data"));
    let listen = super::listen::listen(&mut c, &raw.listen);
    let tls = match (
        &raw.listen.mtls,
        raw.tls.cert.as_deref(),
        raw.tls.key.as_deref(),
    ) {
        (None, _, _) => None,
        (Some(_), Some(cert), Some(key)) => server_tls(&mut c, &resolve(cert), &resolve(key)),
        (Some(_), _, _) => {
            c.fail(
                "tls.cert, tls.key",
                "both are required when listen.mtls is set",
                "point them at the mTLS listener's server certificate and key, or remove listen.mtls",
            );
            None
        }
    };
    let client_ca = match raw.client_ca.bundle.as_deref() {
        Some(path) => ca_bundle(&mut c, &resolve(path)),
        None => {
            c.fail(
                "client_ca.bundle",
                "missing",
                "set it to the PEM file of the CA that issued your client certificates",
            );
            Vec::new()
        }
    };
    let crl_files: Vec<PathBuf> = raw.client_ca.crl.iter().map(|p| resolve(p)).collect();
    for path in &crl_files {
        if let Err(e) = crate::cert::crl::read_crl(path) {
            c.fail(
                "client_ca.crl",
                format!("{}: {e}", path.display()),
                "a CRL file in PEM (-----BEGIN X509 CRL-----) or DER, readable by certgate",
            );
        }
    }
    let danger_accept_expired_crl = raw.client_ca.danger_accept_expired_crl.unwrap_or(false);

    let proxy = ProxyConfig {
        trusted: trusted_networks(&mut c, raw.proxy.trusted),
        cert_header: match raw.proxy.cert_header.as_deref().unwrap_or("nginx") {
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
    };

    let mut identity = IdentityConfig {
        username_from: match raw.identity.username_from.as_deref().unwrap_or("cn") {
            "cn" => UsernameFrom::Cn,
            "san_email" => UsernameFrom::SanEmail,
            "san_uri" => UsernameFrom::SanUri,
            "san_dns" => UsernameFrom::SanDns,
            other => {
                c.fail(
                    "identity.username_from",
                    format!("`{other}` is not a username source"),
                    "use one of cn, san_email, san_uri, san_dns",
                );
                UsernameFrom::Cn
            }
        },
        allow_unlisted: raw.identity.allow_unlisted.unwrap_or(false),
        users: BTreeMap::new(),
        unlisted_ca: Vec::new(),
        any_ca: true,
        cas: Vec::new(),
    };
    let (users, user_cas) = users(&mut c, raw.users);
    identity.users = users;
    let bound = super::binding::bind(
        &super::binding::Bundle::new(&client_ca, &data_dir),
        &mut identity.users,
        &user_cas,
        &raw.identity,
        identity.allow_unlisted,
        raw.client_ca.danger_any_ca_for_any_user.unwrap_or(false),
        &mut c.0,
    );
    identity.unlisted_ca = bound.unlisted;
    identity.any_ca = bound.any_ca;
    identity.cas = bound.cas;

    let session = session(&mut c, &raw.session, public_url.as_ref());
    let token = TokenConfig {
        default_ttl: c.duration("token.default_ttl", raw.token.default_ttl.as_deref(), HOUR),
        max_ttl: c.duration(
            "token.max_ttl",
            raw.token.max_ttl.as_deref(),
            30 * 24 * HOUR,
        ),
    };
    let store = store(&mut c, &raw.store);
    if token.default_ttl > token.max_ttl {
        c.fail(
            "token.default_ttl, token.max_ttl",
            "default_ttl is longer than max_ttl",
            "raise token.max_ttl or lower token.default_ttl",
        );
    }
    let headers = HeaderNames {
        user: header_name(&mut c, "headers.user", raw.headers.user, "remote-user"),
        groups: header_name(
            &mut c,
            "headers.groups",
            raw.headers.groups,
            "remote-groups",
        ),
        email: header_name(&mut c, "headers.email", raw.headers.email, "remote-email"),
        name: header_name(&mut c, "headers.name", raw.headers.name, "remote-name"),
    };
    distinct_header_names(&mut c, &headers);

    let policy = Policy {
        rules: raw
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| rule(&mut c, i, r))
            .collect(),
        allow_unmatched: raw.access.allow_unmatched.unwrap_or(false),
        source: origin.to_string(),
    };

    match public_url {
        Some(public_url) if c.0.is_empty() => Ok(Config {
            public_url,
            data_dir,
            listen,
            tls,
            client_ca,
            crl_files,
            danger_accept_expired_crl,
            proxy,
            identity,
            session,
            token,
            store,
            headers,
            policy,
            admin_groups: raw.admin.groups,
            admin_contact: raw.admin.contact.filter(|c| !c.trim().is_empty()),
        }),
        _ => Err(Problems(c.0)),
    }
}

fn rule(c: &mut Checker, i: usize, raw: &RawRule) -> Option<Rule> {
    let key = |field: &str| format!("rules[{i}].{field}");
    let before = c.0.len();
    let host = raw.host.as_deref().and_then(|h| {
        HostPattern::parse(h)
            .map_err(|e| {
                c.fail(
                    &key("host"),
                    e,
                    "an exact host or *.example.com, no scheme or port",
                )
            })
            .ok()
    });
    let path = raw.path.as_deref().and_then(|p| {
        PathPattern::parse(p)
            .map_err(|e| {
                c.fail(
                    &key("path"),
                    e,
                    "e.g. \"/admin\", \"/admin/**\" or \"/api/*/state\"",
                )
            })
            .ok()
    });
    let mut methods = Vec::new();
    for m in &raw.methods {
        let upper = m.trim().to_ascii_uppercase();
        if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
            c.fail(
                &key("methods"),
                format!("`{m}` is not an HTTP method"),
                "e.g. [\"GET\", \"POST\"]",
            );
        }
        methods.push(upper);
    }
    let networks = raw
        .networks
        .iter()
        .filter_map(|n| {
            n.parse::<IpNet>()
                .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    c.fail(
                        &key("networks"),
                        format!("`{n}` is not an IP network"),
                        "CIDR, e.g. \"10.0.0.0/8\"",
                    )
                })
                .ok()
        })
        .collect();
    let action = match raw.action.as_deref() {
        Some("allow") => Action::Allow,
        Some("deny") => Action::Deny,
        Some("bypass") => Action::Bypass,
        Some(other) => {
            c.fail(
                &key("action"),
                format!("`{other}` is not an action"),
                "allow, deny or bypass",
            );
            Action::Deny
        }
        None => {
            c.fail(
                &key("action"),
                "missing",
                "every rule says allow, deny or bypass",
            );
            Action::Deny
        }
    };
    if action == Action::Bypass && (!raw.users.is_empty() || !raw.groups.is_empty()) {
        c.fail(
            &key("action"),
            "a bypass rule cannot name users or groups",
            "bypass means no credentials are asked for; use allow for named users",
        );
    }
    (c.0.len() == before).then(|| Rule {
        index: i,
        host,
        path,
        methods,
        users: raw.users.clone(),
        groups: raw.groups.clone(),
        networks,
        action,
    })
}

const HOUR: Duration = Duration::from_secs(3600);
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

fn public_url(c: &mut Checker, raw: Option<&str>) -> Option<Url> {
    let hint =
        "the absolute https URL where browsers reach certgate, e.g. \"https://auth.example.com\"";
    let Some(raw) = raw else {
        c.fail("public_url", "missing", hint);
        return None;
    };
    match Url::parse(raw) {
        Ok(url)
            if matches!(url.scheme(), "https" | "http")
                && url.host().is_some()
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty() =>
        {
            let mut url = url;
            let path = url.path().trim_end_matches('/').to_string();
            url.set_path(&path);
            Some(url)
        }
        Ok(_) => {
            c.fail(
                "public_url",
                format!("`{raw}` is not a plain http(s) base URL"),
                hint,
            );
            None
        }
        Err(e) => {
            c.fail("public_url", format!("`{raw}`: {e}"), hint);
            None
        }
    }
}

fn server_tls(c: &mut Checker, cert: &Path, key: &Path) -> Option<ServerTls> {
    let chain: Vec<CertificateDer<'static>> = match CertificateDer::pem_file_iter(cert) {
        Ok(iter) => iter.filter_map(Result::ok).collect(),
        Err(e) => {
            c.fail(
                "tls.cert",
                format!("cannot read {}: {e}", cert.display()),
                "",
            );
            return None;
        }
    };
    if chain.is_empty() {
        c.fail(
            "tls.cert",
            format!("{} holds no PEM certificate", cert.display()),
            "it must contain -----BEGIN CERTIFICATE-----",
        );
    }
    let key = match PrivateKeyDer::from_pem_file(key) {
        Ok(k) => Some(k),
        Err(e) => {
            c.fail(
                "tls.key",
                format!("cannot read a private key from {}: {e}", key.display()),
                "a PEM PKCS#8, SEC1 or PKCS#1 key, readable by certgate",
            );
            None
        }
    };
    Some(ServerTls { chain, key: key? })
}

fn ca_bundle(c: &mut Checker, path: &Path) -> Vec<CertificateDer<'static>> {
    let certs: Vec<CertificateDer<'static>> = match CertificateDer::pem_file_iter(path) {
        Ok(iter) => iter.filter_map(Result::ok).collect(),
        Err(e) => {
            c.fail(
                "client_ca.bundle",
                format!("cannot read {}: {e}", path.display()),
                "",
            );
            return Vec::new();
        }
    };
    if certs.is_empty() {
        c.fail(
            "client_ca.bundle",
            format!("{} holds no PEM certificate", path.display()),
            "it must contain the CA certificate(s) as -----BEGIN CERTIFICATE----- blocks",
        );
    }
    for (i, der) in certs.iter().enumerate() {
        if let Err(why) = crate::cert::check_is_ca(der) {
            c.fail(
                "client_ca.bundle",
                format!("{}: certificate #{} {why}", path.display(), i + 1),
                "point it at the CA that issued your client certificates, not at a client certificate",
            );
        }
    }
    certs
}

fn trusted_networks(c: &mut Checker, raw: Option<Vec<String>>) -> Vec<IpNet> {
    let raw = raw.unwrap_or_else(|| vec!["127.0.0.1/32".into(), "::1/128".into()]);
    raw.iter()
        .filter_map(|s| {
            let parsed = s
                .parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from));
            if parsed.is_err() {
                c.fail(
                    "proxy.trusted",
                    format!("`{s}` is not an IP network"),
                    "use CIDR notation, e.g. \"10.0.0.0/8\" or \"::1/128\"",
                );
            }
            parsed.ok()
        })
        .collect()
}

/// The `[[users]]` table, and each user's `ca` references with the index of their entry (for
/// `config::binding`).
fn users(
    c: &mut Checker,
    raw: Vec<super::raw::RawUser>,
) -> (BTreeMap<String, User>, super::binding::UserCas) {
    let mut users = BTreeMap::new();
    let mut cas = BTreeMap::new();
    for (i, u) in raw.into_iter().enumerate() {
        let key = format!("users[{i}].name");
        let Some(name) = u.name.filter(|n| !n.trim().is_empty()) else {
            c.fail(&key, "missing", "every [[users]] entry needs a name");
            continue;
        };
        if users.contains_key(&name) {
            c.fail(
                &key,
                format!("user `{name}` is listed twice"),
                "merge the two entries",
            );
            continue;
        }
        for group in &u.groups {
            if group.is_empty() || group.contains(',') || group.chars().any(char::is_control) {
                c.fail(
                    &format!("users[{i}].groups"),
                    format!("`{group}` is not a usable group name"),
                    "group names are sent comma-separated in Remote-Groups: no commas, no control characters",
                );
            }
        }
        let user = User {
            name: name.clone(),
            groups: u.groups,
            email: u.email,
            display_name: u.display_name,
            disabled: u.disabled,
            ca: Vec::new(),
        };
        if !u.ca.is_empty() {
            cas.insert(name.clone(), (i, u.ca));
        }
        users.insert(name, user);
    }
    (users, cas)
}

fn session(
    c: &mut Checker,
    raw: &super::raw::RawSession,
    public_url: Option<&Url>,
) -> SessionConfig {
    let secure = public_url.is_none_or(|u| u.scheme() == "https");
    let base = raw.cookie_name.clone().unwrap_or_else(|| "certgate".into());
    if base.is_empty()
        || !base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        c.fail(
            "session.cookie_name",
            format!("`{base}` is not a valid cookie name"),
            "use letters, digits, '-' and '_'",
        );
    }
    let domain = raw
        .cookie_domain
        .as_deref()
        .map(|d| d.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty());
    if let (Some(domain), Some(url)) = (&domain, public_url) {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if host != *domain && !host.ends_with(&format!(".{domain}")) {
            c.fail(
                "session.cookie_domain, public_url",
                format!("public_url host `{host}` is not inside cookie_domain `{domain}`"),
                "the cookie must be settable by certgate: use a parent domain of the public_url host",
            );
        }
    }
    let cookie_name = match (secure, &domain) {
        (false, _) => base,
        (true, None) => format!("__Host-{base}"),
        (true, Some(_)) => format!("__Secure-{base}"),
    };
    let allowed_redirect_hosts = match &raw.allowed_redirect_hosts {
        Some(list) => list.iter().filter_map(|h| redirect_host(c, h)).collect(),
        None => public_url
            .and_then(Url::host_str)
            .map(|h| vec![h.to_ascii_lowercase()])
            .unwrap_or_default(),
    };
    SessionConfig {
        cookie_name,
        cookie_domain: domain,
        secure,
        ttl: c.duration("session.ttl", raw.ttl.as_deref(), HOUR),
        allowed_redirect_hosts,
    }
}

fn redirect_host(c: &mut Checker, raw: &str) -> Option<String> {
    match HostPattern::parse(raw) {
        Ok(pattern) => Some(pattern.to_string()),
        Err(problem) => {
            c.fail(
                "session.allowed_redirect_hosts",
                problem,
                "list bare host names such as \"app.example.com\" or \"*.example.com\" (no scheme, port or path)",
            );
            None
        }
    }
}

/// Each identity header needs a name of its own, and none of the headers an answer already
/// carries or HTTP reserves for the connection: one would overwrite another, a proxy would read
/// a user name where it expects something else, or HTTP/2 would refuse the answer.
fn distinct_header_names(c: &mut Checker, h: &HeaderNames) {
    const TAKEN: [&str; 15] = [
        "cache-control",
        "connection",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "content-type",
        "date",
        "host",
        "location",
        "set-cookie",
        "transfer-encoding",
        "www-authenticate",
    ];
    let named = [
        ("headers.user", &h.user),
        ("headers.groups", &h.groups),
        ("headers.email", &h.email),
        ("headers.name", &h.name),
    ];
    for (i, (key, name)) in named.iter().enumerate() {
        if TAKEN.contains(&name.as_str()) {
            c.fail(
                key,
                format!("`{name}` is a header certgate's answers or HTTP itself already use"),
                "e.g. \"Remote-User\"",
            );
        }
        if let Some((other, _)) = named[i + 1..].iter().find(|(_, n)| n == name) {
            c.fail(
                &format!("{key}, {other}"),
                format!("both name the header `{name}`"),
                "give each identity header its own name",
            );
        }
    }
}

/// Parsed once here, so a check never parses a header name again.
fn header_name(
    c: &mut Checker,
    key: &str,
    raw: Option<String>,
    default: &'static str,
) -> HeaderName {
    let Some(name) = raw else {
        return HeaderName::from_static(default);
    };
    HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|_| {
        c.fail(
            key,
            format!("`{name}` is not a valid header name"),
            "e.g. \"Remote-User\"",
        );
        HeaderName::from_static(default)
    })
}
