//! `certgate proxy-config`: the shipped, tested proxy configurations from `config/proxies/`,
//! printed with the operator's names. The files use fixed example values
//! (`app.example.com`, `auth.example.com`, the app at `127.0.0.1:8123`, certgate at
//! `127.0.0.1:9180`); rendering replaces exactly those, so what is printed is what the
//! integration tests run. With `--config`, what the operator's certgate config already says
//! (the CA bundle, certgate's listener, the sign-in host) fills the flags left out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use url::Url;

use crate::cert::forwarded::CertHeaderFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    Nginx,
    Traefik,
    Caddy,
}

/// What an app needs beside the proxy's lines: its own settings and the certgate
/// `[[rules]]` it needs, printed as comments below the file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    Generic,
    HomeAssistant,
    Grafana,
}

impl App {
    /// The preset's text (`config/proxies/apps/`), with the example names.
    fn notes(self) -> &'static str {
        match self {
            Self::Generic => include_str!("../config/proxies/apps/generic.txt"),
            Self::HomeAssistant => include_str!("../config/proxies/apps/home-assistant.txt"),
            Self::Grafana => include_str!("../config/proxies/apps/grafana.txt"),
        }
    }
}

/// What to put in place of the example values.
#[derive(Debug, Clone)]
pub struct Params {
    /// The app's host name; required but for Traefik's static file.
    pub host: Option<String>,
    /// The app's base URL; required but for Traefik's static file.
    pub upstream: Option<String>,
    /// A dedicated sign-in host: single sign-on across apps below a shared parent domain.
    pub auth_host: Option<String>,
    /// certgate's plain listener as the proxy reaches it (default `127.0.0.1:9180`).
    pub certgate: Option<String>,
    /// The client CA bundle the proxy asks browsers for certificates of (default
    /// `/etc/certgate/client-ca.pem`).
    pub client_ca: Option<String>,
    /// Traefik only: the static file (traefik.yml) instead of the routes.
    pub traefik_static: bool,
    /// The app's preset, if one was asked for.
    pub app: Option<App>,
    /// Home Assistant only: the rule that sends its login page to the certgate integration's
    /// "Sign in with certificate" (`--sign-in-with-certgate`).
    pub ha_sign_in: bool,
}

/// What the operator's certgate config says that a proxy configuration needs.
#[derive(Debug, Clone)]
pub struct FromConfig {
    /// `client_ca.bundle`, absolute.
    pub client_ca: PathBuf,
    /// `listen.http`.
    pub listen_http: SocketAddr,
    /// `public_url`: its host is the sign-in host, or the app host with certgate under
    /// `/.certgate/`.
    pub public_url: Url,
    /// `proxy.cert_header`: the header this proxy's file sends must be the one certgate reads.
    pub cert_header: CertHeaderFormat,
}

impl Params {
    /// Fills what the flags left out from the operator's certgate config; flags given
    /// explicitly win.
    ///
    /// # Errors
    /// A [`ParamError`] for `--config` (or the flag at odds with it) when the config describes
    /// no layout these files print, or certgate reads another proxy's certificate header.
    pub fn fill_from(&mut self, proxy: Proxy, c: &FromConfig) -> Result<(), ParamError> {
        if self.traefik_static {
            return Ok(());
        }
        let expected = match proxy {
            Proxy::Nginx => CertHeaderFormat::Nginx,
            Proxy::Traefik => CertHeaderFormat::Traefik,
            Proxy::Caddy => CertHeaderFormat::Caddy,
        };
        if c.cert_header != expected {
            let name = format!("{expected:?}").to_ascii_lowercase();
            return Err(ParamError {
                flag: "--config",
                problem: format!(
                    "proxy.cert_header is `{}`, so certgate would never see the certificate this {name} configuration forwards (set cert_header = \"{name}\")",
                    format!("{:?}", c.cert_header).to_ascii_lowercase()
                ),
            });
        }
        if self.client_ca.is_none() {
            let path = std::path::absolute(&c.client_ca).unwrap_or_else(|_| c.client_ca.clone());
            self.client_ca = Some(path.display().to_string());
        }
        if self.certgate.is_none() {
            self.certgate = Some(reachable(c.listen_http).to_string());
        }
        if self.auth_host.is_some() {
            return Ok(());
        }
        let public = c
            .public_url
            .host_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let host = self
            .host
            .as_deref()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase());
        match c.public_url.path().trim_end_matches('/') {
            // certgate under the app host's /.certgate/: the single-host layout.
            "/.certgate" => match host {
                None => self.host = Some(public),
                Some(h) if h == public => {}
                Some(h) => {
                    return Err(ParamError {
                        flag: "--host",
                        problem: format!(
                            "certgate's public_url serves it under /.certgate/ on `{public}`, not on `{h}`: print {public}'s configuration, or give --auth-host for a sign-in host"
                        ),
                    })
                }
            },
            // certgate on a host of its own: the sign-in-host layout.
            "" if host.as_deref() == Some(public.as_str()) => {
                return Err(ParamError {
                    flag: "--config",
                    problem: format!(
                        "public_url puts certgate at the root of the app host `{public}`: the printed layouts serve it on a sign-in host of its own, or under the app host's /.certgate/ (public_url = \"https://{public}/.certgate\")"
                    ),
                })
            }
            "" => self.auth_host = Some(public),
            other => {
                return Err(ParamError {
                    flag: "--config",
                    problem: format!(
                        "public_url's path `{other}` is neither a sign-in host's root nor the app host's /.certgate"
                    ),
                })
            }
        }
        Ok(())
    }
}

