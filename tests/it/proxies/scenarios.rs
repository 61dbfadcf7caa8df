//! What every proxy must get right, written once.

use std::net::TcpStream;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

use super::{Layout, Proxy, Stack};
use crate::direct::cookie_value;
use crate::harness::pki::{CertFiles, Pki};
use crate::harness::upstream::seen_headers;

const HTML: &str = "Accept: text/html,application/xhtml+xml";

fn bearer(s: &Stack) -> String {
    bearer_with(s, "")
}

/// alice's bearer token from `/token` with `form` (`scope=…`, `aud=…`).
fn bearer_with(s: &Stack, form: &str) -> String {
    let r = s
        .curl()
        .cert(&s.alice.cert, &s.alice.key)
        .post(&s.auth("/token"), form);
    assert_eq!(r.status, 200, "{form}: {r:?}");
    serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn session_cookie(s: &Stack) -> String {
    let r = s
        .curl()
        .cert(&s.alice.cert, &s.alice.key)
        .header(HTML)
        .get(&s.auth("/auth"));
    assert_eq!(r.status, 200, "{r:?}");
    cookie_value(&r, s.cookie)
}

pub fn browser_flow(s: &Stack) {
    let jar = s.dir.path().join("jar.txt");
    let original = s.app(0, "/dashboard?tab=energy");

    // 1. No cookie: the browser is sent to the sign-in host with the page it asked for.
    //    What the client claims about the request is not believed: only the proxy says it.
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
    let rd = utf8_percent_encode(&original, NON_ALPHANUMERIC).to_string();
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
    assert!(set.starts_with(&format!("{}=", s.cookie)), "{set}");
    assert_eq!(
        set.contains("Domain=example.com"),
        s.layout == Layout::Sso,
        "{set}"
    );

    // 3. The cookie alone gets through; the app sees who it is, not what the client claimed.
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

    if s.layout == Layout::Sso {
        // 4. Single sign-on: the second app takes the same cookie, no certificate needed.
        let r4 = s.curl().jar(&jar).header(HTML).get(&s.app(1, "/grafana"));
        assert_eq!(r4.status, 200, "{r4:?}");
        assert!(
            r4.body.contains("remote-user=[alice]") && r4.body.contains("path=[/grafana]"),
            "{}",
            r4.body
        );
    }

    // The whole journey in one go, following redirects as a browser with the certificate
    // installed does (in layout (a) the app host itself takes the certificate).
    let jar2 = s.dir.path().join("jar2.txt");
    let last = s.apps.len() - 1;
    let all = s
        .curl()
        .jar(&jar2)
        .arg("-L")
        .cert(&s.alice.cert, &s.alice.key)
        .header(HTML)
        .get(&s.app(last, "/x"));
    assert_eq!(all.status, 200, "{all:?}");
    assert!(
        all.body.contains("remote-user=[alice]") && all.body.contains("path=[/x]"),
        "{}",
        all.body
    );
}

pub fn api_and_bearer(s: &Stack) {
    let api = s.curl().get(&s.app(0, "/api/states"));
    assert_eq!(api.status, 401, "{api:?}");
    assert!(
        api.header("www-authenticate")
            .unwrap_or("")
            .starts_with("Bearer"),
        "{api:?}"
    );
    assert!(!api.body.contains("app saw"), "the app must not be reached");

    let token = bearer(s);
    let ok = s
        .curl()
        .header(&format!("Authorization: Bearer {token}"))
        .header("Remote-User: admin")
        .header("Remote_User: admin")
        .header("Remote_Groups: admins")
        .get(&s.app(s.apps.len() - 1, "/api/states"));
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.body.contains("remote-user=[alice]"), "{}", ok.body);
    // Some app servers read Remote_User as Remote-User: the underscore forms never pass either.
    assert!(ok.body.contains("underscored=[]"), "{}", ok.body);

    let forged = s
        .curl()
        .header("Remote-User: alice")
        .get(&s.app(0, "/api/states"));
    assert_eq!(forged.status, 401, "{forged:?}");
    assert!(!forged.body.contains("app saw"));
}

