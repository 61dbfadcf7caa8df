//! Behind real nginx (Debian package), with the shipped `config/proxies/nginx.conf` rendered
//! for loopback: only ports and file paths are substituted.

use std::net::TcpStream;
use std::sync::Arc;

use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

use crate::direct::cookie_value;
use crate::harness::certgate::Certgate;
use crate::harness::curl::Curl;
use crate::harness::nginx::Nginx;
use crate::harness::pki::{CertFiles, Pki};
use crate::harness::upstream::Upstream;
use crate::harness::{free_port, require};

struct Stack {
    dir: tempfile::TempDir,
    pki: Pki,
    alice: CertFiles,
    port: u16,
    _upstream: Upstream,
    _certgate: Certgate,
    _nginx: Nginx,
}

const SHIPPED: &str = include_str!("../../config/proxies/nginx.conf");
const HTML: &str = "Accept: text/html,application/xhtml+xml";

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

fn stack() -> Option<Stack> {
    if !require("nginx") || !require("curl") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Family CA");
    let alice = pki.user("alice");
    let auth_tls = pki.server(&["auth.example.com"]);
    let app_tls = pki.server(&["app.example.com"]);
    let port = free_port();
    let upstream = Upstream::start();
    let certgate = Certgate::start(
        dir.path(),
        &format!(
            r#"
public_url = "https://auth.example.com:{port}"
data_dir = "data"
[client_ca]
bundle = "{ca}"
[proxy]
trusted = ["127.0.0.1/32"]
cert_header = "nginx"
[session]
cookie_domain = "example.com"
allowed_redirect_hosts = ["*.example.com"]
[[users]]
name = "alice"
groups = ["family"]
"#,
            ca = pki.ca_pem.display()
        ),
        false,
    );
    let conf = render(
        SHIPPED,
        &[
            ("listen 443 ssl", format!("listen 127.0.0.1:{port} ssl")),
            (
                "127.0.0.1:9180",
                format!("127.0.0.1:{}", certgate.http_port),
            ),
            ("127.0.0.1:8123", format!("127.0.0.1:{}", upstream.port)),
            (
                "/etc/nginx/tls/auth.example.com.pem",
                auth_tls.cert.display().to_string(),
            ),
            (
                "/etc/nginx/tls/auth.example.com.key",
                auth_tls.key.display().to_string(),
            ),
            (
                "/etc/nginx/tls/app.example.com.pem",
                app_tls.cert.display().to_string(),
            ),
            (
                "/etc/nginx/tls/app.example.com.key",
                app_tls.key.display().to_string(),
            ),
            (
                "/etc/certgate/client-ca.pem",
                pki.ca_pem.display().to_string(),
            ),
        ],
    );
    let nginx = Nginx::start(dir.path(), port, &conf);
    Some(Stack {
        dir,
        pki,
        alice,
        port,
        _upstream: upstream,
        _certgate: certgate,
        _nginx: nginx,
    })
}

impl Stack {
    fn curl(&self) -> Curl {
        Curl::new(self.dir.path())
            .cacert(&self.pki.ca_pem)
            .resolve("app.example.com", self.port)
            .resolve("auth.example.com", self.port)
    }

    fn app(&self, path: &str) -> String {
        format!("https://app.example.com:{}{path}", self.port)
    }

    fn auth(&self, path: &str) -> String {
        format!("https://auth.example.com:{}{path}", self.port)
    }

