//! certgate on its own (its mTLS listener and plain listener), driven by curl.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use certgate::ca::ClientSpec;
use rcgen::ExtendedKeyUsagePurpose;
use tempfile::TempDir;

use crate::harness::certgate::{mtls_config, Certgate};
use crate::harness::curl::{Curl, Response};
use crate::harness::pki::{CertFiles, Pki};
use crate::harness::require;

pub struct Setup {
    pub dir: TempDir,
    pub pki: Pki,
    pub cg: Certgate,
    pub alice: CertFiles,
}

/// certgate with its own mTLS listener, alice (admins) and dave (disabled) listed.
pub fn setup(trusted: &str, extra: &str) -> Setup {
    setup_env(trusted, extra, &[])
}

/// [`setup`] with extra environment variables for the certgate process.
pub fn setup_env(trusted: &str, extra: &str, env: &[(&str, &str)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Test Client CA");
    let server = pki.server(&["localhost", "127.0.0.1"]);
    let alice = pki.user("alice");
    let body = format!(
        r#"{head}[proxy]
trusted = {trusted}
[[users]]
name = "alice"
groups = ["admins", "family"]
email = "alice@example.test"
display_name = "Alice Liddell"
[[users]]
name = "dave"
disabled = true
[token]
max_ttl = "2h"
[access]
allow_unmatched = true
{extra}
"#,
        head = mtls_config(&server, &pki.ca_pem),
    );
    let cg = Certgate::start_env(dir.path(), &body, true, env);
    Setup {
        dir,
        pki,
        cg,
        alice,
    }
}

impl Setup {
    pub fn curl(&self) -> Curl {
        Curl::new(self.dir.path()).cacert(&self.pki.ca_pem)
    }

    pub fn as_alice(&self) -> Curl {
        self.curl().cert(&self.alice.cert, &self.alice.key)
    }

    pub fn session_cookie(&self) -> String {
        let r = self.as_alice().get(&self.cg.mtls("/auth"));
        assert_eq!(r.status, 200, "{r:?}");
        cookie_value(&r, "__Host-certgate")
    }

    pub fn bearer(&self) -> String {
        let r = self.as_alice().post(&self.cg.mtls("/token"), "");
        assert_eq!(r.status, 200, "{r:?}");
        let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        json["access_token"].as_str().unwrap().to_string()
    }

    /// The configuration certgate was started with, less its `[listen]` section: the body of
    /// another [`Certgate::start`] on the same data directory. Start that one without an mTLS
    /// listener: `public_url` (the tokens' issuer) then stays the one the first certgate named.
    pub fn body(&self) -> String {
        let config = std::fs::read_to_string(self.dir.path().join("certgate.toml")).unwrap();
        config.split("[listen]").next().unwrap().to_string()
    }
}

pub fn cookie_value(r: &Response, name: &str) -> String {
    let set = r
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie in {r:?}"));
    set.split(';')
        .next()
        .unwrap()
        .strip_prefix(&format!("{name}="))
        .unwrap_or_else(|| panic!("{set}"))
        .to_string()
}

pub const LOOPBACK: &str = r#"["127.0.0.1/32", "::1/128"]"#;
const HTML: &str = "Accept: text/html,application/xhtml+xml";

#[test]
fn auth_with_a_valid_cert_sets_the_host_cookie_and_redirects_to_rd() {
    if !require("curl") {
        return;
    }
    // The sign-in host itself: a host-only cookie reaches no other (check-config refuses
    // another host here without a session.cookie_domain covering both).
    let s = setup(
        LOOPBACK,
        "[session]\nallowed_redirect_hosts = [\"localhost\"]",
    );
    let r = s.as_alice().header(HTML).get(
        &s.cg
            .mtls("/auth?rd=https%3A%2F%2Flocalhost%3A8443%2Fx%3Fy%3D1"),
    );
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.header("location"), Some("https://localhost:8443/x?y=1"));
    let set = r.header("set-cookie").unwrap();
    assert!(set.starts_with("__Host-certgate="), "{set}");
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    assert!(cookie_value(&r, "__Host-certgate").len() < 1024);

    // The cookie is a session: /verify accepts it and names alice with her groups. The
    // escaped spelling misses the fast path in front of the router and must answer the same.
    let cookie = format!(
        "Cookie: __Host-certgate={}",
        cookie_value(&r, "__Host-certgate")
    );
    for path in ["/verify", "/v%65rify"] {
        let v = s.curl().header(&cookie).get(&s.cg.http(path));
        assert_eq!(v.status, 200, "{path}: {v:?}");
        assert_eq!(v.header("remote-user"), Some("alice"), "{path}");
        assert_eq!(v.header("remote-groups"), Some("admins,family"), "{path}");
        assert_eq!(v.header("remote-email"), Some("alice@example.test"));
        assert_eq!(v.header("remote-name"), Some("Alice Liddell"));
        assert_eq!(v.header("cache-control"), Some("no-store"));
        let head = s.curl().header(&cookie).arg("-I").get(&s.cg.http(path));
        assert_eq!(head.status, 200, "HEAD {path}: {head:?}");
        assert_eq!(head.header("remote-user"), Some("alice"), "HEAD {path}");
        let post = s.curl().header(&cookie).post(&s.cg.http(path), "a=1");
        assert_eq!(post.status, 200, "POST {path}: {post:?}");
        assert_eq!(post.header("remote-user"), Some("alice"), "POST {path}");
        let without = s.curl().get(&s.cg.http(path));
        assert_eq!(without.status, 401, "{path}: {without:?}");
        let traefik = s
            .curl()
            .header(HTML)
            .get(&s.cg.http(&format!("{path}?redirect=1")));
        assert_eq!(traefik.status, 302, "{path}?redirect=1: {traefik:?}");
    }
}