/// The address a proxy on this machine reaches a listener on: a wildcard bind is reached on
/// loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {problem}")]
pub struct ParamError {
    pub flag: &'static str,
    pub problem: String,
}

const NGINX_SSO: &str = include_str!("../config/proxies/nginx.conf");
const NGINX_SINGLE: &str = include_str!("../config/proxies/nginx-single-host.conf");
const CADDY_SSO: &str = include_str!("../config/proxies/Caddyfile");
const CADDY_SINGLE: &str = include_str!("../config/proxies/Caddyfile.single-host");
const TRAEFIK_STATIC: &str = include_str!("../config/proxies/traefik/traefik.yml");
const TRAEFIK_SSO: &str = include_str!("../config/proxies/traefik/dynamic.yml");
const TRAEFIK_SINGLE: &str = include_str!("../config/proxies/traefik/dynamic-single-host.yml");

/// The configuration text for `proxy`.
///
/// # Errors
/// A [`ParamError`] naming the flag whose value cannot be used.
pub fn render(proxy: Proxy, p: &Params) -> Result<String, ParamError> {
    if p.ha_sign_in && p.app != Some(App::HomeAssistant) {
        return Err(ParamError {
            flag: SIGN_IN_FLAG,
            problem: "only with --app home-assistant: the rule sends Home Assistant's login page to the certgate integration's sign-in".into(),
        });
    }
    if p.ha_sign_in && p.traefik_static {
        return Err(ParamError {
            flag: SIGN_IN_FLAG,
            problem: "the rule is a route: it goes in the routes (dynamic.yml, without --static), not in traefik.yml".into(),
        });
    }
    if p.traefik_static {
        // traefik.yml names no host, app or certgate: only the routes (dynamic.yml) do.
        return match proxy {
            Proxy::Traefik => Ok(TRAEFIK_STATIC.to_string()),
            Proxy::Nginx | Proxy::Caddy => Err(ParamError {
                flag: "--static",
                problem: "only Traefik has a separate static file (traefik.yml)".into(),
            }),
        };
    }
    let host = host_name(
        "--host",
        required("--host", p.host.as_deref(), HOST_EXAMPLE)?,
    )?;
    let upstream = upstream(
        "--upstream",
        required("--upstream", p.upstream.as_deref(), UPSTREAM_EXAMPLE)?,
    )?;
    let raw_certgate = p.certgate.as_deref().unwrap_or(DEFAULT_CERTGATE);
    let certgate = raw_certgate.parse::<SocketAddr>().map_err(|_| ParamError {
        flag: "--certgate",
        problem: format!("`{raw_certgate}` is not an IP address and port (e.g. 127.0.0.1:9180)"),
    })?;
    let client_ca = match &p.client_ca {
        Some(path) => bundle_path(path)?,
        None => DEFAULT_CLIENT_CA.to_string(),
    };
    let template = match (proxy, &p.auth_host) {
        (Proxy::Nginx, None) => NGINX_SINGLE,
        (Proxy::Nginx, Some(_)) => NGINX_SSO,
        (Proxy::Caddy, None) => CADDY_SINGLE,
        (Proxy::Caddy, Some(_)) => CADDY_SSO,
        (Proxy::Traefik, None) => TRAEFIK_SINGLE,
        (Proxy::Traefik, Some(_)) => TRAEFIK_SSO,
    };
    let mut text = match p.app {
        Some(app) => with_notes(template, app.notes()),
        None => template.to_string(),
    };
    if p.ha_sign_in {
        text = with_ha_sign_in(proxy, p.auth_host.is_some(), &text)?;
    }
    text = text.replace("127.0.0.1:9180", &certgate.to_string());
    text = text.replace(DEFAULT_CLIENT_CA, &client_ca);
    // The app: nginx and Traefik take a URL; Caddy an address (plain http) or a URL.
    let url = upstream.as_str().trim_end_matches('/').to_string();
    text = match proxy {
        Proxy::Caddy => {
            let address = match (
                upstream.scheme(),
                upstream.host_str(),
                upstream.port_or_known_default(),
            ) {
                ("http", Some(h), Some(port)) => format!("{h}:{port}"),
                _ => url,
            };
            text.replace("127.0.0.1:8123", &address)
        }
        Proxy::Nginx | Proxy::Traefik => text.replace("http://127.0.0.1:8123", &url),
    };
    if let Some(auth) = &p.auth_host {
        let auth = host_name("--auth-host", auth)?;
        let parent = common_parent(&auth, &host).ok_or_else(|| ParamError {
            flag: "--auth-host",
            problem: format!(
                "`{auth}` and `{host}` share no parent domain, so one cookie cannot reach both"
            ),
        })?;
        text = text
            .replace("auth.example.com", &auth)
            .replace("app.example.com", &host);
        text = text.replace("example.com", &parent);
    } else {
        text = text.replace("app.example.com", &host);
    }
    Ok(text)
}

