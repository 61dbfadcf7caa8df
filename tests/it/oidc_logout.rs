//! Logout reaching the apps (issue 17): back-channel logout tokens after every kind of
//! revocation, retried when the app fails, sent once by two servers on one data directory; and
//! RP-initiated logout at `/oidc/logout`. The app's back-channel endpoint is a small recording
//! server ([`Receiver`]).

use std::time::{Duration, Instant};

use crate::direct::{cookie_value, Setup, LOOPBACK};
use crate::harness::backchannel::{Post, Receiver};
use crate::harness::certgate::{mtls_config, run, Certgate};
use crate::harness::curl::{Curl, Response};
use crate::harness::pki::{CertFiles, Pki};
use crate::harness::require;

const SECRET: &str = "grafana-secret-0123456789abcdef";
const CALLBACK: &str = "https://app.example.test/callback";
const AFTER_LOGOUT: &str = "https://app.example.test/signed-out";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// certgate with the app `grafana` (RS256, back-channel logout to `rp`) and the app `quiet`
/// (no back-channel URI); alice (admins) and bob may sign in; the client CA's CRL file (empty
/// at first) is `crl.pem` in the test directory. Returns bob's certificate too.
fn provider(rp: &Receiver) -> (Setup, CertFiles) {
    provider_with(&rp.url(), &[])
}

/// [`provider`] with the back-channel URI `rp` and extra environment for certgate.
fn provider_with(rp: &str, env: &[(&str, &str)]) -> (Setup, CertFiles) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Test Client CA");
    let server = pki.server(&["localhost", "127.0.0.1"]);
    let alice = pki.user("alice");
    let bob = pki.user("bob");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let crl = dir.path().join("crl.pem");
    std::fs::write(&crl, pki.ca.crl(&[], now, 7).unwrap().0).unwrap();
    // `mtls_config` leaves [client_ca] open for more of its keys.
    let body = format!(
        r#"{head}crl = ["{crl}"]
[proxy]
trusted = {LOOPBACK}
[[users]]
name = "alice"
groups = ["admins", "family"]
email = "alice@example.test"
[[users]]
name = "bob"
email = "bob@example.test"
[access]
allow_unmatched = true
[admin]
groups = ["admins"]
[oidc]
[[oidc.clients]]
id = "grafana"
secret = "{SECRET}"
redirect_uris = ["{CALLBACK}"]
post_logout_redirect_uris = ["{AFTER_LOGOUT}"]
backchannel_logout_uri = "{rp}"
[[oidc.clients]]
id = "quiet"
secret = "{SECRET}"
redirect_uris = ["{CALLBACK}"]
"#,
        head = mtls_config(&server, &pki.ca_pem),
        crl = crl.display(),
    );
    let cg = Certgate::start_env(dir.path(), &body, true, env);
    (
        Setup {
            dir,
            pki,
            cg,
            alice,
        },
        bob,
    )
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn authorize_url(s: &Setup, client: &str) -> String {
    format!(
        "{}?response_type=code&client_id={client}&redirect_uri={}&scope={}&state=st&nonce=n-1",
        s.cg.mtls("/oidc/authorize"),
        enc(CALLBACK),
        enc("openid profile offline_access")
    )
}

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

/// A sign-in to `client` by the browser `c` (a certificate, or a session cookie): the session
/// cookie certgate set (if it set one) and the token response.
struct SignIn {
    cookie: Option<String>,
    tokens: serde_json::Value,
}