#[test]
fn refused_certificates_get_a_page_that_says_why() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    let other = Pki::new(s.dir.path(), "Other CA");
    let foreign = other.user("alice");
    let mut expired = ClientSpec::new("alice", 0);
    expired.valid_from = -10 * 86_400;
    expired.valid_until = -86_400;
    let mut server_only = ClientSpec::new("alice", 30);
    server_only.usage = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let mut not_yet = ClientSpec::new("alice", 30);
    not_yet.valid_from = 86_400;
    let cases = [
        (foreign, "not issued by a CA this gateway trusts"),
        (s.pki.client(&expired), "certificate expired"),
        (
            s.pki.client(&server_only),
            "not meant for client authentication",
        ),
        (s.pki.client(&not_yet), "not valid before"),
    ];
    for (cert, why) in cases {
        let r = s
            .curl()
            .cert(&cert.cert, &cert.key)
            .header(HTML)
            .get(&s.cg.mtls("/auth?rd=https%3A%2F%2Flocalhost%2F"));
        assert_eq!(r.status, 495, "{why}: {r:?}");
        assert!(
            r.body.contains("Certificate not accepted") && r.body.contains(why),
            "{why}: {}",
            r.body
        );
        assert!(
            r.header("set-cookie").is_none(),
            "{why}: no cookie for a refused cert"
        );
        let api = s
            .curl()
            .cert(&cert.cert, &cert.key)
            .post(&s.cg.mtls("/token"), "");
        assert_eq!(api.status, 401, "{why}: /token {api:?}");
        assert!(api.body.contains("invalid_client"), "{}", api.body);
    }
}

#[test]
fn auth_without_a_cert_explains_how_to_get_one() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    let r = s.curl().header(HTML).get(&s.cg.mtls("/auth"));
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.body.contains("No client certificate") && r.body.contains("Android"),
        "{}",
        r.body
    );
    let api = s.curl().get(&s.cg.mtls("/auth"));
    assert_eq!(api.status, 401);
    assert!(api.body.contains("\"no_certificate\""), "{}", api.body);
}

#[test]
fn unlisted_and_disabled_users_are_forbidden() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    for (name, why) in [("bob", "not listed"), ("dave", "disabled")] {
        let c = s.pki.user(name);
        let r = s
            .curl()
            .cert(&c.cert, &c.key)
            .header(HTML)
            .get(&s.cg.mtls("/auth"));
        assert_eq!(r.status, 403, "{name}: {r:?}");
        assert!(r.body.contains(why), "{name}: {}", r.body);
        assert!(r.header("set-cookie").is_none());
    }
}