/// `template` with `notes` as comment lines at the end of its leading comment block.
fn with_notes(template: &str, notes: &str) -> String {
    let header_end = template
        .split_inclusive('\n')
        .take_while(|l| l.starts_with('#'))
        .map(str::len)
        .sum::<usize>();
    let (header, rest) = template.split_at(header_end);
    let commented: String = notes
        .lines()
        .map(|l| {
            if l.is_empty() {
                "#\n".to_string()
            } else {
                format!("# {l}\n")
            }
        })
        .collect();
    format!("{header}#\n{commented}{rest}")
}

const SIGN_IN_FLAG: &str = "--sign-in-with-certgate";

/// Why the sign-in rule is there, in each proxy's comment lines (`#`).
const HA_SIGN_IN_WHY: &str = "\
# Home Assistant's login page goes straight to \"Sign in with certificate\": a request for it
# (/auth/authorize) without certgate=1 is sent to the certgate integration's
# /auth/certgate/start with the same query; after certgate's sign-in the integration sends
# the browser back with certgate=1, and the login page finishes by itself. Only for a Home
# Assistant with the certgate integration installed (integrations/home-assistant/): without
# it, print this file without --sign-in-with-certgate. The redirect comes before certgate's
# check on purpose: it only points the browser at another path on this host, which certgate
# checks like every other.
";

/// `text` (a template, example names) with the rule that sends Home Assistant's login page to
/// the certgate integration's sign-in.
fn with_ha_sign_in(proxy: Proxy, sso: bool, text: &str) -> Result<String, ParamError> {
    let why = HA_SIGN_IN_WHY;
    let text = match proxy {
        Proxy::Nginx => {
            // The map in the http context, the `if` in the app's server block: nginx runs a
            // server-level `return` before any location, so before auth_request.
            let map = "\n# Home Assistant's login page to the certgate integration's sign-in (see the\n\
                 # `if` in app.example.com's server block).\n\
                 map $arg_certgate $certgate_ha_not_back {\n    1       0;\n    default 1;\n}\n\
                 map $uri $certgate_ha_sign_in {\n    /auth/authorize $certgate_ha_not_back;\n    default         0;\n}\n";
            let text = insert_after(
                text,
                "map $http_upgrade $connection_upgrade {\n    default upgrade;\n    ''      close;\n}\n",
                map,
            )?;
            let rule = format!(
                "\n{}    if ($certgate_ha_sign_in) {{\n        return 302 /auth/certgate/start?$args;\n    }}\n\n",
                indent(why, "    ")
            );
            insert_after(&text, "    server_name app.example.com;\n", &rule)?
        }
        Proxy::Caddy => {
            // `redir` runs before `handle` (Caddy's directive order), so before forward_auth.
            let rule = format!(
                "\n{}\t@certgate_ha_sign_in {{\n\t\tpath /auth/authorize\n\t\tnot query certgate=1\n\t}}\n\
                 \tredir @certgate_ha_sign_in /auth/certgate/start?{{query}} 302\n",
                indent(why, "\t")
            );
            let site = text.find("\napp.example.com {\n").ok_or_else(no_anchor)?;
            let (head, tail) = text.split_at(site);
            format!(
                "{head}{}",
                insert_after(tail, "\timport certgate_strip_client_headers\n", &rule)?
            )
        }
        Proxy::Traefik => {
            let tls = if sso {
                "certgate-ask-for-cert"
            } else {
                "certgate-verify-if-given"
            };
            // The app's own middlewares after the redirect: a request the redirect did not
            // change is checked exactly as on the `app` router.
            let router = format!(
                "\n{}    app-certgate-sign-in:\n\
                 \x20     rule: Host(`app.example.com`) && Path(`/auth/authorize`) && !Query(`certgate`, `1`)\n\
                 \x20     priority: 10000   # above the app's router (its default priority is its rule's length)\n\
                 \x20     entryPoints: [websecure]\n\
                 \x20     service: app\n\
                 \x20     middlewares: [certgate-ha-sign-in, certgate-strip-client-headers, certgate-pass-cert, certgate-check, certgate-strip-token]\n\
                 \x20     tls:\n\
                 \x20       options: {tls}\n",
                indent(why, "    ")
            );
            let text = insert_before(text, "\n  middlewares:\n", &router)?;
            let middleware = "    # Home Assistant's login page to the certgate integration's sign-in, same query\n\
                 \x20   # (the router above matches only /auth/authorize without certgate=1).\n\
                 \x20   certgate-ha-sign-in:\n\
                 \x20     redirectRegex:\n\
                 \x20       regex: '^([^:]+://[^/]+)[^?]*(.*)$'\n\
                 \x20       replacement: '${1}/auth/certgate/start${2}'\n\
                 \x20       permanent: false\n";
            insert_after(&text, "\n  middlewares:\n", middleware)?
        }
    };
    Ok(text)
}

