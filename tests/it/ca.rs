//! `certgate ca`: a CA that issues certificates people can install, in both PKCS#12 kinds.

use std::process::Command;

use crate::harness::certgate::{binary, Certgate};
use crate::harness::curl::Curl;
use crate::harness::pki::Pki;
use crate::harness::require;

fn ca(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(binary())
        .args(["ca", "--data-dir", "data"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
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
        list.contains(&parsed.serial) && list.contains("phone") && list.contains("bob"),
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