impl SignIn {
    fn access(&self) -> &str {
        self.tokens["access_token"].as_str().unwrap()
    }
    fn id_token(&self) -> &str {
        self.tokens["id_token"].as_str().unwrap()
    }
    /// The ID token's `sid` (read without checking: `oidc.rs` checks ID tokens).
    fn sid(&self) -> String {
        claims_unchecked(self.id_token())["sid"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn sign_in(s: &Setup, c: Curl, client: &str) -> SignIn {
    let r = c.get(&authorize_url(s, client));
    assert_eq!(r.status, 302, "{r:?}");
    let cookie = r
        .header("set-cookie")
        .map(|_| cookie_value(&r, "__Host-certgate"));
    let code = query(r.header("location").unwrap())["code"].clone();
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}",
        enc(&code),
        enc(CALLBACK)
    );
    let t = s
        .curl()
        .arg("-u")
        .arg(format!("{client}:{SECRET}"))
        .post(&s.cg.mtls("/oidc/token"), &form);
    assert_eq!(t.status, 200, "{t:?}");
    SignIn {
        cookie,
        tokens: json(&t),
    }
}

fn claims_unchecked(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The logout token of `post`, checked as an app must (Back-Channel Logout 1.0 §2.6): the
/// signature against `/oidc/jwks`, `typ`, `iss`, `aud`, `iat`/`exp`, `jti`, the event, no
/// `nonce`. Returns its claims.
fn checked_logout_token(s: &Setup, post: &Post) -> serde_json::Value {
    assert_eq!(post.method, "POST");
    assert_eq!(post.content_type, "application/x-www-form-urlencoded");
    let token = post.logout_token();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "the client's algorithm"
    );
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&s.curl().get(&s.cg.mtls("/oidc/jwks")).body).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&["grafana"]);
    v.set_issuer(&[s.cg.mtls("")]);
    v.set_required_spec_claims(&["iss", "aud", "exp", "sub"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &v,
    )
    .unwrap_or_else(|e| panic!("{e}: {token}"))
    .claims;
    assert_eq!(claims["events"], serde_json::json!({ EVENT: {} }));
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(exp > iat && exp - iat <= 300, "{claims}");
    claims
}

fn refresh(s: &Setup, t: &SignIn, client: &str) -> Response {
    s.curl().arg("-u").arg(format!("{client}:{SECRET}")).post(
        &s.cg.mtls("/oidc/token"),
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            enc(t.tokens["refresh_token"].as_str().unwrap())
        ),
    )
}

fn userinfo(s: &Setup, t: &SignIn) -> u16 {
    s.curl()
        .header(&format!("Authorization: Bearer {}", t.access()))
        .get(&s.cg.mtls("/oidc/userinfo"))
        .status
}

#[test]
fn revoking_a_user_sends_their_apps_a_signed_logout_token_within_a_second() {
    if !require("curl") {
        return;
    }
    let rp = Receiver::start(&[]);
    let (s, _) = provider(&rp);
    let alice = sign_in(&s, s.as_alice(), "grafana");
    let quiet = sign_in(&s, s.as_alice(), "quiet");
    assert_eq!(userinfo(&s, &alice), 200);
    assert!(rp.posts().is_empty(), "nothing ended yet");

    let (status, out) = run(
        s.dir.path(),
        &["revoke", "--config", "certgate.toml", "--user", "alice"],
    );
    assert_eq!(status, 0, "{out}");
    let revoked = Instant::now();
    let posts = rp.wait_for(1, Duration::from_secs(1));
    assert_eq!(posts.len(), 1, "no logout token within 1 s");
    assert!(posts[0].at.duration_since(revoked) <= Duration::from_secs(1));
    let claims = checked_logout_token(&s, &posts[0]);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["sid"], alice.sid().as_str());
    assert_eq!(claims["aud"], "grafana");

    assert_eq!(userinfo(&s, &alice), 401);
    assert_eq!(
        json(&refresh(&s, &alice, "grafana"))["error"],
        "invalid_grant"
    );
    assert_eq!(
        userinfo(&s, &quiet),
        401,
        "ended too, but it takes no token"
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(rp.posts().len(), 1, "one token, once");
}

#[test]
fn logging_out_of_certgate_sends_the_logout_of_that_sessions_sign_in_only() {
    if !require("curl") {
        return;
    }
    let rp = Receiver::start(&[]);
    let (s, bob_cert) = provider(&rp);
    let alice = sign_in(&s, s.as_alice(), "grafana");
    let alice_other = sign_in(&s, s.as_alice(), "grafana");
    let bob = sign_in(&s, s.curl().cert(&bob_cert.cert, &bob_cert.key), "grafana");
    assert_ne!(alice.sid(), alice_other.sid(), "two sessions");

    let cookie = format!("Cookie: __Host-certgate={}", alice.cookie.clone().unwrap());
    let out = s.curl().header(&cookie).post(&s.cg.mtls("/logout"), "");
    assert_eq!(out.status, 200, "{out:?}");
    let posts = rp.wait_for(1, Duration::from_secs(1));
    assert_eq!(posts.len(), 1, "{posts:?}");
    let claims = checked_logout_token(&s, &posts[0]);
    assert_eq!(
        (claims["sub"].as_str(), claims["sid"].as_str()),
        (Some("alice"), Some(alice.sid().as_str()))
    );
    assert_eq!(userinfo(&s, &alice), 401);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(rp.posts().len(), 1, "the other sign-ins go on");
    assert_eq!(userinfo(&s, &alice_other), 200);
    assert_eq!(userinfo(&s, &bob), 200);
    assert_eq!(refresh(&s, &bob, "grafana").status, 200);
}