/// The certificate header in this proxy's own format, as a client might forge it.
fn forged_header(s: &Stack) -> String {
    match s.proxy {
        Proxy::Nginx => format!(
            "X-SSL-Client-Cert: {}",
            utf8_percent_encode(&s.alice.issued.cert_pem, NON_ALPHANUMERIC)
        ),
        Proxy::Traefik => format!(
            "X-Forwarded-Tls-Client-Cert: {}",
            STANDARD.encode(&s.alice.issued.cert_der)
        ),
        Proxy::Caddy => format!(
            "X-Client-Cert: {}",
            STANDARD.encode(&s.alice.issued.cert_der)
        ),
    }
}

pub fn forged_cert_header(s: &Stack) {
    let header = forged_header(s);
    let app = s.curl().header(&header).get(&s.app(0, "/"));
    assert_eq!(app.status, 401, "app host: {app:?}");
    let auth = s.curl().header(&header).header(HTML).get(&s.auth("/auth"));
    assert_eq!(auth.status, 401, "sign-in host: {auth:?}");
    assert!(auth.body.contains("No client certificate"), "{}", auth.body);
    let token = s.curl().header(&header).post(&s.auth("/token"), "");
    assert_eq!(token.status, 401, "token: {token:?}");
}

pub fn refused_certificates(s: &Stack) {
    let other = Pki::new(s.dir.path(), "Stranger CA");
    let stranger = other.user("alice");
    let r = s
        .curl()
        .cert(&stranger.cert, &stranger.key)
        .header(HTML)
        .get(&s.auth("/auth"));
    assert_eq!(r.status, 495, "{r:?}");
    assert!(
        r.body.contains("not issued by a CA this gateway trusts"),
        "{}",
        r.body
    );

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
    websocket_as(s, None, header)
}