    fn bearer(&self) -> String {
        let r = self
            .curl()
            .cert(&self.alice.cert, &self.alice.key)
            .post(&self.auth("/token"), "");
        assert_eq!(r.status, 200, "{r:?}");
        serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn session_cookie(&self) -> String {
        let r = self
            .curl()
            .cert(&self.alice.cert, &self.alice.key)
            .header(HTML)
            .get(&self.auth("/auth"));
        assert_eq!(r.status, 200, "{r:?}");
        cookie_value(&r, "__Secure-certgate")
    }
}

#[test]
fn browser_flow_through_nginx_signs_in_once_and_reaches_the_app() {
    let Some(s) = stack() else { return };
    let jar = s.dir.path().join("jar.txt");
    let original = s.app("/dashboard?tab=energy");

    // 1. No cookie: nginx turns certgate's 401 + Location into a redirect to the sign-in host.
    //    What the client claims about the request is not believed: only nginx says it.
    let r1 = s
        .curl()
        .jar(&jar)
        .header(HTML)
        .header("X-Original-URL: https://evil.example/")
        .header("X-Forwarded-Method: POST")
        .header("X-Forwarded-Host: evil.example")
        .get(&original);
    assert_eq!(r1.status, 302, "{r1:?}");
    let login = r1.header("location").unwrap().to_string();
    let rd = percent_encoding::utf8_percent_encode(&original, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    assert_eq!(login, s.auth(&format!("/auth?rd={rd}")));

    // 2. The sign-in host asks for the certificate; certgate sets the SSO cookie and sends us back.
    let r2 = s
        .curl()
        .jar(&jar)
        .cert(&s.alice.cert, &s.alice.key)
        .header(HTML)
        .get(&login);
    assert_eq!(r2.status, 302, "{r2:?}");
    assert_eq!(r2.header("location"), Some(original.as_str()));
    let set = r2.header("set-cookie").unwrap();
    assert!(
        set.starts_with("__Secure-certgate=") && set.contains("Domain=example.com"),
        "{set}"
    );

    // 3. The cookie alone gets through; the app sees who it is.
    let r3 = s
        .curl()
        .jar(&jar)
        .header(HTML)
        .header("Remote-User: admin")
        .get(&original);
    assert_eq!(r3.status, 200, "{r3:?}");
    assert!(
        r3.body
            .contains("remote-user=[alice] remote-groups=[family]"),
        "{}",
        r3.body
    );

    // The same journey in one go, following redirects as a browser does.
    let jar2 = s.dir.path().join("jar2.txt");
    let all = s
        .curl()
        .jar(&jar2)
        .arg("-L")
        .cert(&s.alice.cert, &s.alice.key)
        .header(HTML)
        .get(&s.app("/x"));
    assert_eq!(all.status, 200, "{all:?}");
    assert!(
        all.body.contains("remote-user=[alice]") && all.body.contains("path=[/x]"),
        "{}",
        all.body
    );
}

#[test]
fn api_clients_get_401_and_bearer_tokens_work_through_nginx() {
    let Some(s) = stack() else { return };
    let api = s.curl().get(&s.app("/api/states"));
    assert_eq!(api.status, 401, "{api:?}");
    assert_eq!(
        api.header("www-authenticate"),
        Some("Bearer realm=\"certgate\"")
    );
    assert!(!api.body.contains("app saw"), "the app must not be reached");

    let token = s.bearer();
    let ok = s
        .curl()
        .header(&format!("Authorization: Bearer {token}"))
        .header("Remote-User: admin")
        .get(&s.app("/api/states"));
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.body.contains("remote-user=[alice]"), "{}", ok.body);

    // A client-sent Remote-User never gets through without credentials either.
    let forged = s
        .curl()
        .header("Remote-User: alice")
        .get(&s.app("/api/states"));
    assert_eq!(forged.status, 401);
}

#[test]
fn a_client_sent_cert_header_is_never_taken_as_a_certificate() {
    let Some(s) = stack() else { return };
    let pem = percent_encoding::utf8_percent_encode(
        &s.alice.issued.cert_pem,
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string();
    let header = format!("X-SSL-Client-Cert: {pem}");
    let app = s.curl().header(&header).get(&s.app("/"));
    assert_eq!(app.status, 401, "app host: {app:?}");
    let auth = s.curl().header(&header).header(HTML).get(&s.auth("/auth"));
    assert_eq!(auth.status, 401, "auth host: {auth:?}");
    assert!(auth.body.contains("No client certificate"));
}

#[test]
fn a_certificate_from_another_ca_gets_certgates_page_through_nginx() {
    let Some(s) = stack() else { return };
    let other = Pki::new(s.dir.path(), "Stranger CA");
    let mallory = other.user("alice");
    let r = s
        .curl()
        .cert(&mallory.cert, &mallory.key)
        .header(HTML)
        .get(&s.auth("/auth"));
    assert_eq!(r.status, 495, "{r:?}");
    assert!(
        r.body.contains("not issued by a CA this gateway trusts"),
        "{}",
        r.body
    );
}

#[test]
fn an_expired_certificate_gets_certgates_page_through_nginx() {
    let Some(s) = stack() else { return };
    let mut spec = certgate::ca::ClientSpec::new("alice", 0);
    spec.valid_from = -10 * 86_400;
    spec.valid_until = -86_400;
    let old = s.pki.client(&spec);
    let r = s
        .curl()
        .cert(&old.cert, &old.key)
        .header(HTML)
        .get(&s.auth("/auth"));
    assert_eq!(r.status, 495, "{r:?}");
    assert!(r.body.contains("certificate expired"), "{}", r.body);
    assert!(r.header("set-cookie").is_none());
}

fn websocket(s: &Stack, header: Option<(&'static str, String)>) -> Result<String, u16> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(s.pki.ca.cert_der.clone().into()).unwrap();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut request = format!("wss://app.example.com:{}/api/websocket", s.port)
        .into_client_request()
        .unwrap();
    if let Some((name, value)) = header {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let tcp = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let connector = tungstenite::Connector::Rustls(Arc::new(tls));
    match tungstenite::client_tls_with_config(request, tcp, None, Some(connector)) {
        Ok((mut ws, response)) => {
            assert_eq!(response.status().as_u16(), 101);
            ws.send(Message::text("hello")).unwrap();
            let reply = ws.read().unwrap().into_text().unwrap().to_string();
            let _ = ws.close(None);
            Ok(reply)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            Err(resp.status().as_u16())
        }
        Err(e) => panic!("websocket: {e}"),
    }
}

#[test]
fn websocket_handshakes_pass_with_cookie_or_bearer_and_never_without() {
    let Some(s) = stack() else { return };
    let cookie = s.session_cookie();
    assert_eq!(
        websocket(&s, Some(("cookie", format!("__Secure-certgate={cookie}")))),
        Ok("alice: hello".to_string())
    );
    assert_eq!(
        websocket(
            &s,
            Some(("authorization", format!("Bearer {}", s.bearer())))
        ),
        Ok("alice: hello".to_string())
    );
    assert_eq!(websocket(&s, None), Err(401));
    assert_eq!(
        websocket(&s, Some(("cookie", "__Secure-certgate=forged".to_string()))),
        Err(401)
    );
}
