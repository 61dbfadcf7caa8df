//! A real browser: headless Chromium with a client certificate in its NSS database signs in
//! through real nginx (the shipped `config/proxies/nginx.conf`) and lands on the app; then
//! every page a person can meet is opened for real and saved as a screenshot under
//! `target/screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::harness::chromium::{Chromium, Identity, POLICY};
use crate::harness::pki::{CertFiles, Pki};
use crate::harness::require;
use crate::proxies::{Proxy, Stack};

/// The certificate as the `.p12` a person installs.
pub fn p12(dir: &Path, pki: &Pki, cert: &CertFiles, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.p12"));
    let status = Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:pw", "-in"])
        .arg(&cert.cert)
        .arg("-inkey")
        .arg(&cert.key)
        .arg("-certfile")
        .arg(&pki.ca_pem)
        .arg("-out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

/// A browser that trusts the stack's CA and holds this `.p12`.
fn holding(stack: &Stack, p12: &Path) -> Chromium {
    Chromium::start(
        &stack.pki.ca_pem,
        Some(Identity {
            p12,
            password: "pw",
        }),
    )
}

pub fn tools_present() -> bool {
    if !(require("chromium") && require("pk12util") && require("openssl")) {
        return false;
    }
    if !Path::new(POLICY).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{POLICY} is required under CI=true: run scripts/install-test-deps.sh"
        );
        eprintln!("SKIP: {POLICY} missing (scripts/install-test-deps.sh installs it)");
        return false;
    }
    true
}