/// A WebSocket handshake to the first app, presenting `cert` in the TLS handshake if given.
fn websocket_as(
    s: &Stack,
    cert: Option<&CertFiles>,
    header: Option<(&'static str, String)>,
) -> Result<String, u16> {
    let tls = s.pki.tls_client(cert);
    let mut request = format!("wss://{}:{}/api/websocket", s.apps[0], s.port)
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

pub fn websockets(s: &Stack) {
    let cookie = session_cookie(s);
    assert_eq!(
        websocket(s, Some(("cookie", format!("{}={cookie}", s.cookie)))),
        Ok("alice: hello".to_string())
    );
    assert_eq!(
        websocket(s, Some(("authorization", format!("Bearer {}", bearer(s))))),
        Ok("alice: hello".to_string())
    );
    assert_eq!(websocket(s, None), Err(401));
    assert_eq!(
        websocket(s, Some(("cookie", format!("{}=forged", s.cookie)))),
        Err(401)
    );
}

/// Layout (a): an app that presents its certificate on every request needs no cookie.
pub fn native_app(s: &Stack) {
    let r = s
        .curl()
        .cert(&s.alice.cert, &s.alice.key)
        .header("Remote-User: admin")
        .get(&s.app(0, "/api/states"));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body
            .contains("remote-user=[alice] remote-groups=[family]"),
        "{}",
        r.body
    );
    assert!(r.header("set-cookie").is_none(), "no cookie needed or set");
    // The same request without the certificate is refused.
    assert_eq!(s.curl().get(&s.app(0, "/api/states")).status, 401);
}

/// Rules through the proxy: a public path, a group-restricted one, and a scoped token.
pub fn access_rules(s: &Stack) {
    let public = s.curl().get(&s.app(0, "/manifest.json"));
    assert_eq!(
        public.status, 200,
        "bypass needs no credentials: {public:?}"
    );
    assert!(public.body.contains("remote-user=[]"), "{}", public.body);

    let alice = format!("Cookie: {}={}", s.cookie, session_cookie(s));
    let denied = s
        .curl()
        .header(HTML)
        .header(&alice)
        .get(&s.app(0, "/admin/users"));
    assert_eq!(denied.status, 403, "{denied:?}");
    assert!(
        denied.body.contains("Access denied") && denied.body.contains("rules[2]"),
        "{}",
        denied.body
    );
    assert!(!denied.body.contains("app saw"));
    // Neither a smuggled Host header nor a dot segment gets an admin page served to alice:
    // the proxy refuses, certgate refuses, or both see the same cleaned path and judge it.
    let smuggled = s
        .curl()
        .header(HTML)
        .header(&alice)
        .header("Host: app.example.com:1#")
        .try_get(&s.app(0, "/admin/users"));
    if let Ok(r) = smuggled {
        assert!(!r.body.contains("app saw"), "smuggled Host: {r:?}");
    }
    for sneaky in [
        "/admin/;/../dashboard",
        "/admin//../dashboard",
        "/admin/%2e%2e/dashboard",
        "/dashboard/../admin/users",
        "/x/..;/admin/users",
    ] {
        let r = s
            .curl()
            .arg("--path-as-is")
            .header(HTML)
            .header(&alice)
            .get(&s.app(0, sneaky));
        assert!(!r.body.contains("path=[/admin"), "{sneaky}: {r:?}");
        assert!(
            r.status != 200
                || !sneaky.starts_with("/admin/")
                || r.body.contains("path=[/dashboard]"),
            "{sneaky}: {r:?}"
        );
    }
    let elsewhere = s
        .curl()
        .header(HTML)
        .header(&alice)
        .get(&s.app(0, "/dashboard"));
    assert_eq!(elsewhere.status, 200, "{elsewhere:?}");

    let carol = s.pki.user("carol");
    let r = s
        .curl()
        .cert(&carol.cert, &carol.key)
        .header(HTML)
        .get(&s.auth("/auth"));
    assert_eq!(r.status, 200, "{r:?}");
    let carol_cookie = format!("Cookie: {}={}", s.cookie, cookie_value(&r, s.cookie));
    let admin = s
        .curl()
        .header(HTML)
        .header(&carol_cookie)
        .get(&s.app(0, "/admin/users"));
    assert_eq!(admin.status, 200, "{admin:?}");
    assert!(
        admin
            .body
            .contains("remote-user=[carol] remote-groups=[admins]"),
        "{}",
        admin.body
    );

    // A token scoped to the first app's API: good there, 403 insufficient_scope elsewhere.
    let token = bearer_with(
        s,
        &format!(
            "scope={}",
            utf8_percent_encode("GET:app.example.com/api/**", NON_ALPHANUMERIC)
        ),
    );
    let bearer = format!("Authorization: Bearer {token}");
    let inside = s.curl().header(&bearer).get(&s.app(0, "/api/states"));
    assert_eq!(inside.status, 200, "{inside:?}");
    assert!(inside.body.contains("remote-user=[alice]"));
    for (what, url, method) in [
        ("other path", s.app(0, "/dashboard"), "GET"),
        ("other method", s.app(0, "/api/states"), "DELETE"),
        ("other app", s.app(1, "/api/states"), "GET"),
    ] {
        let r = s.curl().header(&bearer).arg("-X").arg(method).get(&url);
        assert_eq!(r.status, 403, "{what}: {r:?}");
        assert!(
            r.header("www-authenticate")
                .unwrap_or("")
                .contains("insufficient_scope"),
            "{what}: {r:?}"
        );
        assert!(!r.body.contains("app saw"), "{what}");
    }
    // `aud` limits a token to one app: 401 invalid_token on the other.
    let token = bearer_with(s, "aud=app.example.com");
    let mine = s
        .curl()
        .header(&format!("Authorization: Bearer {token}"))
        .get(&s.app(0, "/api/states"));
    assert_eq!(mine.status, 200, "{mine:?}");
    let other = s
        .curl()
        .header(&format!("Authorization: Bearer {token}"))
        .get(&s.app(1, "/api/states"));
    assert_eq!(other.status, 401, "{other:?}");
    assert!(
        other
            .header("www-authenticate")
            .unwrap_or("")
            .contains("invalid_token"),
        "{other:?}"
    );
    for aud in ["https%3A%2F%2Fx%2Fpath%3Fq", "%2C", "a%40b.example.com"] {
        let bad = s
            .curl()
            .cert(&s.alice.cert, &s.alice.key)
            .post(&s.auth("/token"), &format!("aud={aud}"));
        assert_eq!(bad.status, 400, "{aud}: {bad:?}");
        assert!(bad.body.contains("invalid_target"), "{}", bad.body);
    }

    // The scope never widens the holder's rights: alice's token cannot reach the admin area.
    let token = bearer_with(s, "scope=app.example.com");
    let r = s
        .curl()
        .header(&format!("Authorization: Bearer {token}"))
        .get(&s.app(0, "/admin/users"));
    assert_eq!(r.status, 403, "{r:?}");
}

/// `/metrics` names every user and device: no request through the proxy gets it, anonymous or
/// with a certificate, on certgate's own paths (the sign-in host, or `/.certgate/` on the app
/// host) or the app's; the metrics listener on loopback does.
pub fn no_metrics_through_the_proxy(s: &Stack) {
    // Something to count first, so that an answer with metrics would show it.
    let api = s.curl().get(&s.app(0, "/api/states"));
    assert_eq!(api.status, 401, "{api:?}");

    // certgate's own paths through the proxy: the sign-in host, or /.certgate/ on the app host.
    let urls = [s.auth("/metrics"), s.auth("/readyz/details")];
    if s.layout == Layout::SingleHost {
        assert_eq!(s.auth("/metrics"), s.app(0, "/.certgate/metrics"));
    }
    for url in &urls {
        for with_cert in [false, true] {
            let curl = if with_cert {
                s.curl().cert(&s.alice.cert, &s.alice.key)
            } else {
                s.curl()
            };
            let r = curl.get(url);
            assert!(
                matches!(r.status, 401 | 403 | 404),
                "{:?} {url} (certificate: {with_cert}): {r:?}",
                s.proxy
            );
            assert!(
                !r.body.contains("certgate_") && !r.body.contains("reason"),
                "{:?} {url} (certificate: {with_cert}) answered metrics: {}",
                s.proxy,
                r.body
            );
        }
    }
    // The app's own /metrics is the app's business (checked by certgate like any path).
    let app = s.curl().get(&s.app(0, "/metrics"));
    assert_eq!(app.status, 401, "{app:?}");
    assert!(!app.body.contains("certgate_"), "{}", app.body);

    let scraped = crate::harness::curl::Curl::new(s.dir.path())
        .get(&format!("http://127.0.0.1:{}/metrics", s.certgate_metrics));
    assert_eq!(scraped.status, 200, "{scraped:?}");
    assert!(
        scraped.body.contains(
            "certgate_decisions_total{reason=\"no_credentials\",result=\"unauthenticated\"}"
        ),
        "{}",
        scraped.body
    );
}

/// A session cookie signed with certgate's own key as `/auth` would sign it, issued `age`
/// seconds ago to live `ttl` seconds: an expired one without waiting out the leeway.
fn minted_cookie(s: &Stack, age: i64, ttl: i64) -> String {
    let keys = certgate::jwt::KeySet::load(&s.dir.path().join("data/keys")).unwrap();
    let tokens = certgate::jwt::Tokens::new(keys, &s.certgate_base);
    let subject = certgate::jwt::Subject {
        user: "alice".into(),
        groups: vec!["family".into()],
        ..certgate::jwt::Subject::default()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (token, _) = tokens
        .mint(certgate::jwt::TokenKind::Session, &subject, ttl, now - age)
        .unwrap();
    format!("{}={token}", s.cookie)
}

/// Both layouts: a certificate on a new connection is enough, with no cookie or one whose
/// session ended (a reload, a WebSocket reconnect after the cookie expired); the cookie stays
/// the fallback for clients that present no certificate, and without either nothing passes.
pub fn certificate_after_session_end(s: &Stack) {
    let fresh = format!("Cookie: {}", minted_cookie(s, 0, 3600));
    let expired_value = minted_cookie(s, 3 * 3600, 3600);
    let expired = format!("Cookie: {expired_value}");

    // Controls: the way the cookies are made is sound (the fresh one passes alone), and the
    // expired one is refused alone.
    let r = s
        .curl()
        .header(HTML)
        .header(&fresh)
        .get(&s.app(0, "/lovelace"));
    assert_eq!(r.status, 200, "fresh cookie: {r:?}");
    assert!(r.body.contains("remote-user=[alice]"), "{}", r.body);
    let r = s
        .curl()
        .header(HTML)
        .header(&expired)
        .get(&s.app(0, "/lovelace"));
    assert_eq!(r.status, 302, "expired cookie alone: {r:?}");
    assert!(!r.body.contains("app saw"));
    let r = s.curl().header(&expired).get(&s.app(0, "/api/states"));
    assert_eq!(r.status, 401, "expired cookie alone, API: {r:?}");

    for app in 0..s.apps.len() {
        for cookie in [None, Some(&expired)] {
            for (what, accept, path) in [
                ("reload", HTML, "/lovelace/0"),
                ("API", "Accept: application/json", "/api/states"),
            ] {
                let mut curl = s.curl().cert(&s.alice.cert, &s.alice.key).header(accept);
                if let Some(c) = cookie {
                    curl = curl.header(c);
                }
                let r = curl.get(&s.app(app, path));
                assert_eq!(
                    r.status, 200,
                    "{what} on app {app}, cookie {cookie:?}: {r:?}"
                );
                assert!(
                    r.body
                        .contains("remote-user=[alice] remote-groups=[family]"),
                    "{}",
                    r.body
                );
            }
        }
    }

    // The WebSocket reconnect: the certificate alone, or beside the expired cookie.
    let cookie = || Some(("cookie", expired_value.clone()));
    assert_eq!(
        websocket_as(s, Some(&s.alice), None),
        Ok("alice: hello".to_string())
    );
    assert_eq!(
        websocket_as(s, Some(&s.alice), cookie()),
        Ok("alice: hello".to_string())
    );
    assert_eq!(websocket_as(s, None, cookie()), Err(401));
    assert_eq!(websocket_as(s, None, None), Err(401));

    // Without certificate and cookie: the sign-in redirect and the API's 401, as before.
    let r = s.curl().header(HTML).get(&s.app(0, "/lovelace"));
    assert_eq!(r.status, 302, "{r:?}");
    assert!(
        r.header("location")
            .is_some_and(|l| l.starts_with(&s.auth("/auth?rd="))),
        "{r:?}"
    );
    let r = s.curl().get(&s.app(0, "/api/states"));
    assert_eq!(r.status, 401, "{r:?}");
    assert!(!r.body.contains("app saw"));

    if s.layout == Layout::Sso {
        // The app host asks for the certificate as the sign-in host does. Traefik and Caddy
        // leave judging it to certgate: an expired one left in the browser never hides a good
        // cookie, and alone it is sent to the sign-in page (which says what is wrong with
        // it). nginx refuses an expired certificate itself, before any location: the app host
        // hands that to certgate's page. Never let through.
        let mut spec = certgate::ca::ClientSpec::new("alice", 0);
        spec.valid_from = -10 * 86_400;
        spec.valid_until = -86_400;
        let old = s.pki.client(&spec);
        let with_cookie = s
            .curl()
            .cert(&old.cert, &old.key)
            .header(HTML)
            .header(&fresh)
            .get(&s.app(1, "/lovelace"));
        let alone = s
            .curl()
            .cert(&old.cert, &old.key)
            .header(HTML)
            .get(&s.app(1, "/lovelace"));
        assert!(!alone.body.contains("app saw"), "{alone:?}");
        if s.proxy == Proxy::Nginx {
            for r in [&with_cookie, &alone] {
                assert_eq!(r.status, 495, "expired certificate: {r:?}");
                assert!(r.body.contains("certificate expired"), "{}", r.body);
            }
        } else {
            assert_eq!(
                with_cookie.status, 200,
                "expired certificate, good cookie: {with_cookie:?}"
            );
            assert!(
                with_cookie.body.contains("remote-user=[alice]"),
                "{}",
                with_cookie.body
            );
            assert_eq!(alone.status, 302, "expired certificate alone: {alone:?}");
            assert_eq!(websocket_as(s, Some(&old), None), Err(401));
        }
    }
}

/// Every spelling of the identity headers that some app server reads as `Remote-User` & co.
pub fn identity_aliases() -> Vec<String> {
    let mut names = Vec::new();
    for field in ["User", "Groups", "Email", "Name"] {
        for sep in [
            '-', '_', '.', '~', '!', '#', '$', '%', '&', '\'', '*', '+', '^', '`', '|',
        ] {
            names.push(format!("Remote{sep}{field}"));
        }
        names.push(format!("remote_{}", field.to_ascii_lowercase()));
        names.push(format!("REMOTE_{}", field.to_ascii_uppercase()));
    }
    names
}

/// No identity or address header a client sends reaches the app, in any spelling: the app
/// sees certgate's identity and the client's own address, overwritten.
pub fn client_headers_never_reach_the_app(s: &Stack) {
    let token = bearer(s);
    let address_headers = [
        "X-Forwarded-For: 203.0.113.9",
        "X-Real-IP: 203.0.113.9",
        "Forwarded: for=203.0.113.9;proto=http;host=forged.example",
        "X-Forwarded-Host: forged.example",
        "X-Forwarded-Proto: forged",
        "X-Forwarded-Port: 1",
        "X-Forwarded-Server: forged.example",
        "X-Forwarded-Prefix: /forged",
        "X-Forwarded-Uri: /forged",
        "X-Forwarded-Method: FORGED",
        "X-Forwarded-Ssl: forged",
        "X-Original-URL: https://forged.example/",
        "X-Original-URI: /forged",
        "X_Forwarded_For: 203.0.113.9",
        "X.Forwarded.For: 203.0.113.9",
        "X-Forwarded_For: 203.0.113.9",
        "X~Real~IP: 203.0.113.9",
        "X_Real_IP: 203.0.113.9",
    ];
    let aliases = identity_aliases();
    for app in 0..s.apps.len() {
        // From another loopback address than the proxy's own, so the client's address and
        // the proxy's are told apart.
        let mut curl = s
            .curl()
            .arg("--interface")
            .arg("127.0.0.2")
            .header(&format!("Authorization: Bearer {token}"));
        for h in &address_headers {
            curl = curl.header(h);
        }
        for name in &aliases {
            curl = curl.header(&format!("{name}: forged"));
        }
        let r = curl.get(&s.app(app, "/api/states"));
        assert_eq!(r.status, 200, "{r:?}");
        let seen = seen_headers(&r.body);
        assert!(!seen.is_empty(), "{}", r.body);
        for (name, value) in &seen {
            assert!(
                !value.contains("forged")
                    && !value.contains("FORGED")
                    && !value.contains("203.0.113.9"),
                "{:?}: the client's `{name}: {value}` reached the app:\n{}",
                s.proxy,
                r.body
            );
        }
        let one = |wanted: &str| -> Vec<&str> {
            seen.iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(wanted))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(one("remote-user"), ["alice"], "{}", r.body);
        assert_eq!(one("remote-groups"), ["family"], "{}", r.body);
        assert_eq!(one("x-forwarded-for"), ["127.0.0.2"], "{}", r.body);
        assert_eq!(one("x-real-ip"), ["127.0.0.2"], "{}", r.body);
        assert!(one("forwarded").is_empty(), "{}", r.body);
        for (name, _) in &seen {
            let lower = name.to_ascii_lowercase();
            let squashed: String = lower
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            // Only the dash spellings, which nobody reads as another header.
            assert!(
                !squashed.starts_with("remote-") || lower == squashed,
                "{:?}: `{name}` reached the app",
                s.proxy
            );
            assert!(
                !(squashed.starts_with("x-forwarded-") || squashed == "x-real-ip")
                    || lower == squashed,
                "{:?}: `{name}` reached the app",
                s.proxy
            );
        }
    }
}

/// certgate's token in `X-Certgate-Authorization` beside the app's own in `Authorization`:
/// certgate judges its own, the app gets its own and never certgate's.
pub fn certgate_token_beside_the_apps_own(s: &Stack) {
    let token = bearer(s);
    let app_token = "Bearer ha-long-lived-access-token";
    for app in 0..s.apps.len() {
        let r = s
            .curl()
            .header(&format!("X-Certgate-Authorization: Bearer {token}"))
            .header(&format!("Authorization: {app_token}"))
            .get(&s.app(app, "/api/states"));
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.contains("remote-user=[alice]"), "{}", r.body);
        let seen = seen_headers(&r.body);
        let authorization: Vec<&str> = seen
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(authorization, [app_token], "{}", r.body);
        assert!(
            !seen
                .iter()
                .any(|(n, v)| n.to_ascii_lowercase().contains("certgate") || v.contains(&token)),
            "{:?}: certgate's token reached the app:\n{}",
            s.proxy,
            r.body
        );
    }

    // A bad token in certgate's header is refused, whatever else the request carries.
    for bad in ["Bearer not-a-certgate-token", "Basic YWxpY2U6cGFzc3dvcmQ="] {
        let r = s
            .curl()
            .header(&format!("X-Certgate-Authorization: {bad}"))
            .header(&format!("Authorization: {app_token}"))
            .get(&s.app(0, "/api/states"));
        assert_eq!(r.status, 401, "{bad}: {r:?}");
        assert!(!r.body.contains("app saw"), "{bad}");
    }
    let r = s
        .curl()
        .header("X-Certgate-Authorization: Bearer not-a-certgate-token")
        .header(&format!("Authorization: Bearer {token}"))
        .get(&s.app(0, "/api/states"));
    assert_eq!(r.status, 401, "{r:?}");

    // On the WebSocket too (Home Assistant authenticates inside the socket).
    assert_eq!(
        websocket(
            s,
            Some(("x-certgate-authorization", format!("Bearer {token}")))
        ),
        Ok("alice: hello".to_string())
    );
    assert_eq!(
        websocket(
            s,
            Some(("x-certgate-authorization", "Bearer forged".to_string()))
        ),
        Err(401)
    );
}

/// The `[[rules]]` of `proxy-config --app home-assistant`: the manifest and webhooks of that
/// app pass without credentials, and nothing else does.
pub fn home_assistant_preset(s: &Stack) {
    let manifest = s.curl().get(&s.app(0, "/manifest.json"));
    assert_eq!(manifest.status, 200, "{manifest:?}");
    assert!(
        manifest.body.contains("remote-user=[]"),
        "{}",
        manifest.body
    );
    let webhook = s.curl().post(
        &s.app(0, "/api/webhook/5f1e3c2a9b7d4e6f8a0b1c2d3e4f5a6b"),
        "{}",
    );
    assert_eq!(webhook.status, 200, "{webhook:?}");
    assert!(webhook.body.contains("remote-user=[]"), "{}", webhook.body);

    for (what, r) in [
        (
            "webhook by GET",
            s.curl().get(&s.app(0, "/api/webhook/abc")),
        ),
        (
            "below a webhook",
            s.curl().post(&s.app(0, "/api/webhook/abc/x"), "{}"),
        ),
        (
            "webhook list",
            s.curl().post(&s.app(0, "/api/webhook"), "{}"),
        ),
        (
            "other app",
            s.curl().post(&s.app(1, "/api/webhook/abc"), "{}"),
        ),
        (
            "other app's manifest",
            s.curl().get(&s.app(1, "/manifest.json")),
        ),
        ("API", s.curl().get(&s.app(0, "/api/states"))),
    ] {
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert!(!r.body.contains("app saw"), "{what}");
    }
}

/// A browser without a certificate asking to sign in gets certgate's help page saying none
/// was sent (how to install one), never "a setup problem the administrator has to fix":
/// the proxy tells certgate it asked and got nothing.
pub fn no_certificate_page(s: &Stack) {
    let r = s.curl().header(HTML).get(&s.app(0, "/lovelace"));
    assert_eq!(r.status, 302, "{r:?}");
    let login = r.header("location").unwrap().to_string();
    let page = s.curl().header(HTML).get(&login);
    assert_eq!(page.status, 401, "{:?} {:?}: {page:?}", s.proxy, s.layout);
    assert!(
        page.body.contains("No client certificate")
            && page
                .body
                .contains("asked for a certificate and did not send one")
            && page.body.contains("iPhone and iPad"),
        "{:?} {:?}: {}",
        s.proxy,
        s.layout,
        page.body
    );
    assert!(
        !page.body.contains("setup problem") && !page.body.contains("certificate_not_forwarded"),
        "{:?} {:?}: {}",
        s.proxy,
        s.layout,
        page.body
    );
}

/// The `error` of certgate's JSON body, with the answer's content type checked.
fn json_error(r: &crate::harness::curl::Response, what: &str) -> String {
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{what}: {r:?}"
    );
    let body: serde_json::Value =
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{what}: {e}: {r:?}"));
    assert!(body["error_description"].is_string(), "{what}: {}", r.body);
    body["error"].as_str().unwrap_or_default().to_string()
}