#[test]
fn token_then_verify_with_the_bearer_gives_every_identity_header() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    let r = s.as_alice().post(&s.cg.mtls("/token"), "ttl=90m");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["expires_in"], 5400);
    let token = json["access_token"].as_str().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");

    // The bearer works on the plain listener, and the client's own Remote-User cannot survive.
    let v = s
        .curl()
        .header(&format!("Authorization: Bearer {token}"))
        .header("Remote-User: root")
        .get(&s.cg.http("/verify"));
    assert_eq!(v.status, 200, "{v:?}");
    assert_eq!(v.header("remote-user"), Some("alice"));
    assert_eq!(v.header("remote-groups"), Some("admins,family"));

    // JWKS publishes the key that signed it.
    let jwks: serde_json::Value =
        serde_json::from_str(&s.curl().get(&s.cg.http("/.well-known/jwks.json")).body).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
}

#[test]
fn token_requests_outside_the_limits_are_refused() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    let too_long = s.as_alice().post(&s.cg.mtls("/token"), "ttl=3h");
    assert_eq!(too_long.status, 400);
    assert!(
        too_long.body.contains("invalid_request") && too_long.body.contains("token.max_ttl"),
        "{}",
        too_long.body
    );
    let scoped = s.as_alice().post(
        &s.cg.mtls("/token"),
        "scope=https%3A%2F%2Fha.example.com%2F",
    );
    assert_eq!(scoped.status, 400);
    assert!(scoped.body.contains("invalid_scope"), "{}", scoped.body);
    let nobody = s.curl().post(&s.cg.mtls("/token"), "");
    assert_eq!(nobody.status, 401);
    assert!(nobody.body.contains("invalid_client"), "{}", nobody.body);
    // A session cookie may mint a token too.
    let cookie = s.session_cookie();
    let from_session = s
        .curl()
        .header(&format!("Cookie: __Host-certgate={cookie}"))
        .post(&s.cg.mtls("/token"), "ttl=2h");
    assert_eq!(from_session.status, 200, "{from_session:?}");
    // ...but never one that outlives the session (1h), whatever ttl asks for.
    let json: serde_json::Value = serde_json::from_str(&from_session.body).unwrap();
    let expires_in = json["expires_in"].as_u64().unwrap();
    assert!(
        expires_in <= 3600 && expires_in > 3500,
        "expires_in {expires_in}"
    );
}

#[test]
fn verify_challenges_browsers_and_api_clients_differently() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    let original = "X-Original-URL: https://app.example.test/dash?a=1&b=2";
    let browser = s
        .curl()
        .header(HTML)
        .header(original)
        .get(&s.cg.http("/verify"));
    assert_eq!(browser.status, 401, "{browser:?}");
    let want = format!(
        "https://localhost:{}/auth?rd=https%3A%2F%2Fapp%2Eexample%2Etest%2Fdash%3Fa%3D1%26b%3D2",
        s.cg.mtls_port.unwrap()
    );
    assert_eq!(browser.header("location"), Some(want.as_str()));
    assert_eq!(browser.header("cache-control"), Some("no-store"));
    let traefik = s
        .curl()
        .header(HTML)
        .header(original)
        .get(&s.cg.http("/verify?redirect=1"));
    assert_eq!(traefik.status, 302);
    assert_eq!(traefik.header("location"), Some(want.as_str()));
    let api = s.curl().header(original).get(&s.cg.http("/verify"));
    assert_eq!(api.status, 401);
    assert_eq!(
        api.header("www-authenticate"),
        Some("Bearer realm=\"certgate\"")
    );
    assert!(api.header("location").is_none());
    // A POST from a browser is not redirected (it would lose its body).
    let post = s
        .curl()
        .header(HTML)
        .header(original)
        .header("X-Original-Method: POST")
        .get(&s.cg.http("/verify"));
    assert_eq!(post.status, 401);
    assert!(post.header("location").is_none());
    // WebSocket handshake headers are ignored: never 101.
    let ws = s
        .curl()
        .header("Upgrade: websocket")
        .header("Connection: Upgrade")
        .get(&s.cg.http("/verify"));
    assert_eq!(ws.status, 401);
}