/// Each line of `lines` with `prefix` before it.
fn indent(lines: &str, prefix: &str) -> String {
    lines.lines().map(|l| format!("{prefix}{l}\n")).collect()
}

fn insert_after(text: &str, anchor: &str, insert: &str) -> Result<String, ParamError> {
    let at = text.find(anchor).ok_or_else(no_anchor)? + anchor.len();
    Ok(format!("{}{insert}{}", &text[..at], &text[at..]))
}

fn insert_before(text: &str, anchor: &str, insert: &str) -> Result<String, ParamError> {
    let at = text.find(anchor).ok_or_else(no_anchor)?;
    Ok(format!("{}{insert}{}", &text[..at], &text[at..]))
}

/// A shipped file without the place the rule goes: a bug in this build, never the operator's.
fn no_anchor() -> ParamError {
    ParamError {
        flag: SIGN_IN_FLAG,
        problem: "this build's proxy file has no place for the rule (a bug: please report it)"
            .into(),
    }
}

const DEFAULT_CERTGATE: &str = "127.0.0.1:9180";
const DEFAULT_CLIENT_CA: &str = "/etc/certgate/client-ca.pem";

/// The CA bundle's path as all three proxies' files take it unquoted.
fn bundle_path(raw: &str) -> Result<String, ParamError> {
    let ok = !raw.is_empty()
        && raw.starts_with('/')
        && !raw
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control() || "\"'`;{}[],#$\\".contains(ch));
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ParamError {
            flag: "--client-ca",
            problem: format!(
                "`{raw}` is not an absolute path the proxy configurations can take as written (no spaces, quotes, `;`, `#`, `$`, braces, brackets or commas)"
            ),
        })
    }
}

const HOST_EXAMPLE: &str = "the app's host name, e.g. --host grafana.example.com";
const UPSTREAM_EXAMPLE: &str =
    "the app's base URL as the proxy reaches it, e.g. --upstream http://127.0.0.1:3000";

/// The value of a flag every printed configuration but Traefik's static file needs.
fn required<'a>(
    flag: &'static str,
    value: Option<&'a str>,
    what: &str,
) -> Result<&'a str, ParamError> {
    value.ok_or_else(|| ParamError {
        flag,
        problem: format!("missing: {what}"),
    })
}

fn host_name(flag: &'static str, raw: &str) -> Result<String, ParamError> {
    let host = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = host.contains('.')
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if ok {
        Ok(host)
    } else {
        Err(ParamError {
            flag,
            problem: format!(
                "`{raw}` is not a host name (e.g. grafana.example.com; no scheme, port or path)"
            ),
        })
    }
}

fn upstream(flag: &'static str, raw: &str) -> Result<Url, ParamError> {
    match Url::parse(raw) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/" =>
        {
            Ok(u)
        }
        _ => Err(ParamError {
            flag,
            problem: format!("`{raw}` is not the app's base URL (e.g. http://127.0.0.1:3000)"),
        }),
    }
}

