//! Revocation that reaches live sessions: `certgate revoke` from another process, a second
//! certgate on the same data directory, restarts, and a store that cannot be read.

use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::direct::{setup_env, Setup, LOOPBACK};
use crate::harness::certgate::{binary, Certgate};
use crate::harness::curl::Curl;
use crate::harness::require;

fn verify(s: &Setup, cg: &Certgate, credential: &str) -> u16 {
    Curl::new(s.dir.path())
        .header(credential)
        .header("X-Original-URL: https://app.example.test/")
        .get(&cg.http("/verify"))
        .status
}

/// The `jti` claim of a token (read, not verified).
pub fn jti(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["jti"].as_str().unwrap().to_string()
}

fn revoke(s: &Setup, args: &[&str]) {
    revoke_cli(&s.dir.path().join("certgate.toml"), args);
}

/// `certgate revoke ARGS --config CONFIG`, which must succeed; what it printed.
pub fn revoke_cli(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(binary())
        .arg("revoke")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a certgate that cannot trust its revocation view answers (`curl` for `cg`'s plain
/// listener, `cookie` a valid session): 503 with `Retry-After` to a browser too (never a
/// redirect loop, never a cleared cookie), `/readyz` 503, the staleness metric, the reason
/// in the log.
pub fn assert_fails_closed(cg: &Certgate, curl: Curl, cookie: &str) {
    let browser = curl
        .header(cookie)
        .header("Accept: text/html")
        .header("X-Original-URL: https://app.example.com/")
        .get(&cg.http("/verify?redirect=1"));
    assert_eq!(browser.status, 503, "never a redirect loop: {browser:?}");
    assert_eq!(browser.header("retry-after"), Some("5"));
    assert!(
        browser.header("set-cookie").is_none(),
        "never a cleared cookie"
    );
    let ready = Curl::new(&cg.dir).get(&cg.http("/readyz"));
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.body.trim(),
        r#"{"ready":false}"#,
        "why is for the operator"
    );
    let details = Curl::new(&cg.dir).get(&cg.metrics("/readyz/details"));
    assert_eq!(details.status, 503);
    assert!(details.body.contains("revocation view"), "{details:?}");
    assert!(cg.metric("certgate_store_staleness_seconds").unwrap() >= 1.0);
    assert!(cg.logs().contains("cannot read the revocation store"));
}

/// Another certgate on the same config and data directory (no mTLS listener).
pub fn second_certgate(s: &Setup) -> Certgate {
    Certgate::start(s.dir.path(), &s.body(), false)
}

/// The promise is "refused everywhere within a second": a check that starts a second after
/// the revocation must see it. (A check's own time, slow on a loaded machine, does not count.)
fn within_a_second(what: &str, done: impl FnMut() -> bool) {
    crate::replicas::within(Duration::from_secs(1), what, done);
}

#[test]
fn certgate_revoke_reaches_live_tokens_within_a_second_and_survives_a_restart() {
    if !require("curl") {
        return;
    }
    let mut s = setup_env(LOOPBACK, "", &[]);
    let cookie = format!("Cookie: __Host-certgate={}", s.session_cookie());
    let bearer = s.bearer();
    let bearer_header = format!("Authorization: Bearer {bearer}");
    assert_eq!(
        (
            verify(&s, &s.cg, &cookie),
            verify(&s, &s.cg, &bearer_header)
        ),
        (200, 200)
    );

    // Token ids are base64url: one may start with `-` and is still an id, not a flag.
    revoke(&s, &["--jti", "-jti-that-looks-like-a-flag"]);
    revoke(&s, &["--jti", &jti(&bearer)]);
    within_a_second("--jti", || verify(&s, &s.cg, &bearer_header) == 401);
    assert_eq!(verify(&s, &s.cg, &cookie), 200, "only that token");

    revoke(&s, &["--user", "alice"]);
    within_a_second("--user", || verify(&s, &s.cg, &cookie) == 401);
    let fresh = format!("Cookie: __Host-certgate={}", s.session_cookie());
    assert_eq!(verify(&s, &s.cg, &fresh), 200, "signing in again works");

    let serial = certgate::cert::ClientCert::parse(&s.alice.issued.cert_der)
        .unwrap()
        .serial
        .to_string();
    // Signing a device out ends what it holds; its certificate signs in again.
    revoke(&s, &["--device", &serial]);
    within_a_second("--device", || verify(&s, &s.cg, &fresh) == 401);
    let fresh = format!("Cookie: __Host-certgate={}", s.session_cookie());
    assert_eq!(verify(&s, &s.cg, &fresh), 200, "the device signs in again");

    revoke(&s, &["--serial", &serial.to_ascii_uppercase()]);
    within_a_second("--serial", || verify(&s, &s.cg, &fresh) == 401);
    let login = s.as_alice().get(&s.cg.mtls("/auth"));
    assert_eq!(login.status, 495, "{login:?}");
    assert!(login.body.contains("revoked"), "{}", login.body);

    // A restart forgets nothing.
    let mtls_port = s.cg.mtls_port.unwrap();
    let body = s
        .body()
        .replace(&format!("localhost:{mtls_port}"), "localhost:{MTLS_PORT}");
    drop(std::mem::replace(
        &mut s.cg,
        Certgate::start(s.dir.path(), &body, true),
    ));
    for h in [&cookie, &bearer_header, &fresh] {
        assert_eq!(verify(&s, &s.cg, h), 401, "revoked before the restart: {h}");
    }
    assert_eq!(s.as_alice().get(&s.cg.mtls("/auth")).status, 495);
}

#[test]
fn a_logout_on_one_certgate_is_refused_by_another_on_the_same_data_dir() {
    if !require("curl") {
        return;
    }
    let s = setup_env(LOOPBACK, "", &[]);
    let other = second_certgate(&s);
    let cookie = format!("Cookie: __Host-certgate={}", s.session_cookie());
    assert_eq!(
        (verify(&s, &s.cg, &cookie), verify(&s, &other, &cookie)),
        (200, 200)
    );
    let out = s
        .curl()
        .header(&cookie)
        .header("Sec-Fetch-Site: same-origin")
        .post(&s.cg.mtls("/logout"), "");
    assert_eq!(out.status, 200);
    within_a_second("the other replica", || verify(&s, &other, &cookie) == 401);
}

#[test]
fn an_unreadable_store_answers_503_after_max_staleness_and_recovers_by_itself() {
    if !require("curl") {
        return;
    }
    let s = setup_env(LOOPBACK, "[store]\nmax_staleness = \"1s\"", &[]);
    let cookie = format!("Cookie: __Host-certgate={}", s.session_cookie());
    let bearer = format!("Authorization: Bearer {}", s.bearer());
    let ready = |s: &Setup| Curl::new(s.dir.path()).get(&s.cg.http("/readyz")).status;
    assert_eq!((verify(&s, &s.cg, &cookie), ready(&s)), (200, 200));

    // The store becomes unreadable: its table is gone from the database (as after a botched
    // manual edit or restore).
    let db = rusqlite::Connection::open(s.dir.path().join("data/certgate.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch("ALTER TABLE revocations RENAME TO revocations_away")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while verify(&s, &s.cg, &cookie) != 503 {
        assert!(Instant::now() < deadline, "never 503:\n{}", s.cg.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = s
        .curl()
        .header(&bearer)
        .header("X-Original-URL: https://app.example.test/")
        .get(&s.cg.http("/verify"));
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.header("set-cookie").is_none(), "never a cleared cookie");
    assert_fails_closed(&s.cg, s.curl(), &cookie);

    // Mended: service is back within two seconds, without a restart.
    db.execute_batch("ALTER TABLE revocations_away RENAME TO revocations")
        .unwrap();
    crate::replicas::within(Duration::from_secs(2), "service back", || {
        verify(&s, &s.cg, &cookie) == 200
    });
    assert_eq!(ready(&s), 200);
}

/// `certgate keys rotate` while two certgates on one data directory answer a steady stream
/// of checks and mint tokens: no check fails, the next key is published before it signs, and
/// both replicas verify what either signs.
#[test]
fn key_rotation_under_load_fails_no_check() {
    if !require("curl") {
        return;
    }
    let s = setup_env(LOOPBACK, "", &[]);
    let other = second_certgate(&s);
    let kid_of = |token: &str| {
        let head = token.split('.').next().unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
        v["kid"].as_str().unwrap().to_string()
    };
    let first = s.bearer();
    let old_kid = kid_of(&first);

    let out = Command::new(binary())
        .args(["keys", "rotate", "--publish-ahead", "3s", "--config"])
        .arg(s.dir.path().join("certgate.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated_at = Instant::now();

    let mut checks = 0;
    let mut seen_new = false;
    while rotated_at.elapsed() < Duration::from_secs(7) {
        let token = s.bearer();
        seen_new |= kid_of(&token) != old_kid;
        for cg in [&s.cg, &other] {
            for t in [&first, &token] {
                let status = verify(&s, cg, &format!("Authorization: Bearer {t}"));
                assert_eq!(status, 200, "check {checks} failed during the rotation");
                checks += 1;
            }
        }
    }
    assert!(seen_new, "the new key never signed");
    assert!(checks > 40, "only {checks} checks");
    let jwks = Curl::new(s.dir.path()).get(&other.http("/.well-known/jwks.json"));
    let keys: serde_json::Value = serde_json::from_str(&jwks.body).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "{}", jwks.body);
}

/// `POST /admin/revoke`: an admin's certificate (curl, no cookie) or an admin's browser
/// session from certgate's own origin revokes; anyone else, and any other origin, is refused.
#[test]
fn the_admin_api_revokes_for_admins_only_and_refuses_cross_origin_forms() {
    if !require("curl") {
        return;
    }
    let s = setup_env(
        LOOPBACK,
        "[admin]\ngroups = [\"admins\"]\n[[users]]\nname = \"bob\"\ngroups = [\"family\"]",
        &[("CERTGATE_LOG_FORMAT", "json")],
    );
    let bob = s.pki.user("bob");
    let as_bob = || s.curl().cert(&bob.cert, &bob.key);
    let r = as_bob().get(&s.cg.mtls("/auth"));
    assert_eq!(r.status, 200, "{r:?}");
    let bob_cookie = format!(
        "Cookie: __Host-certgate={}",
        crate::direct::cookie_value(&r, "__Host-certgate")
    );
    assert_eq!(verify(&s, &s.cg, &bob_cookie), 200);

    // Not an admin; no certificate at all; an admin's certificate on a cross-site form.
    let r = as_bob().post(&s.cg.mtls("/admin/revoke"), "user=alice");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("admin.groups"), "{}", r.body);
    let r = s.curl().post(&s.cg.mtls("/admin/revoke"), "user=bob");
    assert_eq!(r.status, 401, "{r:?}");
    let r = s
        .as_alice()
        .header("Origin: https://evil.example.test")
        .post(&s.cg.mtls("/admin/revoke"), "user=bob");
    assert_eq!(r.status, 403, "{r:?}");
    // A browser that strips Origin still sends its cookie or a Referer: not the API path.
    for header in ["Cookie: theme=dark", "Referer: https://evil.example.test/"] {
        let r = s
            .as_alice()
            .header(header)
            .post(&s.cg.mtls("/admin/revoke"), "user=bob");
        assert_eq!(r.status, 403, "{header}: {r:?}");
    }
    assert_eq!(verify(&s, &s.cg, &bob_cookie), 200, "nothing revoked yet");

    // Bad input names the field.
    let r = s.as_alice().post(&s.cg.mtls("/admin/revoke"), "serial=xyz");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("serial"), "{}", r.body);
    let r = s
        .as_alice()
        .post(&s.cg.mtls("/admin/revoke"), "user=bob&jti=x");
    assert_eq!(r.status, 400, "{r:?}");

    // An admin's certificate, as an API client.
    let r = s.as_alice().post(&s.cg.mtls("/admin/revoke"), "user=bob");
    assert_eq!(r.status, 200, "{r:?}");
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(json, serde_json::json!({"revoked": "user", "id": "bob"}));
    assert_eq!(verify(&s, &s.cg, &bob_cookie), 401);

    // An admin's browser: session cookie, her certificate, certgate's own origin.
    let alice_cookie = format!("Cookie: __Host-certgate={}", s.session_cookie());
    let bearer = s.bearer();
    let bearer_header = format!("Authorization: Bearer {bearer}");
    assert_eq!(verify(&s, &s.cg, &bearer_header), 200);
    let origin = format!("Origin: https://localhost:{}", s.cg.mtls_port.unwrap());
    let form = s
        .as_alice()
        .header(&alice_cookie)
        .header("Accept: text/html")
        .get(&s.cg.mtls("/admin/revoke"));
    assert_eq!(form.status, 200, "{form:?}");
    assert!(form.body.contains("name=\"jti\""), "{}", form.body);
    let r = s
        .as_alice()
        .header(&alice_cookie)
        .header(&origin)
        .header("Accept: text/html")
        .post(
            &s.cg.mtls("/admin/revoke"),
            &format!("jti={}", jti(&bearer)),
        );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("Revoked session"), "{}", r.body);
    assert_eq!(verify(&s, &s.cg, &bearer_header), 401);
    assert_eq!(verify(&s, &s.cg, &alice_cookie), 200, "only that token");

    let revokes: Vec<_> =
        s.cg.audit_events()
            .into_iter()
            .map(|e| e["fields"].clone())
            .filter(|e| e["event"] == "revoke")
            .collect();
    assert_eq!(revokes.len(), 2, "{revokes:?}");
    assert_eq!(revokes[0]["user"], "alice");
    assert_eq!(revokes[0]["what"], "bob");
    assert_eq!(revokes[0]["reason"], "admin");
    assert_eq!(revokes[1]["kind"], "session");
    assert_eq!(
        s.cg.metric("certgate_revocations_total{kind=\"user\"}"),
        Some(1.0)
    );
}
