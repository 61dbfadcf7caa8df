//! Stage two: turn [`RawConfig`] into a [`Config`] the rest of certgate can trust. Each
//! section is validated by the module that owns it (files it names are read there, so a bad
//! path or a CA that is not a CA is reported with its key); here they are put together.

use std::path::{Path, PathBuf};

use url::Url;

use super::listen::Listen;
use super::raw::RawConfig;
use super::Problems;
use crate::cert::forwarded::ProxySettings;
use crate::cert::TrustSettings;
use crate::identity;
use crate::oidc;
use crate::policy::Policy;
use crate::revocation::StoreSettings;
use crate::session;
use crate::settings::{resolve, Checker};
use crate::tls::ServerTls;

/// The validated configuration. Built once at start-up; never changes while serving.
#[derive(Debug)]
pub struct Config {
    /// Absolute base for `Location` headers; `/auth` lives at `{public_url}/auth`. No trailing slash.
    pub public_url: Url,
    pub data_dir: PathBuf,
    pub listen: Listen,
    /// Server certificate chain and key of the mTLS listener.
    pub tls: Option<ServerTls>,
    /// `[client_ca]`: trust anchors and CRLs for client certificates.
    pub client_ca: TrustSettings,
    pub proxy: ProxySettings,
    pub identity: identity::Mapping,
    pub session: session::Settings,
    pub token: session::TokenSettings,
    pub headers: identity::HeaderNames,
    /// `[[rules]]` and `[access]`; reloaded on SIGHUP.
    pub policy: Policy,
    /// Members of these groups may use the admin pages (none: the pages are off).
    pub admin_groups: Vec<String>,
    /// Whom to ask for access (`admin.contact`), shown on refusal pages.
    pub admin_contact: Option<String>,
    pub store: StoreSettings,
    /// `[oidc]`: `None` when certgate is no OpenID Connect provider.
    pub oidc: Option<oidc::Settings>,
}

impl Config {
    /// `public_url` without its trailing slash: the base every absolute URL certgate sends
    /// (Location headers, links, the token issuer) is built on.
    pub fn public_base(&self) -> &str {
        self.public_url.as_str().trim_end_matches('/')
    }

    /// The longest a token certgate signs may live (sessions or bearer tokens), with the
    /// verification leeway: a signing key is kept this long after it stops signing.
    pub fn max_lifetime(&self) -> i64 {
        let longest = self.session.ttl.max(self.token.max_ttl).as_secs();
        i64::try_from(longest)
            .unwrap_or(i64::MAX)
            .saturating_add(crate::jwt::LEEWAY)
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
        if self.listen.mtls.is_some() && self.client_ca.bundle != old.client_ca.bundle {
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

pub(super) fn validate(raw: RawConfig, base: &Path, origin: &str) -> Result<Config, Problems> {
    let mut c = Checker::default();
    let public_url = public_url(&mut c, raw.public_url.as_deref());
    let data_dir = resolve(base, raw.data_dir.as_deref().unwrap_or("./certgate-data"));
    let listen = super::listen::listen(&mut c, &raw.listen);
    let tls = ServerTls::from_raw(&mut c, &raw.tls, raw.listen.mtls.is_some(), base);
    let client_ca = TrustSettings::from_raw(&mut c, &raw.client_ca, base);
    let proxy = ProxySettings::from_raw(&mut c, raw.proxy);
    let identity = identity::Mapping::from_raw(
        &mut c,
        &raw.identity,
        raw.users,
        &identity::Context {
            client_ca: &client_ca.bundle,
            danger_any_ca: raw.client_ca.danger_any_ca_for_any_user.unwrap_or(false),
            data_dir: &data_dir,
        },
    );
    let session = session::Settings::from_raw(&mut c, &raw.session, public_url.as_ref());
    let token = session::TokenSettings::from_raw(&mut c, &raw.token);
    let store = StoreSettings::from_raw(&mut c, &raw.store, base);
    token.check(&mut c);
    let headers = identity::HeaderNames::from_raw(&mut c, raw.headers);
    let policy = Policy::from_raw(&mut c, &raw.rules, &raw.access, origin);
    let oidc = raw
        .oidc
        .as_ref()
        .and_then(|raw| oidc::Settings::from_raw(&mut c, raw, public_url.as_ref(), base));
    if let (Some(_), Some(url)) = (&oidc, &public_url) {
        oidc_fits(&mut c, url, &session);
    }

    match public_url {
        Some(public_url) if c.0.is_empty() => Ok(Config {
            public_url,
            data_dir,
            listen,
            tls,
            client_ca,
            proxy,
            identity,
            session,
            token,
            store,
            headers,
            policy,
            admin_groups: raw.admin.groups,
            admin_contact: raw.admin.contact.filter(|c| !c.trim().is_empty()),
            oidc,
        }),
        _ => Err(Problems(c.0)),
    }
}

/// What `[oidc]` needs of the rest: a person without a session goes through `/auth` and back
/// to `/oidc/authorize` on certgate's own host.
fn oidc_fits(c: &mut Checker, public_url: &Url, session: &session::Settings) {
    let host = public_url
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !crate::policy::host_allowed(&host, &session.allowed_redirect_hosts) {
        c.fail(
            "session.allowed_redirect_hosts",
            format!("does not allow {host}, certgate's own host: /auth could not send a person back to /oidc/authorize"),
            format!("add \"{host}\""),
        );
    }
}

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
