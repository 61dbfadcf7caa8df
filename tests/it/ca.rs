//! `certgate ca`: a CA that issues certificates people can install, in both PKCS#12 kinds.

use std::process::Command;

use crate::harness::certgate::{binary, Certgate};
use crate::harness::curl::Curl;
use crate::harness::pki::Pki;
use crate::harness::require;

fn ca(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let all: Vec<&str> = ["ca", "--data-dir", "data"]
        .iter()
        .chain(args)
        .copied()
        .collect();
    crate::harness::certgate::run(dir, &all)
}

fn password(issue_output: &str) -> String {
    issue_output
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .unwrap()
        .trim()
        .to_string()
}

fn pkcs12_info(path: &std::path::Path, password: &str, legacy: bool) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.arg("pkcs12");
    if legacy {
        cmd.arg("-legacy");
    }
    let out = cmd
        .args(["-info", "-noout", "-in"])
        .arg(path)
        .arg("-passin")
        .arg(format!("pass:{password}"))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn ca_issues_modern_and_legacy_pkcs12_that_log_in() {
    if !require("openssl") || !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out) = ca(d, &["init", "--name", "Family CA"]);
    assert_eq!(code, 0, "{out}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(d.join("data/ca.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let (code, out) = ca(d, &["init"]);
    assert_eq!(code, 1, "a second init must not replace the CA: {out}");
    assert!(out.contains("a CA exists already"), "{out}");

    let (code, legacy_out) = ca(
        d,
        &[
            "issue",
            "--user",
            "alice",
            "--device",
            "phone",
            "--out",
            "out",
            "--p12",
            "out/alice-phone.p12",
            "--legacy",
        ],
    );
    assert_eq!(code, 0, "{legacy_out}");
    let (code, modern_out) = ca(
        d,
        &[
            "issue",
            "--user",
            "bob",
            "--days",
            "30",
            "--out",
            "out",
            "--p12",
            "out/bob.p12",
        ],
    );
    assert_eq!(code, 0, "{modern_out}");

    // The algorithms are read back from OpenSSL 3, not assumed.
    let (ok, info) = pkcs12_info(&d.join("out/alice-phone.p12"), &password(&legacy_out), true);
    assert!(ok, "{info}");
    assert!(info.contains("MAC: sha1"), "{info}");
    assert!(
        info.contains("PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC"),
        "{info}"
    );
    assert!(
        info.contains("Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"),
        "{info}"
    );
    let (ok, info) = pkcs12_info(&d.join("out/bob.p12"), &password(&modern_out), false);
    assert!(ok, "{info}");
    assert!(info.contains("MAC: sha256"), "{info}");
    assert!(info.contains("PBES2, PBKDF2, AES-256-CBC"), "{info}");
    let (ok, _) = pkcs12_info(&d.join("out/bob.p12"), "wrong", false);
    assert!(!ok, "a wrong password must not open it");

    // The user and device are in the subject and SAN.
    let pem = std::fs::read_to_string(d.join("out/alice-phone.pem")).unwrap();
    let der: rustls_pki_types::CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    let parsed = certgate::cert::ClientCert::parse(&der).unwrap();
    assert_eq!(parsed.common_name.as_deref(), Some("alice"));
    assert!(
        parsed.uris.contains(&"urn:certgate:user:alice".to_string()),
        "{:?}",
        parsed.uris
    );
    assert!(
        parsed
            .uris
            .contains(&"urn:certgate:device:phone".to_string()),
        "{:?}",
        parsed.uris
    );

    // `ca list` shows both.
    let (code, list) = ca(d, &["list"]);
    assert_eq!(code, 0, "{list}");
    assert!(
        list.contains(parsed.serial.as_str()) && list.contains("phone") && list.contains("bob"),
        "{list}"
    );
    assert_eq!(
        list.lines().filter(|l| l.contains("valid")).count(),
        2,
        "{list}"
    );

    // curl logs in with each kind at certgate, whose bundle is this CA.
    let pki = Pki::new(d, "Server CA");
    let server = pki.server(&["localhost"]);
    let body = format!(
        "public_url = \"https://localhost:{{MTLS_PORT}}\"\ndata_dir = \"data\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n[client_ca]\nbundle = \"{}\"\n[identity]\nallow_unlisted = true\n[access]\nallow_unmatched = true\n",
        server.cert.display(),
        server.key.display(),
        d.join("data/ca.pem").display()
    );
    let cg = Certgate::start(d, &body, true);
    for (file, pw, user) in [
        ("out/alice-phone.p12", password(&legacy_out), "alice"),
        ("out/bob.p12", password(&modern_out), "bob"),
    ] {
        let r = Curl::new(d)
            .cacert(&pki.ca_pem)
            .arg("--cert-type")
            .arg("P12")
            .arg("--cert")
            .arg(format!("{}:{pw}", d.join(file).display()))
            .get(&cg.mtls("/auth"));
        assert_eq!(r.status, 200, "{file}: {r:?}");
        assert!(
            r.body.contains(&format!("signed in as {user}")),
            "{file}: {}",
            r.body
        );
    }
}

