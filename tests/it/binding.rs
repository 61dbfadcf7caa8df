//! Identities bound to their CA. With two CAs in `client_ca.bundle` either could issue
//! `CN=alice`; certgate refuses a configuration that leaves a user unbound, and refuses a
//! certificate of the wrong CA at `/auth`, `/token` and `/verify`.

use std::path::Path;
use std::process::Command;

use crate::harness::certgate::{binary, mtls_config, Certgate};
use crate::harness::curl::Curl;
use crate::harness::pki::{CertFiles, Pki};
use crate::harness::require;

fn check_config(dir: &Path, toml: &str) -> (i32, String) {
    let path = dir.join("certgate.toml");
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `sha256:AB:CD:…`, from what `openssl x509 -noout -fingerprint -sha256` prints.
fn fingerprint(pem: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", text.trim().split('=').nth(1).unwrap())
}

fn bundle(dir: &Path, cas: &[&Path]) -> std::path::PathBuf {
    let text: String = cas
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let path = dir.join("bundle.pem");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_config_refuses_two_cas_with_an_unbound_user_and_names_them() {
    if !require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let family = Pki::new(dir.path(), "Family CA");
    let company = Pki::new(dir.path(), "Company CA");
    let both = bundle(dir.path(), &[&family.ca_pem, &company.ca_pem]);
    let head = format!(
        "public_url = \"https://auth.example.com\"\ndata_dir = \"data\"\n[client_ca]\nbundle = \"{}\"\n",
        both.display()
    );
    let (code, err) = check_config(
        dir.path(),
        &format!(
            "{head}[identity]\nallow_unlisted = true\n[[users]]\nname = \"alice\"\n[[users]]\nname = \"bob\"\nca = \"Nope CA\"\n[[users]]\nname = \"carol\"\ndisabled = true\n"
        ),
    );
    assert_eq!(code, 2, "{err}");
    for want in [
        "users: client_ca.bundle holds 2 CAs (Family CA, Company CA), and any of them could issue a certificate for these users: alice, bob (bind each",
        "users[1].ca: no CA in client_ca.bundle is `Nope CA` (the bundle holds: Family CA, Company CA)",
        "identity.unlisted_ca: identity.allow_unlisted lets in users of any of the 2 CAs",
    ] {
        assert!(err.lines().any(|l| l.starts_with(want)), "missing `{want}` in:\n{err}");
    }
    assert!(
        !err.contains("carol"),
        "a disabled user signs in with no CA: {err}"
    );

    // Bound by name, by group (fingerprint as openssl prints it), or loosened by name.
    let (code, err) = check_config(
        dir.path(),
        &format!(
            "{head}[identity]\nallow_unlisted = true\nunlisted_ca = \"Company CA\"\n[identity.group_ca]\nstaff = \"{}\"\n[[users]]\nname = \"alice\"\nca = \"Family CA\"\n[[users]]\nname = \"bob\"\ngroups = [\"staff\"]\n",
            fingerprint(&company.ca_pem)
        ),
    );
    assert_eq!(code, 0, "{err}");
    for want in [
        "2 client CAs: each user signs in only with a certificate of their CA",
        "  alice: Family CA",
        "  bob: Company CA",
        "  users not listed: Company CA",
    ] {
        assert!(
            err.lines().any(|l| l == want),
            "missing `{want}` in:\n{err}"
        );
    }
    let (code, err) = check_config(
        dir.path(),
        &format!("{head}danger_any_ca_for_any_user = true\n[[users]]\nname = \"alice\"\n"),
    );
    assert_eq!(code, 0, "{err}");
    // One CA: nothing to bind.
    let (code, err) = check_config(
        dir.path(),
        &format!(
            "public_url = \"https://auth.example.com\"\n[client_ca]\nbundle = \"{}\"\n[[users]]\nname = \"alice\"\n",
            family.ca_pem.display()
        ),
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_built_in_ca_binds_the_users_it_issued() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ca = |args: &[&str]| {
        let out = Command::new(binary())
            .args(["ca", "--data-dir"])
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ca(&["init", "--name", "Home CA"]);
    ca(&[
        "issue",
        "--user",
        "carol",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let company = Pki::new(dir.path(), "Company CA");
    let both = bundle(dir.path(), &[&data.join("ca.pem"), &company.ca_pem]);
    let head = format!(
        "public_url = \"https://auth.example.com\"\ndata_dir = \"data\"\n[client_ca]\nbundle = \"{}\"\n[[users]]\nname = \"carol\"\n",
        both.display()
    );
    let (code, err) = check_config(dir.path(), &format!("{head}[[users]]\nname = \"dave\"\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("for these users: dave ("),
        "only dave is unbound: {err}"
    );
    let (code, err) = check_config(
        dir.path(),
        &format!("{head}[[users]]\nname = \"dave\"\nca = \"builtin\"\n"),
    );
    assert_eq!(code, 0, "{err}");
}

struct Stage {
    dir: tempfile::TempDir,
    family: Pki,
    cg: Certgate,
}

impl Stage {
    fn curl(&self) -> Curl {
        Curl::new(self.dir.path()).cacert(&self.family.ca_pem)
    }

    fn forwarded(&self, who: &CertFiles) -> u16 {
        let pem = percent_encoding::utf8_percent_encode(
            &who.issued.cert_pem,
            percent_encoding::NON_ALPHANUMERIC,
        );
        self.curl()
            .header(&format!("X-SSL-Client-Cert: {pem}"))
            .header("X-Original-URL: https://app.example.test/")
            .get(&self.cg.http("/verify"))
            .status
    }
}

#[test]
fn a_certificate_of_the_wrong_ca_signs_nobody_in() {
    if !require("curl") || !require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let family = Pki::new(dir.path(), "Family CA");
    let company = Pki::new(dir.path(), "Company CA");
    let server = family.server(&["localhost", "127.0.0.1"]);
    let both = bundle(dir.path(), &[&family.ca_pem, &company.ca_pem]);
    let body = format!(
        r#"{head}[proxy]
trusted = ["127.0.0.1/32"]
[identity.group_ca]
staff = "{company_fp}"
[[users]]
name = "alice"
groups = ["admins"]
ca = "Family CA"
[[users]]
name = "bob"
groups = ["staff"]
[access]
allow_unmatched = true
"#,
        head = mtls_config(&server, &both),
        company_fp = fingerprint(&company.ca_pem),
    );
    let cg = Certgate::start(dir.path(), &body, true);
    let s = Stage { dir, family, cg };
    let real_alice = s.family.user("alice");
    let forged_alice = company.user("alice");
    let real_bob = company.user("bob");
    let forged_bob = s.family.user("bob");

    for (name, who, ok) in [
        ("alice of Family CA", &real_alice, true),
        ("bob of Company CA (group staff)", &real_bob, true),
        ("alice of Company CA", &forged_alice, false),
        ("bob of Family CA", &forged_bob, false),
    ] {
        let as_who = || s.curl().cert(&who.cert, &who.key);
        let auth = as_who().get(&s.cg.mtls("/auth"));
        let token = as_who().post(&s.cg.mtls("/token"), "");
        let verify = s.forwarded(who);
        if ok {
            assert_eq!(
                (auth.status, token.status, verify),
                (200, 200, 200),
                "{name}: {auth:?}"
            );
        } else {
            assert_eq!(
                (auth.status, token.status, verify),
                (403, 403, 403),
                "{auth:?} {token:?}"
            );
            assert!(
                auth.body.contains("this one was issued by"),
                "{}",
                auth.body
            );
        }
    }
    let r = s
        .curl()
        .cert(&forged_alice.cert, &forged_alice.key)
        .get(&s.cg.mtls("/auth"));
    assert!(
        r.body
            .contains("certificates come from Family CA; this one was issued by Company CA"),
        "{}",
        r.body
    );
}

/// Tokens name the CA their certificate chained to: a user bound to another CA later (a
/// SIGHUP, an upgrade) loses the sessions and bearer tokens that CA's certificate got.
#[test]
fn tokens_of_a_certificate_of_the_wrong_ca_stop_working_when_the_user_is_bound() {
    if !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let family = Pki::new(dir.path(), "Family CA");
    let company = Pki::new(dir.path(), "Company CA");
    let server = family.server(&["localhost", "127.0.0.1"]);
    let both = bundle(dir.path(), &[&family.ca_pem, &company.ca_pem]);
    let config = |binding: &str| {
        format!(
            "{}{binding}\n[access]\nallow_unmatched = true\n",
            mtls_config(&server, &both)
        )
    };
    let loose = config("danger_any_ca_for_any_user = true\n[[users]]\nname = \"alice\"");
    let cg = Certgate::start(dir.path(), &loose, true);
    let s = Stage { dir, family, cg };
    let tokens = |who: &CertFiles| {
        let curl = || s.curl().cert(&who.cert, &who.key);
        let r = curl().get(&s.cg.mtls("/auth"));
        assert_eq!(r.status, 200, "{r:?}");
        let cookie = crate::direct::cookie_value(&r, "__Host-certgate");
        let r = curl().post(&s.cg.mtls("/token"), "");
        assert_eq!(r.status, 200, "{r:?}");
        let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        [
            format!("Cookie: __Host-certgate={cookie}"),
            format!(
                "Authorization: Bearer {}",
                json["access_token"].as_str().unwrap()
            ),
        ]
    };
    let verify = |credential: &str| {
        s.curl()
            .header(credential)
            .header("X-Original-URL: https://app.example.test/")
            .get(&s.cg.http("/verify"))
            .status
    };
    let real = tokens(&s.family.user("alice"));
    let forged = tokens(&company.user("alice"));
    for c in real.iter().chain(&forged) {
        assert_eq!(verify(c), 200, "any CA may issue anyone: {c}");
    }
    s.cg.reload_with(&config("[[users]]\nname = \"alice\"\nca = \"Family CA\""));
    crate::replicas::within(std::time::Duration::from_secs(10), "the reload", || {
        forged.iter().all(|c| verify(c) == 403)
    });
    for c in &real {
        assert_eq!(verify(c), 200, "the real CA's tokens still work: {c}");
    }
}