/// API clients get certgate's own JSON 401 and 403 bodies through the proxy (never the
/// proxy's HTML), with its `WWW-Authenticate`; browsers still get the sign-in redirect.
pub fn api_clients_get_certgates_json(s: &Stack) {
    let json = "Accept: application/json";
    let r = s.curl().header(json).get(&s.app(0, "/api/states"));
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(json_error(&r, "no credentials"), "unauthenticated");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer realm=\"certgate\"")),
        "{r:?}"
    );
    assert!(!r.body.contains("app saw"));

    for (what, header) in [
        ("bad bearer", "Authorization: Bearer not-a-certgate-token"),
        (
            "bad certgate header",
            "X-Certgate-Authorization: Bearer not-a-certgate-token",
        ),
    ] {
        let r = s.curl().header(header).get(&s.app(0, "/api/states"));
        assert_eq!(r.status, 401, "{what}: {r:?}");
        // Word for word what certgate itself answers.
        let direct = crate::harness::curl::Curl::new(s.dir.path())
            .header(header)
            .get(&format!("http://127.0.0.1:{}/verify", s.certgate_http));
        assert_eq!(direct.status, 401, "{what}: {direct:?}");
        assert_eq!(json_error(&r, what), json_error(&direct, what));
        assert_eq!(r.body, direct.body, "{what}");
        assert_eq!(
            r.header("www-authenticate"),
            direct.header("www-authenticate"),
            "{what}"
        );
    }

    // A token scoped to the API: certgate's JSON 403 elsewhere.
    let token = bearer_with(
        s,
        &format!(
            "scope={}",
            utf8_percent_encode("GET:app.example.com/api/**", NON_ALPHANUMERIC)
        ),
    );
    let r = s
        .curl()
        .header(json)
        .header(&format!("Authorization: Bearer {token}"))
        .get(&s.app(0, "/dashboard"));
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(json_error(&r, "out of scope"), "insufficient_scope");
    assert!(!r.body.contains("app saw"));

    // Browsers are still sent to sign in.
    let r = s.curl().header(HTML).get(&s.app(0, "/api/states"));
    assert_eq!(r.status, 302, "{r:?}");
    assert!(
        r.header("location")
            .is_some_and(|l| l.starts_with(&s.auth("/auth?rd="))),
        "{r:?}"
    );
}

