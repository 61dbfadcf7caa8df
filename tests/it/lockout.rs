//! Locking a user out at run time (`certgate user disable|enable`, `POST /admin/user`): their
//! certificates, sessions and bearer tokens are refused within a second by every certgate
//! following the store (the embedded database, or Redis with two replicas); other users are
//! untouched; letting them back in lets their certificate sign in again; a restart keeps the
//! lock. A locked user's token or cookie is refused as revoked (401); their certificate as a
//! locked account (403, a page that says so).

use std::process::Command;
use std::time::Duration;

use crate::direct::{cookie_value, setup_env, Setup, LOOPBACK};
use crate::harness::certgate::{binary, Certgate};
use crate::harness::curl::Curl;
use crate::harness::pki::CertFiles;
use crate::harness::require;
use crate::replicas::{within, Replicas};

const SECOND: Duration = Duration::from_secs(1);

/// `certgate user ARGS --config CONFIG`, which must succeed; what it printed.
pub fn user_cli(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(binary())
        .arg("user")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The certificate as nginx forwards it (`$ssl_client_escaped_cert`).
pub fn forwarded(who: &CertFiles) -> String {
    format!(
        "X-SSL-Client-Cert: {}",
        percent_encoding::utf8_percent_encode(
            &who.issued.cert_pem,
            percent_encoding::NON_ALPHANUMERIC
        )
    )
}

fn check(cg: &Certgate, dir: &std::path::Path, credential: &str) -> u16 {
    Curl::new(dir)
        .header(credential)
        .header("X-Original-URL: https://app.example.test/")
        .get(&cg.http("/verify"))
        .status
}

fn cookie(r: &crate::harness::curl::Response) -> String {
    format!(
        "Cookie: __Host-certgate={}",
        cookie_value(r, "__Host-certgate")
    )
}

/// /auth with a certificate forwarded by the (trusted) proxy, as a browser.
fn sign_in(
    cg: &Certgate,
    dir: &std::path::Path,
    who: &CertFiles,
) -> crate::harness::curl::Response {
    Curl::new(dir)
        .header(&forwarded(who))
        .header("Accept: text/html")
        .get(&cg.http("/auth"))
}

/// What a locked user meets: cookie and token 401, the certificate 403 at /verify, /auth
/// (a page that says the account is locked) and /token.
fn assert_locked_out(cg: &Certgate, dir: &std::path::Path, who: &CertFiles, tokens: &[&str]) {
    for credential in tokens {
        assert_eq!(check(cg, dir, credential), 401, "{credential}");
    }
    assert_eq!(check(cg, dir, &forwarded(who)), 403);
    let page = sign_in(cg, dir, who);
    assert_eq!(page.status, 403, "{page:?}");
    assert!(page.body.contains("account is locked"), "{}", page.body);
    assert!(page.header("set-cookie").is_none());
    let minted = Curl::new(dir)
        .header(&forwarded(who))
        .post(&cg.http("/token"), "");
    assert_eq!(minted.status, 403, "{minted:?}");
    assert!(minted.body.contains("locked"), "{}", minted.body);
}

#[test]
fn a_locked_user_is_refused_everywhere_within_a_second_let_back_in_and_a_restart_keeps_it() {
    if !require("curl") {
        return;
    }
    let mut s: Setup = setup_env(
        LOOPBACK,
        "[admin]\ngroups = [\"admins\"]\n[[users]]\nname = \"bob\"\ngroups = [\"admins\"]",
        &[("CERTGATE_LOG_FORMAT", "json")],
    );
    let d = s.dir.path().to_path_buf();
    let config = d.join("certgate.toml");
    let bob = s.pki.user("bob");
    let alice_cookie = format!("Cookie: __Host-certgate={}", s.session_cookie());
    let alice_bearer = format!("Authorization: Bearer {}", s.bearer());
    let bob_cookie = cookie(&sign_in(&s.cg, &d, &bob));
    for credential in [&alice_cookie, &alice_bearer, &bob_cookie] {
        assert_eq!(check(&s.cg, &d, credential), 200, "{credential}");
    }
    assert_eq!(check(&s.cg, &d, &forwarded(&s.alice)), 200);

    // Locked from the command line: within a second, every credential of alice's.
    let said = user_cli(&config, &["disable", "alice"]);
    assert!(said.contains("locked out alice"), "{said}");
    within(SECOND, "the lock-out", || {
        check(&s.cg, &d, &alice_cookie) == 401
    });
    assert_locked_out(&s.cg, &d, &s.alice, &[&alice_cookie, &alice_bearer]);
    // The status page with her session sends her to sign in, which says she is locked.
    let status = s
        .curl()
        .header(&alice_cookie)
        .header("Accept: text/html")
        .get(&s.cg.mtls("/"));
    assert_eq!(status.status, 302, "{status:?}");
    // Her own certificate on the mTLS listener too, and on the admin API she could use.
    let r = s
        .as_alice()
        .header("Accept: text/html")
        .get(&s.cg.mtls("/auth"));
    assert_eq!(r.status, 403, "{r:?}");
    let r = s
        .as_alice()
        .post(&s.cg.mtls("/admin/user"), "user=bob&action=disable");
    assert_eq!(r.status, 403, "{r:?}");
    // Nobody else is touched.
    assert_eq!(check(&s.cg, &d, &bob_cookie), 200);
    assert_eq!(check(&s.cg, &d, &forwarded(&bob)), 200);
    assert!(user_cli(&config, &["disable", "alice"]).contains("already"));

    // Let back in by an admin (the API, bob's certificate): her certificate signs in again;
    // tokens issued before the lock stay ended.
    let as_bob = || s.curl().cert(&bob.cert, &bob.key);
    let r = as_bob().post(&s.cg.mtls("/admin/user"), "user=alice&action=enable");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.body).unwrap(),
        serde_json::json!({"user": "alice", "locked": false})
    );
    within(SECOND, "letting alice back in", || {
        check(&s.cg, &d, &forwarded(&s.alice)) == 200
    });
    let fresh = format!("Cookie: __Host-certgate={}", s.session_cookie());
    assert_eq!(check(&s.cg, &d, &fresh), 200);
    assert_eq!(check(&s.cg, &d, &alice_cookie), 401, "ended for good");
    assert_eq!(check(&s.cg, &d, &alice_bearer), 401, "ended for good");

    // Locked again from the admin page's form (a browser session bound to bob's certificate).
    let bob_browser = cookie(&as_bob().get(&s.cg.mtls("/auth")));
    let origin = format!("Origin: https://localhost:{}", s.cg.mtls_port.unwrap());
    let r = as_bob()
        .header(&bob_browser)
        .header(&origin)
        .header("Accept: text/html")
        .post(&s.cg.mtls("/admin/revoke"), "user=alice&lock=1");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("Locked out alice"), "{}", r.body);
    assert!(
        r.body.contains("Locked out now"),
        "the page lists who: {}",
        r.body
    );
    within(SECOND, "the second lock-out", || {
        check(&s.cg, &d, &fresh) == 401
    });
    assert_eq!(
        s.cg.metric("certgate_revocations_total{kind=\"lock\"}"),
        Some(1.0)
    );
    assert_eq!(
        s.cg.metric("certgate_revocations_total{kind=\"unlock\"}"),
        Some(1.0)
    );
    let events = s.cg.audit_events();
    for (event, admin) in [("unlock", "bob"), ("lock", "bob")] {
        assert!(
            events.iter().any(|e| e["fields"]["event"] == event
                && e["fields"]["user"] == admin
                && e["fields"]["target_user"] == "alice"),
            "{event}: {events:?}"
        );
    }

    // A restart keeps the lock (the database in data_dir).
    let body = s.body();
    drop(std::mem::replace(
        &mut s.cg,
        Certgate::start(&d, &body, false),
    ));
    assert_locked_out(&s.cg, &d, &s.alice, &[&fresh]);
    assert_eq!(check(&s.cg, &d, &bob_cookie), 200);
    let said = user_cli(&config, &["enable", "alice"]);
    assert!(said.contains("let alice back in"), "{said}");
    within(SECOND, "enable after the restart", || {
        sign_in(&s.cg, &d, &s.alice).status == 200
    });

    // A user disabled in the config file stays disabled whatever the store says.
    let dave = s.pki.user("dave");
    user_cli(&config, &["disable", "dave"]);
    let said = user_cli(&config, &["enable", "dave"]);
    assert!(said.contains("stays disabled"), "{said}");
    std::thread::sleep(SECOND);
    let r = sign_in(&s.cg, &d, &dave);
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("dave is disabled"), "{}", r.body);
}