#[test]
fn an_app_that_fails_twice_gets_its_logout_token_on_the_third_try() {
    if !require("curl") {
        return;
    }
    let rp = Receiver::start(&[500, 500]);
    let (s, _) = provider(&rp);
    let alice = sign_in(&s, s.as_alice(), "grafana");
    let (status, out) = run(
        s.dir.path(),
        &["revoke", "--config", "certgate.toml", "--user", "alice"],
    );
    assert_eq!(status, 0, "{out}");
    let posts = rp.wait_for(3, Duration::from_secs(8));
    let answered: Vec<u16> = posts.iter().map(|p| p.answered).collect();
    assert_eq!(answered, [500, 500, 200], "{posts:?}");
    // Backoff: about 1 s, then about 2 s.
    let gaps: Vec<Duration> = posts.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps[0] >= Duration::from_millis(900) && gaps[1] >= Duration::from_millis(1900),
        "{gaps:?}"
    );
    for p in &posts {
        assert_eq!(checked_logout_token(&s, p)["sid"], alice.sid().as_str());
    }
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(rp.posts().len(), 3, "delivered: not sent again");
    assert!(
        s.cg.logs().contains("back-channel logout failed"),
        "the failures are logged"
    );
    let metric = |outcome: &str| {
        s.cg.metric(&format!(
            "certgate_oidc_backchannel_logouts_total{{outcome=\"{outcome}\"}}"
        ))
    };
    assert_eq!(
        (metric("retry"), metric("delivered")),
        (Some(2.0), Some(1.0))
    );
}

#[test]
fn rp_initiated_logout_ends_the_session_and_goes_back_only_to_a_registered_uri() {
    if !require("curl") {
        return;
    }
    let rp = Receiver::start(&[]);
    let (s, _) = provider(&rp);
    let t = sign_in(&s, s.as_alice(), "grafana");
    let cookie = format!("Cookie: __Host-certgate={}", t.cookie.clone().unwrap());
    let verify = |c: &str| s.curl().header(c).get(&s.cg.http("/verify")).status;
    assert_eq!(verify(&cookie), 200);
    let d: serde_json::Value = json(
        &s.curl()
            .get(&s.cg.mtls("/.well-known/openid-configuration")),
    );
    let end_session = d["end_session_endpoint"].as_str().unwrap().to_string();
    assert_eq!(end_session, s.cg.mtls("/oidc/logout"));
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);

    // A hint certgate did not sign: refused, nothing ends.
    let forged = format!("{}x", t.id_token());
    let r = s.curl().header(&cookie).get(&format!(
        "{end_session}?id_token_hint={}&post_logout_redirect_uri={}",
        enc(&forged),
        enc(AFTER_LOGOUT)
    ));
    assert_eq!((r.status, r.header("location")), (400, None), "{r:?}");
    assert_eq!(verify(&cookie), 200);

    // The hint and a registered URI: back there with state, the session and its grant end.
    let r = s.curl().header(&cookie).get(&format!(
        "{end_session}?id_token_hint={}&post_logout_redirect_uri={}&state=xyz",
        enc(t.id_token()),
        enc(AFTER_LOGOUT)
    ));
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some(format!("{AFTER_LOGOUT}?state=xyz").as_str())
    );
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.starts_with("__Host-certgate=;") || c.contains("Max-Age=0")),
        "this browser's cookie is cleared: {r:?}"
    );
    assert_eq!(
        verify(&cookie),
        401,
        "the session no longer counts at /verify"
    );
    let again = s.curl().header(&cookie).get(&authorize_url(&s, "grafana"));
    assert_eq!(again.status, 302, "{again:?}");
    assert!(
        again
            .header("location")
            .is_some_and(|l| l.starts_with(&s.cg.mtls("/auth?rd="))),
        "no code from an ended session: {again:?}"
    );
    assert_eq!(userinfo(&s, &t), 401);
    let posts = rp.wait_for(1, Duration::from_secs(1));
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(checked_logout_token(&s, &posts[0])["sid"], t.sid().as_str());

    // An unregistered URI (even one slash off): a page, never a redirect. An expired hint
    // still names the app.
    let t2 = sign_in(&s, s.as_alice(), "grafana");
    for uri in [
        "https://evil.example/",
        "https://app.example.test/signed-out/",
    ] {
        let r = s.curl().get(&format!(
            "{end_session}?id_token_hint={}&post_logout_redirect_uri={}&state=xyz",
            enc(t2.id_token()),
            enc(uri)
        ));
        assert_eq!(
            (r.status, r.header("location")),
            (200, None),
            "{uri}: {r:?}"
        );
        assert!(r.body.contains("Signed out"), "{}", r.body);
    }
    assert_eq!(
        userinfo(&s, &t2),
        401,
        "the hinted session ended all the same"
    );

    // client_id alone (an app with a fixed logout URL): any site could send a browser there,
    // so the person confirms on certgate's page first; its form keeps the app's parameters.
    let t3 = sign_in(&s, s.as_alice(), "grafana");
    let cookie3 = format!("Cookie: __Host-certgate={}", t3.cookie.clone().unwrap());
    assert_eq!(verify(&cookie3), 200);
    let asked = s.curl().header(&cookie3).post(
        &end_session,
        &format!(
            "client_id=grafana&post_logout_redirect_uri={}",
            enc(AFTER_LOGOUT)
        ),
    );
    assert_eq!(
        (asked.status, asked.header("location")),
        (200, None),
        "{asked:?}"
    );
    assert!(asked.body.contains("Sign out?"), "{}", asked.body);
    assert_eq!(
        verify(&cookie3),
        200,
        "nothing ended before the person confirms"
    );
    let action = asked
        .body
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#x2f;", "/");
    // Confirmed from elsewhere (no Origin, another one): still only the question.
    for origin in [None, Some("https://evil.example")] {
        let mut c = s.curl().header(&cookie3);
        if let Some(o) = origin {
            c = c.header(&format!("Origin: {o}"));
        }
        assert!(c.post(&action, "confirm=1").body.contains("Sign out?"));
    }
    assert_eq!(verify(&cookie3), 200);
    let r = s
        .curl()
        .header(&cookie3)
        .header(&format!("Origin: {}", s.cg.mtls("")))
        .post(&action, "confirm=1");
    assert_eq!(r.status, 302, "{action}: {r:?}");
    assert_eq!(r.header("location"), Some(AFTER_LOGOUT));
    assert_eq!(verify(&cookie3), 401);
    assert_eq!(userinfo(&s, &t3), 401);
    // No client named at all: no redirect anywhere, but the page.
    let r = s.curl().get(&format!(
        "{end_session}?post_logout_redirect_uri={}",
        enc(AFTER_LOGOUT)
    ));
    assert_eq!((r.status, r.header("location")), (200, None), "{r:?}");
    let posts = rp.wait_for(3, Duration::from_secs(2));
    assert_eq!(
        posts.len(),
        3,
        "one logout token per ended sign-in: {posts:?}"
    );
}