#[test]
fn chromium_signs_in_through_nginx_and_every_page_is_readable() {
    if !tools_present() {
        return;
    }
    let Some(stack) = Stack::sso_with_rules(Proxy::Nginx) else {
        return;
    };
    let dir = stack.dir.path();
    let alice_p12 = p12(dir, &stack.pki, &stack.alice, "alice");
    let mut b = holding(&stack, &alice_p12);

    // The whole login: app → 302 to the sign-in host → certificate → cookie → back to the app.
    b.goto(&stack.app(0, "/hello?x=1"));
    assert_eq!(b.url(), stack.app(0, "/hello?x=1"));
    let text = b.text();
    assert!(
        text.contains("remote-user=[alice]") && text.contains("path=[/hello?x=1]"),
        "{text}"
    );
    b.screenshot("01-app-after-sign-in");
    // Single sign-on: the second app needs no new sign-in.
    b.goto(&stack.app(1, "/"));
    assert!(b.text().contains("remote-user=[alice]"), "{}", b.text());

    // The status page: who, groups, sessions, both log-out buttons.
    b.goto(&stack.auth("/"));
    let text = b.text();
    for want in [
        "Signed in as alice",
        "Groups: family",
        "Browser session (this one)",
        "Log out everywhere",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    b.screenshot("02-status");
    b.color_scheme("dark");
    let background = b.eval("getComputedStyle(document.body).backgroundColor");
    assert_eq!(background, json!("rgb(18, 18, 20)"), "dark mode");
    b.screenshot("03-status-dark");
    b.color_scheme("light");
    b.phone(true);
    let overflow = b.eval("document.documentElement.scrollWidth > window.innerWidth");
    assert_eq!(
        overflow,
        json!(false),
        "the page scrolls sideways on a phone"
    );
    b.screenshot("04-status-phone");
    b.phone(false);

    // Denied: nginx asks certgate for the page that names the rule and whom to ask.
    b.goto(&stack.app(0, "/admin/settings"));
    let text = b.text();
    assert!(text.contains("Access denied"), "{text}");
    assert!(
        text.contains("rule") && text.contains("carol (carol@example.com)"),
        "{text}"
    );
    b.screenshot("05-access-denied");

    // Log out everywhere, by clicking the button (a plain form post).
    b.goto(&stack.auth("/"));
    b.click("button[name=everywhere]");
    let text = b.text();
    assert!(
        text.contains("Signed out") && text.contains("every device"),
        "{text}"
    );
    b.screenshot("06-signed-out");

    // 503: the revocation list cannot be read, so nobody is let in, and the page says so.
    let db = certgate::db::Db::open(&dir.join("data")).unwrap();
    let revoked = |sql: &str, serial: &str| {
        db.write(|tx| tx.execute(sql, [serial])).unwrap();
    };
    revoked(
        "INSERT INTO ca_revoked (serial, revoked_at) VALUES (?1, 1)",
        "not a serial",
    );
    b.goto(&stack.auth("/auth"));
    let text = b.text();
    assert!(text.contains("Temporarily unavailable"), "{text}");
    b.screenshot("07-unavailable");
    revoked("DELETE FROM ca_revoked WHERE serial = ?1", "not a serial");
    drop(b);

    // No certificate at all: the help page names the likely cause and each platform.
    let mut bare = Chromium::start(&stack.pki.ca_pem, None);
    bare.goto(&stack.auth("/auth"));
    let text = bare.text();
    for want in [
        "No client certificate",
        "did not send one",
        "iPhone",
        "Android",
        "Wear OS",
        "Desktop",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    bare.screenshot("08-no-certificate");

    // 400: a request certgate cannot judge (an encoded slash), straight from a trusted peer.
    bare.extra_headers(json!({"X-Original-URL": "https://app.example.com/a%2Fb"}));
    bare.goto(&format!("http://127.0.0.1:{}/verify", stack.certgate_http));
    let text = bare.text();
    assert!(
        text.contains("Bad request") && text.contains("encoded"),
        "{text}"
    );
    bare.screenshot("09-bad-request");
    drop(bare);

    // A certificate from another authority: nginx names the family CA in its request, so
    // Chromium does not even offer it, and the person gets the help page, not an error.
    let other = Pki::new(dir, "Other CA");
    let stranger = other.user("alice");
    let stranger_p12 = p12(dir, &other, &stranger, "stranger");
    let mut wrong = holding(&stack, &stranger_p12);
    wrong.goto(&stack.auth("/auth"));
    assert!(
        wrong.text().contains("No client certificate"),
        "{}",
        wrong.text()
    );
    drop(wrong);

    // 495: the certificate of a lost phone, revoked by the built-in CA's list.
    let lost = stack.pki.user("alice");
    let serial = certgate::cert::ClientCert::parse(&lost.issued.cert_der)
        .unwrap()
        .serial;
    revoked(
        "INSERT INTO ca_revoked (serial, revoked_at) VALUES (?1, 1)",
        serial.as_str(),
    );
    let lost_p12 = p12(dir, &stack.pki, &lost, "lost");
    let mut phone = holding(&stack, &lost_p12);
    phone.goto(&stack.auth("/auth"));
    let text = phone.text();
    assert!(
        text.contains("Certificate not accepted")
            && text.contains("495")
            && text.contains("revoked"),
        "{text}"
    );
    phone.screenshot("10-certificate-not-accepted");
    drop(phone);

    // The admin's enrollment pages: carol (admins) creates a one-time link for bob's watch,
    // the link installs once, then says it is used up.
    let status = Command::new(crate::harness::certgate::binary())
        .args(["ca", "init", "--data-dir"])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let carol = stack.pki.user("carol");
    let carol_p12 = p12(dir, &stack.pki, &carol, "carol");
    let mut admin = holding(&stack, &carol_p12);
    admin.goto(&stack.auth("/admin/enroll"));
    assert!(admin.text().contains("Enroll a device"), "{}", admin.text());
    admin.eval("document.querySelector('input[name=user]').value = 'bob'");
    admin.eval("document.querySelector('input[name=device]').value = 'watch'");
    admin.screenshot("11-admin-enroll");
    admin.click("button[name=create]");
    let text = admin.text();
    assert!(text.contains("Enrollment link ready"), "{text}");
    let has_qr = admin.eval("!!document.querySelector('.qr svg')");
    assert_eq!(has_qr, json!(true), "the link page shows a QR code");
    admin.screenshot("12-enrollment-link");
    let link = admin.eval("document.querySelector('a.button').href");
    let link = link.as_str().unwrap().to_string();
    admin.goto(&link);
    let text = admin.text();
    assert!(text.contains("Modern") && text.contains("Legacy"), "{text}");
    admin.screenshot("13-enroll-device");
    admin.click("button[value=modern]");
    let text = admin.text();
    assert!(text.contains("Your certificate is ready"), "{text}");
    admin.screenshot("14-certificate-ready");
    admin.goto(&link);
    let text = admin.text();
    assert!(
        text.contains("Link no longer valid") && text.contains("410"),
        "{text}"
    );
    admin.screenshot("15-link-used");

    // The signed-in page when /auth has nowhere to go back to, and certgate's 404.
    admin.goto(&stack.auth("/auth"));
    assert!(
        admin.text().contains("You are signed in as carol"),
        "{}",
        admin.text()
    );
    admin.screenshot("16-signed-in");
    admin.goto(&stack.auth("/no-such-page"));
    assert!(admin.text().contains("Not found"), "{}", admin.text());
    admin.screenshot("17-not-found");
}