fn forge(header: serde_json::Value, payload: &str, sig: &str) -> String {
    format!(
        "{}.{payload}.{sig}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap())
    )
}

#[test]
fn bad_tokens_are_refused_at_verify() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    let bearer = s.bearer();
    let session = s.session_cookie();
    let parts: Vec<&str> = bearer.split('.').collect();
    let kid =
        serde_json::from_slice::<serde_json::Value>(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap())
            .unwrap()["kid"]
            .clone();
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig));
    let none = forge(
        serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": kid}),
        parts[1],
        "",
    );
    let unknown_kid = forge(
        serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "nope"}),
        parts[1],
        parts[2],
    );
    for (what, token) in [
        ("flipped signature", &flipped),
        ("alg none", &none),
        ("unknown kid", &unknown_kid),
        ("session as bearer", &session),
    ] {
        let r = s
            .curl()
            .header(&format!("Authorization: Bearer {token}"))
            .get(&s.cg.http("/verify"));
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert!(
            r.header("www-authenticate")
                .unwrap_or("")
                .contains("invalid_token"),
            "{what}: {r:?}"
        );
    }
    let r = s
        .curl()
        .header(&format!("Cookie: __Host-certgate={bearer}"))
        .get(&s.cg.http("/verify"));
    assert_eq!(r.status, 401, "bearer as cookie: {r:?}");
}

#[test]
fn a_foreign_bearer_token_is_ignored_not_refused() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    let ha_token = forge(
        serde_json::json!({"alg": "HS256", "typ": "JWT"}),
        &URL_SAFE_NO_PAD.encode(br#"{"iss":"6f9d2c","exp":9999999999}"#),
        "c2ln",
    );
    let cookie = s.session_cookie();
    let r = s
        .curl()
        .header(&format!("Authorization: Bearer {ha_token}"))
        .header(&format!("Cookie: __Host-certgate={cookie}"))
        .get(&s.cg.http("/verify"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("remote-user"), Some("alice"));
    let alone = s
        .curl()
        .header(&format!("Authorization: Bearer {ha_token}"))
        .get(&s.cg.http("/verify"));
    assert_eq!(alone.status, 401);
    assert_eq!(
        alone.header("www-authenticate"),
        Some("Bearer realm=\"certgate\""),
        "no invalid_token for a token that is not ours"
    );
}

fn escaped(pem: &str) -> String {
    percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[test]
fn a_cert_header_from_an_untrusted_peer_is_ignored() {
    if !require("curl") {
        return;
    }
    let s = setup(r#"["10.255.255.1/32"]"#, "");
    let header = format!("X-SSL-Client-Cert: {}", escaped(&s.alice.issued.cert_pem));
    let auth = s
        .curl()
        .header(&header)
        .header(HTML)
        .get(&s.cg.http("/auth"));
    assert_eq!(auth.status, 401, "{auth:?}");
    assert!(auth.body.contains("No client certificate"));
    let verify = s.curl().header(&header).get(&s.cg.http("/verify"));
    assert_eq!(verify.status, 401);
    assert!(s
        .cg
        .logs()
        .contains("ignored a certificate header from an untrusted peer"));
    // Untrusted X-Original-URL is ignored too: the redirect carries no rd.
    let b = s
        .curl()
        .header(HTML)
        .header("X-Original-URL: https://evil.example/")
        .get(&s.cg.http("/verify"));
    assert_eq!(
        b.header("location"),
        Some(format!("https://localhost:{}/auth", s.cg.mtls_port.unwrap()).as_str())
    );
}

#[test]
fn a_trusted_proxy_may_forward_a_cert_but_not_a_malformed_one() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    let good = s
        .curl()
        .header(&format!(
            "X-SSL-Client-Cert: {}",
            escaped(&s.alice.issued.cert_pem)
        ))
        .get(&s.cg.http("/verify"));
    assert_eq!(good.status, 200, "{good:?}");
    assert_eq!(good.header("remote-user"), Some("alice"));
    for bad in [
        "garbage",
        "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----",
        &"A".repeat(40_000),
    ] {
        let r = s
            .curl()
            .header(&format!("X-SSL-Client-Cert: {bad}"))
            .get(&s.cg.http("/auth"));
        // 400 naming the header; a value too big for the HTTP parser is refused before that (431).
        assert!(
            r.status == 400 || r.status == 431,
            "{}: {r:?}",
            &bad[..bad.len().min(20)]
        );
        assert!(
            r.status != 400 || r.body.contains("X-SSL-Client-Cert"),
            "{}",
            r.body
        );
    }
    // On /verify the same header is a 401 challenge: nginx turns a 400 from auth_request into a 500.
    let on_verify = s
        .curl()
        .header("X-SSL-Client-Cert: garbage")
        .get(&s.cg.http("/verify"));
    assert_eq!(on_verify.status, 401, "{on_verify:?}");
    // The process is still serving after all of that.
    assert_eq!(s.curl().get(&s.cg.http("/healthz")).status, 200);
}

#[test]
fn logout_revokes_the_session_but_not_from_another_site() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    let cookie = format!("Cookie: __Host-certgate={}", s.session_cookie());
    let cross = s
        .curl()
        .header(&cookie)
        .header("Sec-Fetch-Site: cross-site")
        .post(&s.cg.mtls("/logout"), "");
    assert_eq!(cross.status, 403);
    let evil_origin = s
        .curl()
        .header(&cookie)
        .header("Origin: https://evil.example")
        .post(&s.cg.mtls("/logout"), "");
    assert_eq!(evil_origin.status, 403);
    assert_eq!(
        s.curl().header(&cookie).get(&s.cg.http("/verify")).status,
        200,
        "cross-site logout had an effect"
    );
    let out = s
        .curl()
        .header(&cookie)
        .header("Sec-Fetch-Site: same-origin")
        .post(&s.cg.mtls("/logout"), "rd=https%3A%2F%2Flocalhost%2Fbye");
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(out.header("location"), Some("https://localhost/bye"));
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        s.curl().header(&cookie).get(&s.cg.http("/verify")).status,
        401,
        "revoked session still works"
    );
}