#[test]
fn ca_imports_an_existing_ca_and_refuses_a_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(d, "Existing CA");
    std::fs::write(d.join("existing.key"), &pki.ca.key_pem).unwrap();
    let leaf = pki.user("mallory");
    let (code, out) = ca(
        d,
        &[
            "init",
            "--import-cert",
            &leaf.cert.display().to_string(),
            "--import-key",
            &leaf.key.display().to_string(),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a CA certificate"), "{out}");
    let (code, out) = ca(
        d,
        &[
            "init",
            "--import-cert",
            &pki.ca_pem.display().to_string(),
            "--import-key",
            &d.join("existing.key").display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = ca(d, &["issue", "--user", "carol", "--out", "out"]);
    assert_eq!(code, 0, "{out}");
    let pem = std::fs::read_to_string(d.join("out/carol.pem")).unwrap();
    let der: rustls_pki_types::CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    let store = certgate::cert::TrustStore::new(&[pki.ca.cert_der.clone().into()]).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(store
        .verify(&certgate::cert::PresentedChain(vec![der]), now)
        .is_ok());
    let (code, out) = ca(d, &["issue", "--user", "x", "--days", "0"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--days"), "{out}");
}

pub fn serial_of(pem_path: &std::path::Path) -> String {
    let pem = std::fs::read_to_string(pem_path).unwrap();
    let der: rustls_pki_types::CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    certgate::cert::ClientCert::parse(&der)
        .unwrap()
        .serial
        .to_string()
}

fn login(
    d: &std::path::Path,
    cg: &Certgate,
    server_ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> crate::harness::curl::Response {
    Curl::new(d)
        .cacert(server_ca)
        .cert(cert, key)
        .header("Accept: text/html")
        .get(&cg.mtls("/auth"))
}

/// certgate on `d/data` (mTLS on localhost with a server CA of its own), taking client
/// certificates of `bundle`, letting in anyone it knows.
pub fn certgate_for(d: &std::path::Path, bundle: &std::path::Path, extra: &str) -> (Certgate, Pki) {
    let pki = Pki::new(d, "Server CA");
    let server = pki.server(&["localhost"]);
    let body = format!(
        "public_url = \"https://localhost:{{MTLS_PORT}}\"\ndata_dir = \"data\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n[client_ca]\nbundle = \"{}\"\n{extra}\n[identity]\nallow_unlisted = true\n[access]\nallow_unmatched = true\n",
        server.cert.display(),
        server.key.display(),
        bundle.display()
    );
    (Certgate::start(d, &body, true), pki)
}

#[test]
fn a_revoked_certificate_is_refused_at_once_and_nginx_takes_the_crl() {
    if !require("openssl") || !require("curl") || !require("nginx") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(ca(d, &["init"]).0, 0);
    assert_eq!(
        ca(
            d,
            &["issue", "--user", "alice", "--device", "phone", "--out", "out"]
        )
        .0,
        0
    );
    assert_eq!(ca(d, &["issue", "--user", "bob", "--out", "out"]).0, 0);
    assert_eq!(ca(d, &["issue", "--user", "carol", "--out", "out"]).0, 0);
    let (alice, alice_key, bob, bob_key) = (
        d.join("out/alice-phone.pem"),
        d.join("out/alice-phone.key"),
        d.join("out/bob.pem"),
        d.join("out/bob.key"),
    );
    let (carol, carol_key) = (d.join("out/carol.pem"), d.join("out/carol.key"));
    let (cg, server_pki) = certgate_for(d, &d.join("data/ca.pem"), "");
    assert_eq!(
        login(d, &cg, &server_pki.ca_pem, &alice, &alice_key).status,
        200
    );

    // Live credentials minted from alice's certificate before the revocation.
    let cookie = crate::direct::cookie_value(
        &login(d, &cg, &server_pki.ca_pem, &alice, &alice_key),
        "__Host-certgate",
    );
    let minted = Curl::new(d)
        .cacert(&server_pki.ca_pem)
        .cert(&alice, &alice_key)
        .post(&cg.mtls("/token"), "");
    let bearer = serde_json::from_str::<serde_json::Value>(&minted.body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let check = |header: &str| Curl::new(d).header(header).get(&cg.http("/verify")).status;
    assert_eq!(check(&format!("Cookie: __Host-certgate={cookie}")), 200);
    assert_eq!(check(&format!("Authorization: Bearer {bearer}")), 200);

    let serial = serial_of(&alice);
    let (code, out) = ca(d, &["revoke", &serial]);
    assert_eq!(code, 0, "{out}");
    // Its session and its bearer token stop within a second too (within 200 ms: checks on
    // every request look at the revocation files at most that often).
    crate::replicas::within(
        std::time::Duration::from_secs(1),
        "tokens of a revoked cert",
        || {
            check(&format!("Cookie: __Host-certgate={cookie}")) == 401
                && check(&format!("Authorization: Bearer {bearer}")) == 401
        },
    );
    let from_session = Curl::new(d)
        .cacert(&server_pki.ca_pem)
        .header(&format!("Cookie: __Host-certgate={cookie}"))
        .post(&cg.mtls("/token"), "");
    assert_eq!(
        from_session.status, 401,
        "a revoked session mints no token: {from_session:?}"
    );
    // At once: the very next login is refused, with a page that says why.
    let r = login(d, &cg, &server_pki.ca_pem, &alice, &alice_key);
    assert_eq!(r.status, 495, "{r:?}");
    assert!(r.body.contains("revoked"), "{}", r.body);
    assert_eq!(
        login(d, &cg, &server_pki.ca_pem, &bob, &bob_key).status,
        200
    );
    let (_, list) = ca(d, &["list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&serial) && l.ends_with("revoked")),
        "{list}"
    );
    assert_eq!(
        ca(d, &["revoke", "00ff"]).0,
        1,
        "an unknown serial is an error"
    );
    // A serial revoked in the revocation store (`certgate revoke`, as openssl prints it)
    // shows as revoked in `ca list` too, never as valid.
    let bob_serial = serial_of(&bob);
    let bob_line = |list: &str| {
        list.lines()
            .find(|l| l.starts_with(&bob_serial))
            .map(str::to_string)
            .unwrap_or_default()
    };
    assert!(bob_line(&ca(d, &["list"]).1).ends_with("valid"));
    let out = Command::new(binary())
        .args(["revoke", "--data-dir", "data", "--serial"])
        .arg(bob_serial.to_ascii_uppercase())
        .current_dir(d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(bob_line(&ca(d, &["list"]).1).ends_with("revoked"));
    // A serial no CA of certgate's issued is kept in the store, and stays out of the CRL.
    let out = Command::new(binary())
        .args(["revoke", "--data-dir", "data", "--serial", "0badcafe"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // The CRL, served and written, lists both serials (`ca revoke` and `certgate revoke
    // --serial`: one list) with a next-update, and not the stranger.
    let crl_text = |file: &str, form: &str| {
        let text = Command::new("openssl")
            .args(["crl", "-noout", "-text", "-inform", form, "-in"])
            .arg(d.join(file))
            .output()
            .unwrap();
        String::from_utf8_lossy(&text.stdout).to_string()
    };
    // The running certgate reads the store's news a few times a second.
    crate::replicas::within(std::time::Duration::from_secs(1), "the served CRL", || {
        let served = Curl::new(d).get(&cg.http("/ca/crl.pem"));
        assert_eq!(served.status, 200);
        std::fs::write(d.join("served.pem"), &served.body).unwrap();
        crl_text("served.pem", "PEM").contains(&bob_serial.to_ascii_uppercase())
    });
    let (code, out) = ca(d, &["crl", "--out", "crl.pem"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(ca(d, &["crl", "--der", "--out", "crl.der"]).0, 0);
    for (file, form) in [
        ("served.pem", "PEM"),
        ("crl.pem", "PEM"),
        ("crl.der", "DER"),
    ] {
        let text = crl_text(file, form);
        assert!(
            text.contains(&serial.to_ascii_uppercase())
                && text.contains(&bob_serial.to_ascii_uppercase())
                && text.contains("Next Update"),
            "{file}: {text}"
        );
        assert!(
            !text.to_ascii_lowercase().contains("0badcafe"),
            "{file}: {text}"
        );
    }

    // Real nginx accepts the CRL (ssl_crl) and refuses the revoked certificate too.
    std::fs::write(d.join("index.html"), "protected\n").unwrap();
    let port = crate::harness::free_port();
    let nginx_tls = server_pki.server(&["localhost"]);
    let conf = format!(
        "server {{\n listen 127.0.0.1:{port} ssl;\n ssl_certificate {sc};\n ssl_certificate_key {sk};\n ssl_client_certificate {ca};\n ssl_crl {crl};\n ssl_verify_client on;\n location / {{ root {root}; }}\n}}\n",
        sc = nginx_tls.cert.display(),
        sk = nginx_tls.key.display(),
        ca = d.join("data/ca.pem").display(),
        crl = d.join("crl.pem").display(),
        root = d.display()
    );
    let _nginx = crate::harness::nginx::Nginx::start(d, port, &conf);
    let url = format!("https://localhost:{port}/index.html");
    let ok = Curl::new(d)
        .cacert(&server_pki.ca_pem)
        .cert(&carol, &carol_key)
        .get(&url);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body, "protected\n");
    for (cert, key) in [(&alice, &alice_key), (&bob, &bob_key)] {
        let refused = Curl::new(d)
            .cacert(&server_pki.ca_pem)
            .cert(cert, key)
            .get(&url);
        assert_eq!(refused.status, 400, "{refused:?}");
        assert!(
            refused.body.contains("SSL certificate error"),
            "{}",
            refused.body
        );
    }
}

#[test]
fn crl_files_of_an_external_ca_are_enforced_reloaded_and_must_be_fresh() {
    if !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let external = Pki::new(d, "External CA");
    let alice = external.user("alice");
    let bob = external.user("bob");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let crl_path = d.join("external.crl");
    std::fs::write(&crl_path, external.ca.crl(&[], now, 7).unwrap().0).unwrap();
    let extra = format!("crl = [\"{}\"]", crl_path.display());
    let (cg, server_pki) = certgate_for(d, &external.ca_pem, &extra);
    assert_eq!(
        login(d, &cg, &server_pki.ca_pem, &alice.cert, &alice.key).status,
        200
    );

    // The file changes (as a cron job would replace it): the next login sees it.
    let serial = certgate::cert::ClientCert::parse(&alice.issued.cert_der)
        .unwrap()
        .serial
        .to_bytes();
    std::fs::write(
        &crl_path,
        external.ca.crl(&[(serial, now)], now, 7).unwrap().1,
    )
    .unwrap();
    let r = login(d, &cg, &server_pki.ca_pem, &alice.cert, &alice.key);
    assert_eq!(r.status, 495, "{r:?}");
    assert!(r.body.contains("revoked"), "{}", r.body);
    assert_eq!(
        login(d, &cg, &server_pki.ca_pem, &bob.cert, &bob.key).status,
        200
    );
    drop(cg);

    // An expired CRL refuses everyone of that CA, unless the danger_ key says otherwise.
    std::fs::write(
        &crl_path,
        external.ca.crl(&[], now - 10 * 86_400, 3).unwrap().0,
    )
    .unwrap();
    let (cg, server_pki) = certgate_for(d, &external.ca_pem, &extra);
    let r = login(d, &cg, &server_pki.ca_pem, &bob.cert, &bob.key);
    assert_eq!(r.status, 495, "{r:?}");
    assert!(r.body.contains("revocation list expired"), "{}", r.body);
    drop(cg);
    let (cg, server_pki) = certgate_for(
        d,
        &external.ca_pem,
        &format!("{extra}\ndanger_accept_expired_crl = true"),
    );
    assert_eq!(
        login(d, &cg, &server_pki.ca_pem, &bob.cert, &bob.key).status,
        200
    );
    drop(cg);

    // A CRL file that is not one is a configuration problem naming the key and the path.
    std::fs::write(&crl_path, "not a crl").unwrap();
    let config = d.join("bad.toml");
    std::fs::write(
        &config,
        format!(
            "public_url = \"https://a.example\"\n[client_ca]\nbundle = \"{}\"\n{extra}\n",
            external.ca_pem.display()
        ),
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("client_ca.crl") && err.contains("external.crl"),
        "{err}"
    );
}

/// Reads a QR code back from the terminal art `certgate enroll create` prints (light modules
/// drawn, dark ones blank, two module rows per text line).
fn decode_terminal_qr(output: &str) -> String {
    let art: Vec<Vec<char>> = output
        .lines()
        .filter(|l| l.chars().count() > 20 && l.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' ')))
        .map(|l| l.chars().collect())
        .collect();
    assert!(!art.is_empty(), "no QR code in:\n{output}");
    let width = art[0].len();
    let dark = |x: usize, y: usize| -> bool {
        let c = art
            .get(y / 2)
            .and_then(|row| row.get(x))
            .copied()
            .unwrap_or('█');
        let (top, bottom) = match c {
            '█' => (true, true),
            '▀' => (true, false),
            '▄' => (false, true),
            _ => (false, false),
        };
        !(if y % 2 == 0 { top } else { bottom })
    };
    let scale = 4;
    let mut image =
        rqrr::PreparedImage::prepare_from_bitmap(width * scale, width * scale, |x, y| {
            dark(x / scale, y / scale)
        });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code expected");
    grids[0].decode().unwrap().1
}

#[test]
fn an_enrollment_link_installs_a_certificate_once() {
    if !require("openssl") || !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(ca(d, &["init"]).0, 0);
    let (cg, server_pki) = certgate_for(d, &d.join("data/ca.pem"), "");
    let out = Command::new(binary())
        .args([
            "enroll",
            "create",
            "--data-dir",
            "data",
            "--user",
            "bob",
            "--device",
            "watch",
            "--public-url",
        ])
        .arg(cg.mtls(""))
        .current_dir(d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("https://"))
        .unwrap()
        .to_string();
    assert_eq!(decode_terminal_qr(&text), link, "the QR code is the link");

    // The phone has no certificate yet: the page explains, per platform, and offers both kinds.
    let phone = || {
        Curl::new(d)
            .cacert(&server_pki.ca_pem)
            .header("Accept: text/html")
    };
    let page = phone().get(&link);
    assert_eq!(page.status, 200, "{page:?}");
    for platform in [
        "iPhone",
        "Android 13 and older",
        "Wear OS",
        "Desktop browsers",
    ] {
        assert!(page.body.contains(platform), "{platform}: {}", page.body);
    }
    assert_eq!(phone().get(&link).status, 200, "looking is not using");

    let ready = phone().post(&link, "kind=legacy");
    assert_eq!(ready.status, 200, "{ready:?}");
    let shown = ready
        .body
        .split("<code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        shown.len(),
        22,
        "a one-time password is shown: {}",
        ready.body
    );
    let href = ready
        .body
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(href.starts_with(&cg.mtls("/enroll/download/")), "{href}");
    let file = phone().get(&href);
    assert_eq!(file.status, 200, "{file:?}");
    assert_eq!(file.header("content-type"), Some("application/x-pkcs12"));
    // The body went through curl as text; fetch the bytes properly for OpenSSL.
    assert_eq!(phone().get(&href).status, 410, "the download works once");

    // A second run of the whole flow to get the file's bytes intact (curl -o keeps them).
    let out = Command::new(binary())
        .args([
            "enroll",
            "create",
            "--data-dir",
            "data",
            "--user",
            "bob",
            "--device",
            "watch",
            "--public-url",
        ])
        .arg(cg.mtls(""))
        .current_dir(d)
        .output()
        .unwrap();
    let link2 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("https://"))
        .unwrap()
        .to_string();
    let ready = phone().post(&link2, "kind=legacy");
    let password = ready
        .body
        .split("<code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .to_string();
    let href = ready
        .body
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/");
    let p12 = d.join("bob-watch.p12");
    let status = Command::new("curl")
        .args(["-sS", "-o"])
        .arg(&p12)
        .arg("-w")
        .arg("%{http_code}")
        .arg("--cacert")
        .arg(&server_pki.ca_pem)
        .arg(&href)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "200");
    let (ok, info) = pkcs12_info(&p12, &password, true);
    assert!(
        ok && info.contains("pbeWithSHA1And3-KeyTripleDES-CBC") && info.contains("MAC: sha1"),
        "{info}"
    );
    let login = Curl::new(d)
        .cacert(&server_pki.ca_pem)
        .arg("--cert-type")
        .arg("P12")
        .arg("--cert")
        .arg(format!("{}:{password}", p12.display()))
        .get(&cg.mtls("/auth"));
    assert_eq!(login.status, 200, "{login:?}");
    assert!(login.body.contains("signed in as bob"), "{}", login.body);

    // Used links are gone, for looking and for using.
    for l in [&link, &link2] {
        assert_eq!(phone().get(l).status, 410);
        assert_eq!(phone().post(l, "kind=modern").status, 410);
    }
    let (_, list) = ca(d, &["list"]);
    assert_eq!(
        list.lines().filter(|l| l.contains("watch")).count(),
        2,
        "{list}"
    );

    // An expired link is gone too.
    let store = certgate::ca::enroll::EnrollStore::new(&d.join("data"));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = store
        .create(&certgate::ca::enroll::Enrollment {
            user: "eve".into(),
            device: None,
            days: 1,
            expires_at: now - 1,
        })
        .unwrap();
    assert_eq!(
        phone().get(&cg.mtls(&format!("/enroll/{expired}"))).status,
        410
    );
    assert_eq!(
        phone()
            .post(&cg.mtls(&format!("/enroll/{expired}")), "")
            .status,
        410
    );
}

#[test]
fn renew_issues_a_new_certificate_for_the_same_user_and_device() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(ca(d, &["init"]).0, 0);
    assert_eq!(
        ca(
            d,
            &["issue", "--user", "dana", "--device", "tablet", "--days", "10", "--out", "old"]
        )
        .0,
        0
    );
    let old = serial_of(&d.join("old/dana-tablet.pem"));
    let (code, out) = ca(d, &["issue", "--renew", &old, "--out", "new"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("dana (device tablet)"), "{out}");
    let new = serial_of(&d.join("new/dana-tablet.pem"));
    assert_ne!(old, new);
    let (_, list) = ca(d, &["list"]);
    assert_eq!(
        list.lines()
            .filter(|l| l.contains("dana") && l.contains("tablet"))
            .count(),
        2,
        "{list}"
    );
    let (code, out) = ca(d, &["issue", "--renew", "00ff"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--renew"), "{out}");
}

#[test]
fn admins_create_enrollment_links_on_a_page() {
    if !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(ca(d, &["init"]).0, 0);
    assert_eq!(ca(d, &["issue", "--user", "carol", "--out", "out"]).0, 0);
    assert_eq!(ca(d, &["issue", "--user", "alice", "--out", "out"]).0, 0);
    let extra = "[admin]\ngroups = [\"admins\"]\n[[users]]\nname = \"carol\"\ngroups = [\"admins\"]\n[[users]]\nname = \"alice\"\ngroups = [\"family\"]";
    let (cg, server_pki) = certgate_for(d, &d.join("data/ca.pem"), extra);
    let cert = |user: &str| {
        (
            d.join(format!("out/{user}.pem")),
            d.join(format!("out/{user}.key")),
        )
    };
    let cookie_of = |user: &str| {
        let (c, k) = cert(user);
        let r = login(d, &cg, &server_pki.ca_pem, &c, &k);
        format!(
            "Cookie: __Host-certgate={}",
            crate::direct::cookie_value(&r, "__Host-certgate")
        )
    };
    // An admin's browser presents the certificate it signed in with on every request.
    let as_user = |user: &str| {
        let (c, k) = cert(user);
        Curl::new(d)
            .cacert(&server_pki.ca_pem)
            .cert(&c, &k)
            .header("Accept: text/html")
    };
    let origin = format!("Origin: {}", cg.mtls(""));
    let carol = cookie_of("carol");

    let form = as_user("carol")
        .header(&carol)
        .get(&cg.mtls("/admin/enroll"));
    assert_eq!(form.status, 200, "{form:?}");
    assert!(form.body.contains("name=\"user\""), "{}", form.body);
    let made = as_user("carol").header(&carol).header(&origin).post(
        &cg.mtls("/admin/enroll"),
        "user=bob&device=phone&minutes=5&days=30",
    );
    assert_eq!(made.status, 200, "{made:?}");
    assert!(
        made.body.contains("<svg"),
        "the page shows the QR code: {}",
        made.body
    );
    let link = made
        .body
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(link.starts_with(&cg.mtls("/enroll/")), "{link}");
    let phone = Curl::new(d)
        .cacert(&server_pki.ca_pem)
        .header("Accept: text/html");
    assert_eq!(phone.get(&link).status, 200, "the link works");

    // A leaked admin cookie alone is not enough: the certificate must be on the request too.
    let no_cert = Curl::new(d)
        .cacert(&server_pki.ca_pem)
        .header("Accept: text/html")
        .header(&carol);
    assert_eq!(no_cert.get(&cg.mtls("/admin/enroll")).status, 403);
    // A cookie with somebody else's certificate is not enough either.
    assert_eq!(
        as_user("alice")
            .header(&carol)
            .get(&cg.mtls("/admin/enroll"))
            .status,
        403
    );
    // Posts come from certgate's own origin only; a replay without Origin is refused.
    let replay = as_user("carol")
        .header(&carol)
        .post(&cg.mtls("/admin/enroll"), "user=mallory");
    assert_eq!(replay.status, 403, "{replay:?}");
    let cross = as_user("carol")
        .header(&carol)
        .header("Origin: https://evil.example")
        .post(&cg.mtls("/admin/enroll"), "user=mallory");
    assert_eq!(cross.status, 403, "{cross:?}");
    let bad = as_user("carol")
        .header(&carol)
        .header(&origin)
        .post(&cg.mtls("/admin/enroll"), "user=x&minutes=99999");
    assert_eq!(bad.status, 400, "{bad:?}");
    let bad_device = as_user("carol")
        .header(&carol)
        .header(&origin)
        .post(&cg.mtls("/admin/enroll"), "user=x&device=a%2Cb");
    assert_eq!(bad_device.status, 400, "{bad_device:?}");

    let alice = cookie_of("alice");
    assert_eq!(
        as_user("alice")
            .header(&alice)
            .get(&cg.mtls("/admin/enroll"))
            .status,
        403
    );
    let nobody = Curl::new(d)
        .cacert(&server_pki.ca_pem)
        .header("Accept: text/html")
        .get(&cg.mtls("/admin/enroll"));
    assert_eq!(nobody.status, 302, "{nobody:?}");
    assert!(
        nobody
            .header("location")
            .unwrap_or("")
            .contains("/auth?rd="),
        "{nobody:?}"
    );
    // Pages cannot be framed.
    assert_eq!(form.header("x-frame-options"), Some("DENY"));
}

#[test]
fn expiry_shows_on_the_status_page_and_in_metrics() {
    if !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(ca(d, &["init"]).0, 0);
    assert_eq!(
        ca(
            d,
            &["issue", "--user", "alice", "--device", "phone", "--days", "10", "--out", "out"]
        )
        .0,
        0
    );
    assert_eq!(ca(d, &["issue", "--user", "bob", "--out", "out"]).0, 0);
    let (cg, server_pki) = certgate_for(d, &d.join("data/ca.pem"), "");
    let browser = || {
        Curl::new(d)
            .cacert(&server_pki.ca_pem)
            .header("Accept: text/html")
    };
    let cookie_of = |stem: &str| {
        let r = login(
            d,
            &cg,
            &server_pki.ca_pem,
            &d.join(format!("out/{stem}.pem")),
            &d.join(format!("out/{stem}.key")),
        );
        format!(
            "Cookie: __Host-certgate={}",
            crate::direct::cookie_value(&r, "__Host-certgate")
        )
    };

    let alice = browser()
        .header(&cookie_of("alice-phone"))
        .get(&cg.mtls("/"));
    assert_eq!(alice.status, 200, "{alice:?}");
    assert!(alice.body.contains("Signed in as alice"), "{}", alice.body);
    assert!(
        alice.body.contains("phone (this sign-in): expires on")
            && alice.body.contains("Renew it soon"),
        "{}",
        alice.body
    );
    assert!(
        alice
            .body
            .replace("&#x2f;", "/")
            .contains(&format!("action=\"{}\"", cg.mtls("/logout"))),
        "{}",
        alice.body
    );
    let bob = browser().header(&cookie_of("bob")).get(&cg.mtls("/"));
    assert!(
        bob.body.contains("valid until") && !bob.body.contains("Renew"),
        "{}",
        bob.body
    );
    let nobody = browser().get(&cg.mtls("/"));
    assert_eq!(nobody.status, 302, "{nobody:?}");

    let metrics = Curl::new(d).get(&cg.metrics("/metrics")).body;
    let value = |user: &str| -> i64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "certgate_client_cert_days_to_expiry{{user=\"{user}\""
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no gauge for {user}:\n{metrics}"))
    };
    assert!((9..=10).contains(&value("alice")), "{metrics}");
    assert!((364..=365).contains(&value("bob")), "{metrics}");
    assert!(metrics.contains("device=\"phone\""), "{metrics}");
    let bob_serial = serial_of(&d.join("out/bob.pem"));
    assert_eq!(ca(d, &["revoke", &bob_serial]).0, 0);
    let metrics = Curl::new(d).get(&cg.metrics("/metrics")).body;
    assert!(
        !metrics.contains("user=\"bob\""),
        "revoked certificates leave the gauge:\n{metrics}"
    );
}

#[test]
fn an_ed25519_ca_issues_certificates_certgate_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out) = ca(d, &["init", "--key-type", "ed25519"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(ca(d, &["issue", "--user", "erin", "--out", "out"]).0, 0);
    let ca_pem = std::fs::read_to_string(d.join("data/ca.pem")).unwrap();
    let ca_der: rustls_pki_types::CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(ca_pem.as_bytes()).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    assert_eq!(
        parsed.signature_algorithm.algorithm.to_id_string(),
        "1.3.101.112",
        "Ed25519"
    );
    let pem = std::fs::read_to_string(d.join("out/erin.pem")).unwrap();
    let der: rustls_pki_types::CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    let store = certgate::cert::TrustStore::new(&[ca_der]).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(store
        .verify(&certgate::cert::PresentedChain(vec![der]), now)
        .is_ok());
}

#[test]
fn unreadable_revocations_fail_closed() {
    if !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(ca(d, &["init"]).0, 0);
    assert_eq!(ca(d, &["issue", "--user", "alice", "--out", "out"]).0, 0);
    assert_eq!(ca(d, &["issue", "--user", "bob", "--out", "out"]).0, 0);
    let bob_serial = serial_of(&d.join("out/bob.pem"));
    assert_eq!(ca(d, &["revoke", &bob_serial]).0, 0);
    let (alice, alice_key) = (d.join("out/alice.pem"), d.join("out/alice.key"));
    let (cg, server_pki) = certgate_for(d, &d.join("data/ca.pem"), "");
    assert_eq!(
        login(d, &cg, &server_pki.ca_pem, &alice, &alice_key).status,
        200
    );

    let gauge = |metrics: &str, user: &str| {
        metrics.lines().any(|l| {
            l.starts_with("certgate_client_cert_days_to_expiry{")
                && l.contains(&format!("user=\"{user}\""))
        })
    };
    let metrics = Curl::new(d).get(&cg.metrics("/metrics")).body;
    assert!(
        gauge(&metrics, "alice") && !gauge(&metrics, "bob"),
        "{metrics}"
    );

    // The CA's revocation list is damaged while certgate runs (a row that is no serial, as a
    // hand edit leaves it): nobody gets in (503: certgate's state is unknown, the certificate
    // is not at fault), nobody revoked slips through, and the log says why.
    let data = d.join("data");
    let db = certgate::db::Db::open(&data).unwrap();
    let saved = d.join("saved.db");
    db.backup(&saved).unwrap();
    let broken_row = |sql: &str| {
        assert_eq!(db.write(|tx| tx.execute(sql, [])).unwrap(), 1, "{sql}");
    };
    broken_row("INSERT INTO ca_revoked (serial, revoked_at) VALUES ('{broken', 1)");

    // Every display says "unknown" meanwhile, never "valid": `ca list`, and the expiry gauge
    // leaves out what it cannot vouch for. bob stays revoked: `ca revoke` put him in the
    // revocation store too, and revoked by any list wins.
    let (code, list) = ca(d, &["list"]);
    assert_eq!(code, 0, "{list}");
    let row = |user: &str| {
        list.lines()
            .find(|l| l.contains(&format!(" {user} ")))
            .map(str::to_string)
            .unwrap_or_default()
    };
    assert!(row("alice").ends_with(" unknown"), "{list}");
    assert!(row("bob").ends_with(" revoked"), "{list}");
    assert!(list.contains("every status is unknown"), "{list}");
    let metrics = Curl::new(d).get(&cg.metrics("/metrics")).body;
    assert!(
        metrics.contains("certgate_revocation_sources_ok 0"),
        "{metrics}"
    );
    assert!(
        !gauge(&metrics, "alice") && !gauge(&metrics, "bob"),
        "{metrics}"
    );
    let r = login(d, &cg, &server_pki.ca_pem, &alice, &alice_key);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("Temporarily unavailable"), "{}", r.body);
    assert!(
        cg.logs().contains(certgate::db::FILE) && cg.logs().contains("ca_revoked"),
        "the log names the file:\n{}",
        cg.logs()
    );
    assert!(
        login(
            d,
            &cg,
            &server_pki.ca_pem,
            &d.join("out/bob.pem"),
            &d.join("out/bob.key")
        )
        .status
            != 200
    );
    // Mended: service is back.
    broken_row("DELETE FROM ca_revoked WHERE serial = '{broken'");
    drop(db);
    assert_eq!(
        login(d, &cg, &server_pki.ca_pem, &alice, &alice_key).status,
        200
    );

    // /metrics names users and devices: only the metrics listener serves it, not even to a
    // trusted peer on the plain listener.
    assert_eq!(Curl::new(d).get(&cg.metrics("/metrics")).status, 200);
    assert_eq!(Curl::new(d).get(&cg.http("/metrics")).status, 404);
    assert_eq!(
        Curl::new(d)
            .cacert(&server_pki.ca_pem)
            .get(&cg.mtls("/metrics"))
            .status,
        404
    );
    // The database deleted under it: fails closed as well (what is written to a new file
    // would never be seen, and deleting it must not un-revoke).
    let db_file = data.join(certgate::db::FILE);
    std::fs::remove_file(&db_file).unwrap();
    assert_eq!(
        login(d, &cg, &server_pki.ca_pem, &alice, &alice_key).status,
        503
    );
    drop(cg);

    // At start, a damaged database keeps certgate from starting, with a message naming it.
    for f in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(data.join(format!("{}{f}", certgate::db::FILE)));
    }
    std::fs::write(&db_file, vec![b'x'; 4096]).unwrap();
    let out = Command::new(binary())
        .args(["serve", "--config"])
        .arg(d.join("certgate.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(certgate::db::FILE) && stderr.contains("restore it from a backup"),
        "{stderr}"
    );

    // Issuing into existing files is refused before anything is signed or recorded.
    std::fs::copy(&saved, &db_file).unwrap();
    assert!(ca(d, &["list"]).1.contains(" alice "), "restored");
    let before = ca(d, &["list"]).1;
    let (code, out) = ca(d, &["issue", "--user", "alice", "--out", "out"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("exists already"), "{out}");
    assert_eq!(ca(d, &["list"]).1, before, "nothing recorded");
}

/// A CA made by OpenSSL (SHA-1 key identifier) imported into certgate: its CRL must still
/// match the CA for nginx.
#[test]
fn the_crl_of_an_imported_openssl_ca_works_in_nginx() {
    if !require("openssl") || !require("curl") || !require("nginx") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=OpenSSL Family CA",
        ])
        .args(["-keyout", "imported.key", "-out", "imported.pem"])
        .args([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (code, out) = ca(
        d,
        &[
            "init",
            "--import-cert",
            "imported.pem",
            "--import-key",
            "imported.key",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(ca(d, &["issue", "--user", "alice", "--out", "out"]).0, 0);
    assert_eq!(ca(d, &["issue", "--user", "bob", "--out", "out"]).0, 0);
    assert_eq!(
        ca(d, &["revoke", &serial_of(&d.join("out/alice.pem"))]).0,
        0
    );
    assert_eq!(ca(d, &["crl", "--out", "crl.pem"]).0, 0);

    let server_pki = Pki::new(d, "Server CA");
    let tls = server_pki.server(&["localhost"]);
    std::fs::write(d.join("index.html"), "protected\n").unwrap();
    let port = crate::harness::free_port();
    let conf = format!(
        "server {{\n listen 127.0.0.1:{port} ssl;\n ssl_certificate {};\n ssl_certificate_key {};\n ssl_client_certificate {};\n ssl_crl {};\n ssl_verify_client on;\n location / {{ root {}; }}\n}}\n",
        tls.cert.display(),
        tls.key.display(),
        d.join("data/ca.pem").display(),
        d.join("crl.pem").display(),
        d.display()
    );
    let _nginx = crate::harness::nginx::Nginx::start(d, port, &conf);
    let url = format!("https://localhost:{port}/index.html");
    let get = |user: &str| {
        Curl::new(d)
            .cacert(&server_pki.ca_pem)
            .cert(
                &d.join(format!("out/{user}.pem")),
                &d.join(format!("out/{user}.key")),
            )
            .get(&url)
    };
    let bob = get("bob");
    assert_eq!(
        (bob.status, bob.body.as_str()),
        (200, "protected\n"),
        "{bob:?}"
    );
    assert_eq!(get("alice").status, 400);
}