const GRANTS: usize = 24;

#[test]
fn two_servers_on_one_data_directory_send_each_logout_token_once() {
    if !require("curl") {
        return;
    }
    let rp = Receiver::start(&[]);
    let (s, _) = provider(&rp);
    let twin = Certgate::start(s.dir.path(), &s.body(), false);
    // Enough grants that the two servers' sweeps (each after its own sync) overlap.
    let sign_ins: Vec<SignIn> = (0..GRANTS)
        .map(|_| sign_in(&s, s.as_alice(), "grafana"))
        .collect();
    let (status, out) = run(
        s.dir.path(),
        &["revoke", "--config", "certgate.toml", "--user", "alice"],
    );
    assert_eq!(status, 0, "{out}");
    let posts = rp.wait_for(GRANTS, Duration::from_secs(2));
    assert_eq!(posts.len(), GRANTS, "every grant's token within 2 s");
    std::thread::sleep(Duration::from_secs(2));
    let posts_later = rp.posts();
    assert_eq!(posts_later.len(), GRANTS, "{posts_later:?}");
    let mut sids: Vec<String> = posts_later
        .iter()
        .map(|p| {
            checked_logout_token(&s, p)["sid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    sids.sort();
    let mut expected: Vec<String> = sign_ins.iter().map(SignIn::sid).collect();
    expected.sort();
    assert_eq!(sids, expected, "one token per grant");
    drop(twin);
}

#[test]
fn every_kind_of_revocation_reaches_the_app() {
    if !require("curl") {
        return;
    }
    let rp = Receiver::start(&[]);
    let (s, bob_cert) = provider(&rp);
    let cli = |args: &[&str]| {
        let mut all = vec!["--config", "certgate.toml"];
        all.splice(0..0, args.iter().copied());
        let (status, out) = run(s.dir.path(), &all);
        assert_eq!(status, 0, "{args:?}: {out}");
    };
    let serial = |c: &CertFiles| {
        certgate::cert::ClientCert::parse(&c.issued.cert_der)
            .unwrap()
            .serial
            .as_str()
            .to_string()
    };
    // The n-th logout token arrives within `limit`, for `t`.
    let expect = |n: usize, limit: Duration, t: &SignIn, what: &str| {
        let posts = rp.wait_for(n, limit);
        assert_eq!(posts.len(), n, "{what}: {posts:?}");
        let claims = checked_logout_token(&s, &posts[n - 1]);
        assert_eq!(claims["sid"], t.sid().as_str(), "{what}");
        assert_eq!(userinfo(&s, t), 401, "{what}");
    };
    let second = Duration::from_secs(1);

    let t = sign_in(&s, s.as_alice(), "grafana");
    cli(&["revoke", "--jti", &t.sid()]);
    expect(1, second, &t, "certgate revoke --jti <session>");

    let t = sign_in(&s, s.as_alice(), "grafana");
    let r = s
        .as_alice()
        .post(&s.cg.mtls("/admin/revoke"), &format!("jti={}", t.sid()));
    assert_eq!(r.status, 200, "{r:?}");
    expect(2, second, &t, "/admin/revoke jti=<session>");

    let t = sign_in(&s, s.as_alice(), "grafana");
    cli(&["user", "disable", "alice"]);
    expect(3, second, &t, "certgate user disable");
    cli(&["user", "enable", "alice"]);
    let deadline = Instant::now() + second;
    while s.as_alice().get(&s.cg.mtls("/auth")).status != 200 {
        assert!(Instant::now() < deadline, "alice is let back in");
        std::thread::sleep(Duration::from_millis(50));
    }

    let t = sign_in(&s, s.as_alice(), "grafana");
    let cookie = format!("Cookie: __Host-certgate={}", t.cookie.clone().unwrap());
    let out = s
        .curl()
        .header(&cookie)
        .post(&s.cg.mtls("/logout"), "everywhere=1");
    assert_eq!(out.status, 200, "{out:?}");
    expect(4, second, &t, "log out everywhere");

    let t = sign_in(&s, s.curl().cert(&bob_cert.cert, &bob_cert.key), "grafana");
    cli(&["revoke", "--serial", &serial(&bob_cert)]);
    expect(5, second, &t, "certgate revoke --serial");

    // A CRL that lists the certificate (as a cron job replaces the file): no revocation entry
    // is written, the sweep of every second finds it.
    let t = sign_in(&s, s.as_alice(), "grafana");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let bytes = certgate::cert::ClientCert::parse(&s.alice.issued.cert_der)
        .unwrap()
        .serial
        .to_bytes();
    std::fs::write(
        s.dir.path().join("crl.pem"),
        s.pki.ca.crl(&[(bytes, now)], now, 7).unwrap().0,
    )
    .unwrap();
    expect(6, 2 * second, &t, "a CRL listing the certificate");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(rp.posts().len(), 6, "one token per ended sign-in");
}

#[test]
fn an_https_back_channel_uri_is_verified_against_the_system_roots() {
    if !require("curl") {
        return;
    }
    // The app's certificate comes from a CA that only SSL_CERT_FILE names (as an operator
    // adds a private CA to the system's store).
    let other = tempfile::tempdir().unwrap();
    let app_pki = Pki::new(other.path(), "App CA");
    let app_server = app_pki.server(&["127.0.0.1"]);
    let ca = app_pki.ca_pem.display().to_string();
    for (trusted, env) in [
        (true, vec![("SSL_CERT_FILE", ca.as_str())]),
        (false, vec![]),
    ] {
        let rp = Receiver::start_tls(&[], &app_server);
        let (s, _) = provider_with(&rp.https_url(), &env);
        let t = sign_in(&s, s.as_alice(), "grafana");
        let (status, out) = run(
            s.dir.path(),
            &["revoke", "--config", "certgate.toml", "--user", "alice"],
        );
        assert_eq!(status, 0, "{out}");
        let posts = rp.wait_for(1, Duration::from_millis(1500));
        if trusted {
            assert_eq!(posts.len(), 1, "delivered over https");
            assert_eq!(checked_logout_token(&s, &posts[0])["sid"], t.sid().as_str());
        } else {
            assert!(
                posts.is_empty(),
                "an app certgate cannot verify gets nothing"
            );
            assert!(
                s.cg.logs().contains("back-channel logout failed"),
                "{}",
                s.cg.logs()
            );
        }
    }
}