/// oauth2-proxy's corpus through the real endpoint: one curl, every payload as `rd`.
#[test]
fn every_open_redirect_payload_lands_on_the_default_page() {
    if !require("curl") {
        return;
    }
    // certgate signs in on the one allowed host (another host would need a cookie_domain).
    let s = setup_env(
        LOOPBACK,
        "[session]\nallowed_redirect_hosts = [\"www.whitelisteddomain.tld\"]",
        &[("CERTGATE__PUBLIC_URL", "https://www.whitelisteddomain.tld")],
    );
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/openredirects.txt"
    ))
    .unwrap();
    let urls: Vec<String> = corpus
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let payload = percent_encoding::percent_decode_str(l).collect::<Vec<u8>>();
            let rd = percent_encoding::percent_encode(&payload, percent_encoding::NON_ALPHANUMERIC);
            s.cg.mtls(&format!("/auth?rd={rd}"))
        })
        .collect();
    assert!(urls.len() >= 550);
    let out = std::process::Command::new("curl")
        .args(["-sS", "-w", "%{http_code} %{redirect_url}\\n", "--cacert"])
        .arg(&s.pki.ca_pem)
        .arg("--cert")
        .arg(&s.alice.cert)
        .arg("--key")
        .arg(&s.alice.key)
        .args(urls.iter().flat_map(|u| ["-o", "/dev/null", u.as_str()]))
        .output()
        .unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        lines.len(),
        urls.len(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (line, url) in lines.iter().zip(&urls) {
        assert_eq!(line.trim_end(), "200", "redirected for {url}");
    }
    // Control: the allowed host itself is followed.
    let ok = s.as_alice().get(
        &s.cg
            .mtls("/auth?rd=https%3A%2F%2Fwww.whitelisteddomain.tld%2F"),
    );
    assert_eq!(ok.status, 302);
}