#[test]
fn a_lock_reaches_both_redis_replicas_within_a_second_and_enable_lifts_it_on_both() {
    let Some(r) = Replicas::start("10s") else {
        return;
    };
    let d = r.dir.path().to_path_buf();
    let config = r.a.dir.join("certgate.toml");
    let bob = r.pki.user("bob");
    let alice_cookie = r.sign_in();
    let alice_bearer = r.bearer();
    let bob_cookie = cookie(&sign_in(&r.a, &d, &bob));
    for cg in [&r.a, &r.b] {
        for credential in [
            &alice_cookie,
            &alice_bearer,
            &bob_cookie,
            &forwarded(&r.alice),
        ] {
            assert_eq!(check(cg, &d, credential), 200, "{credential}");
        }
    }

    let said = user_cli(&config, &["disable", "alice"]);
    assert!(said.contains("Redis"), "the CLI says where it went: {said}");
    within(SECOND, "the lock-out on both replicas", || {
        [&r.a, &r.b].iter().all(|cg| {
            check(cg, &d, &alice_cookie) == 401
                && check(cg, &d, &alice_bearer) == 401
                && check(cg, &d, &forwarded(&r.alice)) == 403
        })
    });
    for cg in [&r.a, &r.b] {
        assert_locked_out(cg, &d, &r.alice, &[&alice_cookie, &alice_bearer]);
        assert_eq!(check(cg, &d, &bob_cookie), 200, "bob untouched");
        assert_eq!(check(cg, &d, &forwarded(&bob)), 200, "bob untouched");
    }
    // A replica started now learns the lock from Redis.
    let c = r.replica("c");
    crate::replicas::ready_within(&c, Duration::from_secs(5));
    assert_locked_out(&c, &d, &r.alice, &[&alice_cookie, &alice_bearer]);

    user_cli(&config, &["enable", "alice"]);
    within(SECOND, "enable on both replicas", || {
        [&r.a, &r.b, &c]
            .iter()
            .all(|cg| sign_in(cg, &d, &r.alice).status == 200)
    });
    for cg in [&r.a, &r.b, &c] {
        let fresh = cookie(&sign_in(cg, &d, &r.alice));
        assert_eq!(check(cg, &d, &fresh), 200);
        assert_eq!(check(cg, &d, &alice_cookie), 401, "ended for good");
    }
}