/// `proxy-config --app home-assistant --sign-in-with-certgate`: Home Assistant's login page
/// (`/auth/authorize` without `certgate=1`) is sent to the certgate integration's start with
/// the same query, before and regardless of certgate's check; with `certgate=1` (the
/// integration sending the browser back) it passes through certgate's check like any page, and
/// so do paths that only look alike.
pub fn home_assistant_sign_in_rule(s: &Stack) {
    let host = format!("https://{}:{}", s.apps[0], s.port);
    let to_start = |r: &crate::harness::curl::Response, query: &str| {
        let location = r.header("location").unwrap_or_default();
        let path = location.strip_prefix(&host).unwrap_or(location);
        assert_eq!(r.status, 302, "{r:?}");
        assert_eq!(path, format!("/auth/certgate/start{query}"), "{r:?}");
        assert!(!r.body.contains("app saw"), "{}", r.body);
    };
    let query = format!(
        "?client_id={}&redirect_uri={}&state=Z%2F%3D%26",
        enc(&format!("{host}/")),
        enc(&format!("{host}/?auth_callback=1")),
    );
    let login = s.app(0, &format!("/auth/authorize{query}"));
    // No certificate, no cookie, no token: redirected all the same, nothing reaches the app.
    to_start(&s.curl().get(&login), &query);
    to_start(&s.curl().header("Accept: text/html").get(&login), &query);
    // Signed in or not: the login page is the integration's whichever way.
    to_start(
        &s.curl().cert(&s.alice.cert, &s.alice.key).get(&login),
        &query,
    );
    // Any certgate value but 1 is no way back from certgate's sign-in.
    let other = format!("{query}&certgate=0");
    to_start(
        &s.curl().get(&s.app(0, &format!("/auth/authorize{other}"))),
        &other,
    );
    // Without a query: the integration's start, which answers that itself.
    let bare = s.curl().get(&s.app(0, "/auth/authorize"));
    assert_eq!(bare.status, 302, "{bare:?}");
    let location = bare.header("location").unwrap_or_default();
    let path = location.strip_prefix(&host).unwrap_or(location);
    assert!(
        path == "/auth/certgate/start" || path == "/auth/certgate/start?",
        "{bare:?}"
    );

    // The way back and the look-alikes: certgate's check as for any path (401 without a
    // certificate, to the app with one), never the integration's start.
    for path in [
        format!("/auth/authorize{query}&certgate=1"),
        "/auth/authorize?certgate=1&state=Z".to_string(),
        format!("/auth/authorizeX{query}"),
        "/auth/authorize/x?client_id=X".to_string(),
        "/other?certgate=0".to_string(),
        "/auth/certgate/start?client_id=X".to_string(),
    ] {
        let r = s.curl().get(&s.app(0, &path));
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert!(
            !r.header("location")
                .unwrap_or_default()
                .contains("/auth/certgate/start"),
            "{path}: {r:?}"
        );
        assert!(!r.body.contains("app saw"), "{path}: {}", r.body);
        let r = s
            .curl()
            .cert(&s.alice.cert, &s.alice.key)
            .get(&s.app(0, &path));
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert!(
            r.body.contains(&format!("path=[{path}]")) && r.body.contains("remote-user=[alice]"),
            "{path}: {}",
            r.body
        );
    }
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}