/// Disabling a user takes effect on live tokens: 403 at /verify, not a fresh login prompt;
/// on reload (SIGHUP) too, though the token was checked, and its holder kept, before.
#[test]
fn a_disabled_users_live_token_gets_403() {
    if !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Disable CA");
    let server = pki.server(&["localhost"]);
    let alice = pki.user("alice");
    let config = |disabled: bool| {
        format!(
            "public_url = \"https://auth.example.test\"\ndata_dir = \"data\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n[client_ca]\nbundle = \"{}\"\n[[users]]\nname = \"alice\"\ndisabled = {disabled}\n[access]\nallow_unmatched = true\n",
            server.cert.display(),
            server.key.display(),
            pki.ca_pem.display()
        )
    };
    let before = Certgate::start(dir.path(), &config(false), true);
    let r = Curl::new(dir.path())
        .cacert(&pki.ca_pem)
        .cert(&alice.cert, &alice.key)
        .post(&before.mtls("/token"), "");
    assert_eq!(r.status, 200, "{r:?}");
    let token = serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let verify = |cg: &Certgate| {
        Curl::new(dir.path())
            .header(&format!("Authorization: Bearer {token}"))
            .get(&cg.http("/verify"))
    };
    for _ in 0..2 {
        let v = verify(&before);
        assert_eq!(v.status, 200, "{v:?}");
        assert_eq!(v.header("remote-user"), Some("alice"));
    }
    before.reload_with(&config(true));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let v = loop {
        let v = verify(&before);
        if v.status != 200 || std::time::Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(v.status, 403, "{v:?}\n{}", before.logs());
    assert!(v.header("remote-user").is_none());
    drop(before);
    let after = Certgate::start(dir.path(), &config(true), true);
    let v = verify(&after);
    assert_eq!(v.status, 403, "{v:?}");
    assert!(v.header("remote-user").is_none());
}

/// SIGHUP swaps in new rules; a broken file keeps the old ones and says why in the log.
#[test]
fn sighup_reloads_rules_and_keeps_them_when_the_file_is_broken() {
    if !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Reload CA");
    let alice = pki.user("alice");
    let config = |rules: &str| {
        format!(
            "public_url = \"https://auth.example.test\"\ndata_dir = \"data\"\n[client_ca]\nbundle = \"{}\"\n[[users]]\nname = \"alice\"\n{rules}\n",
            pki.ca_pem.display()
        )
    };
    let cg = Certgate::start(
        dir.path(),
        &config("[[rules]]\npath = \"/old/**\"\naction = \"allow\""),
        false,
    );
    let cert = format!("X-SSL-Client-Cert: {}", escaped(&alice.issued.cert_pem));
    let status = |path: &str| {
        Curl::new(dir.path())
            .header(&cert)
            .header(&format!("X-Original-URL: https://app.example.test{path}"))
            .get(&cg.http("/verify"))
            .status
    };
    assert_eq!((status("/old/x"), status("/new/x")), (200, 403));

    // A broken file: the old rules stay, and the log says why.
    cg.reload_with(&config("[[rules]]\npath = \"new/**\"\naction = \"allow\""));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cg.logs().contains("the previous one stays in force") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload failure logged:\n{}",
            cg.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(cg.logs().contains("rules[0].path"), "{}", cg.logs());
    assert_eq!((status("/old/x"), status("/new/x")), (200, 403));

    // A good file: the new rules apply without a restart.
    cg.reload_with(&config("[[rules]]\npath = \"/new/**\"\naction = \"allow\""));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while status("/new/x") != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "rules not reloaded:\n{}",
            cg.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status("/old/x"), 403);
}

/// A sibling subdomain can set cookies of certgate's name for longer paths, which browsers
/// send first. Forged values cost at most four signature checks, and never hide the session
/// certgate minted.
#[test]
fn forged_cookie_values_in_front_of_the_real_one_do_not_hide_it() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    let real = s.session_cookie();
    let (head, rest) = real.split_once('.').unwrap();
    let sig = rest.rsplit_once('.').unwrap().1;
    let forged: String = (0..100)
        .map(|i| {
            let payload = URL_SAFE_NO_PAD.encode(format!("{{\"n\":{i}}}"));
            format!("__Host-certgate={head}.{payload}.{sig}; ")
        })
        .collect();
    let verify = |cookie: &str| {
        s.curl()
            .header(&format!("Cookie: {cookie}"))
            .header("X-Original-URL: https://app.example.test/")
            .get(&s.cg.http("/verify"))
    };
    let r = verify(&format!("{forged}__Host-certgate={real}"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("remote-user"), Some("alice"));
    assert_eq!(verify(&forged).status, 401);
}