/// The longest shared parent domain of two host names with at least two labels.
fn common_parent(a: &str, b: &str) -> Option<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.rsplit('.').collect(), b.rsplit('.').collect());
    let shared: Vec<&str> = a
        .iter()
        .zip(&b)
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| *x)
        .collect();
    // Both hosts sit below the parent, never on it, and a bare TLD is no cookie domain.
    let n = shared.len().min(a.len() - 1).min(b.len() - 1);
    (n >= 2).then(|| {
        shared[..n]
            .iter()
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join(".")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(host: &str, auth: Option<&str>) -> Params {
        Params {
            host: Some(host.into()),
            upstream: Some("http://127.0.0.1:8123".into()),
            auth_host: auth.map(String::from),
            certgate: Some("127.0.0.1:9180".into()),
            client_ca: None,
            traefik_static: false,
            app: None,
            ha_sign_in: false,
        }
    }

    #[test]
    fn the_example_values_print_the_shipped_files_unchanged() {
        for (proxy, auth, shipped) in [
            (Proxy::Nginx, None, NGINX_SINGLE),
            (Proxy::Nginx, Some("auth.example.com"), NGINX_SSO),
            (Proxy::Caddy, None, CADDY_SINGLE),
            (Proxy::Caddy, Some("auth.example.com"), CADDY_SSO),
            (Proxy::Traefik, None, TRAEFIK_SINGLE),
            (Proxy::Traefik, Some("auth.example.com"), TRAEFIK_SSO),
        ] {
            assert_eq!(
                render(proxy, &params("app.example.com", auth)).unwrap(),
                shipped,
                "{proxy:?} {auth:?}"
            );
        }
    }

    #[test]
    fn operator_values_replace_every_example_value() {
        let mut p = params("ha.home.example.org", Some("login.home.example.org"));
        p.upstream = Some("http://192.0.2.10:8123".into());
        for proxy in [Proxy::Nginx, Proxy::Caddy, Proxy::Traefik] {
            let text = render(proxy, &p).unwrap();
            assert!(
                !text.contains("example.com"),
                "{proxy:?} still names example.com"
            );
            assert!(
                text.contains("ha.home.example.org") && text.contains("login.home.example.org"),
                "{proxy:?}"
            );
            assert!(text.contains("192.0.2.10:8123"), "{proxy:?}");
        }
        let nginx = render(Proxy::Nginx, &p).unwrap();
        assert!(nginx.contains("cookie_domain = \"home.example.org\""));
        assert!(nginx.contains("\"*.home.example.org\""));
    }

    #[test]
    fn bad_values_name_their_flag() {
        assert_eq!(
            render(Proxy::Nginx, &params("https://x.example.com", None))
                .unwrap_err()
                .flag,
            "--host"
        );
        let mut p = params("app.example.com", Some("auth.other.net"));
        assert_eq!(render(Proxy::Caddy, &p).unwrap_err().flag, "--auth-host");
        p.auth_host = None;
        p.upstream = Some("127.0.0.1:3000".into());
        assert_eq!(render(Proxy::Traefik, &p).unwrap_err().flag, "--upstream");
    }

    #[test]
    fn traefiks_static_file_needs_no_host_or_upstream_and_the_routes_do() {
        let bare = Params {
            host: None,
            upstream: None,
            auth_host: None,
            certgate: None,
            client_ca: None,
            traefik_static: true,
            app: None,
            ha_sign_in: false,
        };
        assert_eq!(render(Proxy::Traefik, &bare).unwrap(), TRAEFIK_STATIC);
        assert_eq!(render(Proxy::Nginx, &bare).unwrap_err().flag, "--static");

        let routes = Params {
            traefik_static: false,
            ..bare.clone()
        };
        for proxy in [Proxy::Nginx, Proxy::Caddy, Proxy::Traefik] {
            let e = render(proxy, &routes).unwrap_err();
            assert_eq!(e.flag, "--host", "{proxy:?}");
            assert!(e.to_string().starts_with("--host: missing"), "{e}");
        }
        let e = render(
            Proxy::Caddy,
            &Params {
                host: Some("app.example.com".into()),
                ..routes
            },
        )
        .unwrap_err();
        assert_eq!(e.flag, "--upstream");
        assert!(e.to_string().contains("--upstream http://"), "{e}");
    }

    #[test]
    fn app_presets_add_their_notes_to_the_header_and_nothing_else() {
        let mut p = params("ha.home.example.org", Some("login.home.example.org"));
        for (app, says) in [
            (App::HomeAssistant, "path = \"/api/webhook/*\""),
            (App::Grafana, "header_name = Remote-User"),
            (App::Generic, "X-Certgate-Authorization"),
        ] {
            for proxy in [Proxy::Nginx, Proxy::Caddy, Proxy::Traefik] {
                p.app = None;
                let plain = render(proxy, &p).unwrap();
                p.app = Some(app);
                let text = render(proxy, &p).unwrap();
                assert!(text.contains(says), "{app:?} {proxy:?}");
                assert!(!text.contains("example.com"), "{app:?} {proxy:?}");
                // Only comment lines were added, inside the leading comment block.
                let added: Vec<&str> = text
                    .lines()
                    .filter(|l| !plain.lines().any(|p| p == *l))
                    .collect();
                assert!(added.iter().all(|l| l.starts_with('#')), "{added:?}");
                let header = |t: &str| t.lines().take_while(|l| l.starts_with('#')).count();
                assert_eq!(
                    header(&text) - header(&plain),
                    text.lines().count() - plain.lines().count(),
                    "{app:?} {proxy:?}"
                );
            }
        }
    }

    #[test]
    fn sign_in_with_certgate_is_only_for_home_assistant() {
        for app in [None, Some(App::Grafana), Some(App::Generic)] {
            for proxy in [Proxy::Nginx, Proxy::Caddy, Proxy::Traefik] {
                for auth in [None, Some("auth.example.com")] {
                    let mut p = params("app.example.com", auth);
                    p.app = app;
                    p.ha_sign_in = true;
                    let e = render(proxy, &p).unwrap_err();
                    assert_eq!(e.flag, "--sign-in-with-certgate", "{app:?} {proxy:?}");
                    assert!(e.problem.contains("--app home-assistant"), "{e}");
                }
            }
        }
        // Traefik's static file holds no routes.
        let mut p = params("app.example.com", None);
        p.app = Some(App::HomeAssistant);
        p.ha_sign_in = true;
        p.traefik_static = true;
        let e = render(Proxy::Traefik, &p).unwrap_err();
        assert_eq!(e.flag, "--sign-in-with-certgate");
        assert!(e.problem.contains("dynamic.yml"), "{e}");
    }

    /// What `--sign-in-with-certgate` adds: the lines of `with` that `without` lacks, in order.
    fn added(without: &str, with: &str) -> Vec<String> {
        let mut plain = without.lines().peekable();
        let mut added = Vec::new();
        for line in with.lines() {
            if plain.peek() == Some(&line) {
                plain.next();
            } else {
                added.push(line.to_string());
            }
        }
        assert_eq!(plain.next(), None, "a line of the plain file went missing");
        added
    }

    #[test]
    fn sign_in_with_certgate_adds_the_rule_to_each_proxy_and_layout_and_nothing_else() {
        for auth in [None, Some("login.home.example.org")] {
            let mut p = params("ha.home.example.org", auth);
            p.app = Some(App::HomeAssistant);
            for proxy in [Proxy::Nginx, Proxy::Caddy, Proxy::Traefik] {
                let plain = render(proxy, &p).unwrap();
                let text = render(
                    proxy,
                    &Params {
                        ha_sign_in: true,
                        ..p.clone()
                    },
                )
                .unwrap();
                assert!(!text.contains("example.com"), "{proxy:?} {auth:?}");
                let added = added(&plain, &text);
                let code: Vec<&str> = added
                    .iter()
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .collect();
                let comments = added.join("\n");
                for why in [
                    "\"Sign in with certificate\"",
                    "certgate integration installed",
                    "without --sign-in-with-certgate",
                ] {
                    assert!(comments.contains(why), "{proxy:?} {auth:?}: {why}");
                }
                let expected: Vec<String> = match proxy {
                    Proxy::Nginx => [
                        "map $arg_certgate $certgate_ha_not_back {",
                        "1       0;",
                        "default 1;",
                        "}",
                        "map $uri $certgate_ha_sign_in {",
                        "/auth/authorize $certgate_ha_not_back;",
                        "default         0;",
                        "}",
                        "if ($certgate_ha_sign_in) {",
                        "return 302 /auth/certgate/start?$args;",
                        "}",
                    ]
                    .map(String::from)
                    .to_vec(),
                    Proxy::Caddy => [
                        "@certgate_ha_sign_in {",
                        "path /auth/authorize",
                        "not query certgate=1",
                        "}",
                        "redir @certgate_ha_sign_in /auth/certgate/start?{query} 302",
                    ]
                    .map(String::from)
                    .to_vec(),
                    Proxy::Traefik => {
                        let tls = if auth.is_some() {
                            "certgate-ask-for-cert"
                        } else {
                            "certgate-verify-if-given"
                        };
                        vec![
                            "app-certgate-sign-in:".into(),
                            "rule: Host(`ha.home.example.org`) && Path(`/auth/authorize`) && !Query(`certgate`, `1`)".into(),
                            "priority: 10000   # above the app's router (its default priority is its rule's length)".into(),
                            "entryPoints: [websecure]".into(),
                            "service: app".into(),
                            "middlewares: [certgate-ha-sign-in, certgate-strip-client-headers, certgate-pass-cert, certgate-check, certgate-strip-token]".into(),
                            "tls:".into(),
                            format!("options: {tls}"),
                            "certgate-ha-sign-in:".into(),
                            "redirectRegex:".into(),
                            "regex: '^([^:]+://[^/]+)[^?]*(.*)$'".into(),
                            "replacement: '${1}/auth/certgate/start${2}'".into(),
                            "permanent: false".into(),
                        ]
                    }
                };
                assert_eq!(code, expected, "{proxy:?} {auth:?}");
            }
        }
    }

    #[test]
    fn the_sign_in_rule_sits_where_it_runs_before_certgates_check() {
        for auth in [None, Some("auth.example.com")] {
            let mut p = params("app.example.com", auth);
            p.app = Some(App::HomeAssistant);
            p.ha_sign_in = true;
            // nginx: the map in the http context, the `if` in the app's server block, before
            // any location (a server-level `return` runs before auth_request).
            let nginx = render(Proxy::Nginx, &p).unwrap();
            let server = nginx.find("    server_name app.example.com;\n").unwrap();
            let rule = nginx.find("    if ($certgate_ha_sign_in) {").unwrap();
            let map = nginx.find("\nmap $uri $certgate_ha_sign_in {").unwrap();
            assert!(map < nginx.find("\nserver {").unwrap(), "{auth:?}");
            assert!(server < rule, "{auth:?}");
            assert!(!nginx[server..rule].contains("location"), "{auth:?}");
            // Caddy: in the app's site block, outside every handle (redir runs before them).
            let caddy = render(Proxy::Caddy, &p).unwrap();
            let site = caddy.find("\napp.example.com {\n").unwrap();
            let redir = caddy.find("\tredir @certgate_ha_sign_in").unwrap();
            assert!(site < redir, "{auth:?}");
            assert!(!caddy[site..redir].contains("handle"), "{auth:?}");
            // Traefik: under routers, its middleware under middlewares.
            let traefik = render(Proxy::Traefik, &p).unwrap();
            let routers = traefik.find("\n  routers:\n").unwrap();
            let middlewares = traefik.find("\n  middlewares:\n").unwrap();
            let router = traefik.find("\n    app-certgate-sign-in:\n").unwrap();
            let middleware = traefik.find("\n    certgate-ha-sign-in:\n").unwrap();
            assert!(routers < router && router < middlewares, "{auth:?}");
            assert!(middlewares < middleware, "{auth:?}");
            assert!(middleware < traefik.find("\n  services:\n").unwrap());
        }
    }

    #[test]
    fn without_sign_in_with_certgate_nothing_changes() {
        for auth in [None, Some("auth.example.com")] {
            for proxy in [Proxy::Nginx, Proxy::Caddy, Proxy::Traefik] {
                let mut p = params("app.example.com", auth);
                p.app = Some(App::HomeAssistant);
                let text = render(proxy, &p).unwrap();
                assert!(!text.contains("certgate_ha_sign_in"), "{proxy:?}");
                assert!(!text.contains("certgate-ha-sign-in"), "{proxy:?}");
                assert!(!text.contains("/auth/certgate/start"), "{proxy:?}");
                let template = match (proxy, auth) {
                    (Proxy::Nginx, None) => NGINX_SINGLE,
                    (Proxy::Nginx, Some(_)) => NGINX_SSO,
                    (Proxy::Caddy, None) => CADDY_SINGLE,
                    (Proxy::Caddy, Some(_)) => CADDY_SSO,
                    (Proxy::Traefik, None) => TRAEFIK_SINGLE,
                    (Proxy::Traefik, Some(_)) => TRAEFIK_SSO,
                };
                assert_eq!(text, with_notes(template, App::HomeAssistant.notes()));
            }
        }
    }

    /// The preset's `[[rules]]`, uncommented, as a certgate config takes them.
    fn preset_rules(text: &str) -> String {
        text.lines()
            .filter_map(|l| l.strip_prefix("#   "))
            .skip_while(|l| !l.starts_with("# /"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn the_home_assistant_rules_are_certgate_rules() {
        let mut p = params("ha.example.com", None);
        p.app = Some(App::HomeAssistant);
        let rules = preset_rules(&render(Proxy::Nginx, &p).unwrap());
        let parsed: toml::Value = toml::from_str(&rules).unwrap();
        let rules = parsed["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert_eq!(rules[0]["path"].as_str(), Some("/manifest.json"));
        assert_eq!(rules[1]["path"].as_str(), Some("/api/webhook/*"));
        assert!(rules
            .iter()
            .all(|r| r["host"].as_str() == Some("ha.example.com")
                && r["action"].as_str() == Some("bypass")));
    }

    fn from_config(public_url: &str, listen: &str, header: CertHeaderFormat) -> FromConfig {
        FromConfig {
            client_ca: PathBuf::from("/srv/certgate/ca.pem"),
            listen_http: listen.parse().unwrap(),
            public_url: Url::parse(public_url).unwrap(),
            cert_header: header,
        }
    }

    fn unfilled(host: Option<&str>) -> Params {
        Params {
            host: host.map(String::from),
            upstream: Some("http://127.0.0.1:8123".into()),
            auth_host: None,
            certgate: None,
            client_ca: None,
            traefik_static: false,
            app: None,
            ha_sign_in: false,
        }
    }

    #[test]
    fn a_sign_in_host_config_fills_the_bundle_the_listener_and_the_sign_in_host() {
        for (proxy, header) in [
            (Proxy::Nginx, CertHeaderFormat::Nginx),
            (Proxy::Traefik, CertHeaderFormat::Traefik),
            (Proxy::Caddy, CertHeaderFormat::Caddy),
        ] {
            let mut p = unfilled(Some("ha.home.example.org"));
            let c = from_config("https://login.home.example.org", "0.0.0.0:9280", header);
            p.fill_from(proxy, &c).unwrap();
            assert_eq!(p.auth_host.as_deref(), Some("login.home.example.org"));
            assert_eq!(
                p.certgate.as_deref(),
                Some("127.0.0.1:9280"),
                "wildcard: loopback"
            );
            assert_eq!(p.client_ca.as_deref(), Some("/srv/certgate/ca.pem"));
            let text = render(proxy, &p).unwrap();
            assert!(text.contains("/srv/certgate/ca.pem"), "{proxy:?}");
            assert!(!text.contains("/etc/certgate/client-ca.pem"), "{proxy:?}");
            assert!(text.contains("127.0.0.1:9280"), "{proxy:?}");
            assert!(!text.contains("127.0.0.1:9180"), "{proxy:?}");
            assert!(text.contains("login.home.example.org"), "{proxy:?}");
            assert!(!text.contains("example.com"), "{proxy:?}");
        }
        let text = {
            let mut p = unfilled(Some("ha.home.example.org"));
            let c = from_config(
                "https://login.home.example.org",
                "[::]:9280",
                CertHeaderFormat::Nginx,
            );
            p.fill_from(Proxy::Nginx, &c).unwrap();
            render(Proxy::Nginx, &p).unwrap()
        };
        assert!(text.contains("server [::1]:9280;"), "{text}");
        assert!(text.contains("ssl_client_certificate /srv/certgate/ca.pem;"));
        assert!(text.contains("server_name login.home.example.org;"));
    }

    #[test]
    fn a_single_host_config_picks_that_layout_and_may_name_the_host() {
        for host in [None, Some("ha.example.org")] {
            let mut p = unfilled(host);
            let c = from_config(
                "https://ha.example.org/.certgate",
                "127.0.0.1:9180",
                CertHeaderFormat::Nginx,
            );
            p.fill_from(Proxy::Nginx, &c).unwrap();
            assert_eq!(p.auth_host, None);
            assert_eq!(p.host.as_deref(), Some("ha.example.org"));
            let text = render(Proxy::Nginx, &p).unwrap();
            assert!(text.contains("location /.certgate/ {"), "{text}");
            assert!(text.contains("server_name ha.example.org;"));
            assert!(text.contains("ssl_client_certificate /srv/certgate/ca.pem;"));
        }
        let mut p = unfilled(Some("grafana.example.org"));
        let c = from_config(
            "https://ha.example.org/.certgate",
            "127.0.0.1:9180",
            CertHeaderFormat::Nginx,
        );
        let e = p.fill_from(Proxy::Nginx, &c).unwrap_err();
        assert_eq!(e.flag, "--host");
        assert!(e.problem.contains("ha.example.org") && e.problem.contains("grafana.example.org"));
    }

    #[test]
    fn flags_given_win_over_the_config() {
        let mut p = unfilled(Some("app.example.org"));
        p.certgate = Some("10.0.0.5:9180".into());
        p.client_ca = Some("/etc/nginx/family-ca.pem".into());
        p.auth_host = Some("sso.example.org".into());
        let c = from_config(
            "https://auth.example.org",
            "127.0.0.1:9280",
            CertHeaderFormat::Nginx,
        );
        p.fill_from(Proxy::Nginx, &c).unwrap();
        assert_eq!(p.certgate.as_deref(), Some("10.0.0.5:9180"));
        assert_eq!(p.client_ca.as_deref(), Some("/etc/nginx/family-ca.pem"));
        assert_eq!(p.auth_host.as_deref(), Some("sso.example.org"));
        let text = render(Proxy::Nginx, &p).unwrap();
        assert!(
            text.contains("server 10.0.0.5:9180;") && text.contains("/etc/nginx/family-ca.pem")
        );
    }

    #[test]
    fn configs_no_printed_layout_fits_are_refused_with_why() {
        let fill = |host: Option<&str>, url: &str, proxy: Proxy, header| {
            unfilled(host)
                .fill_from(proxy, &from_config(url, "127.0.0.1:9180", header))
                .unwrap_err()
        };
        let e = fill(
            Some("app.example.org"),
            "https://auth.example.org",
            Proxy::Caddy,
            CertHeaderFormat::Nginx,
        );
        assert_eq!(e.flag, "--config");
        assert!(
            e.problem.contains("cert_header is `nginx`")
                && e.problem.contains("cert_header = \"caddy\""),
            "{e}"
        );
        let e = fill(
            Some("app.example.org"),
            "https://app.example.org",
            Proxy::Nginx,
            CertHeaderFormat::Nginx,
        );
        assert_eq!(e.flag, "--config");
        assert!(
            e.problem.contains("https://app.example.org/.certgate"),
            "{e}"
        );
        let e = fill(
            Some("app.example.org"),
            "https://auth.example.org/sso",
            Proxy::Nginx,
            CertHeaderFormat::Nginx,
        );
        assert!(e.problem.contains("`/sso`"), "{e}");
        // Traefik's static file names none of these.
        let mut p = unfilled(None);
        p.traefik_static = true;
        p.fill_from(
            Proxy::Traefik,
            &from_config(
                "https://auth.example.org",
                "127.0.0.1:9180",
                CertHeaderFormat::Nginx,
            ),
        )
        .unwrap();
        assert_eq!(render(Proxy::Traefik, &p).unwrap(), TRAEFIK_STATIC);
    }

    #[test]
    fn a_bundle_path_the_files_cannot_take_as_written_is_refused() {
        for bad in [
            "relative/ca.pem",
            "/srv/my ca.pem",
            "/srv/ca;.pem",
            "/srv/\"ca\".pem",
            "/srv/a,b.pem",
        ] {
            let mut p = unfilled(Some("app.example.org"));
            p.client_ca = Some(bad.into());
            assert_eq!(
                render(Proxy::Nginx, &p).unwrap_err().flag,
                "--client-ca",
                "{bad}"
            );
        }
    }

    #[test]
    fn common_parent_needs_a_real_shared_domain() {
        assert_eq!(
            common_parent("auth.example.com", "app.example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            common_parent("a.b.home.lan", "c.b.home.lan").as_deref(),
            Some("b.home.lan")
        );
        assert_eq!(common_parent("auth.example.com", "example.com"), None);
        assert_eq!(common_parent("a.com", "b.com"), None);
    }
}
