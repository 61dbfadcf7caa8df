//! Certificate serials as operators copy them. An external CA (made here with the openssl
//! command, as a company CA would be) picks serials with the top bit set, so each certificate's
//! DER carries a `00` sign byte that `openssl x509 -serial` does not print. A serial revoked in
//! any spelling ends the certificate and every token minted from it, on both stores.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::direct::cookie_value;
use crate::harness::certgate::{binary, mtls_config, Certgate};
use crate::harness::curl::Curl;
use crate::harness::pki::Pki;
use crate::harness::redis::Redis;
use crate::harness::require;

/// How an operator copies a certificate's serial.
type Spelling = dyn Fn(&Person) -> String;

/// A certificate of the external CA, as files.
struct Person {
    user: String,
    cert: PathBuf,
    key: PathBuf,
    pem: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA made with openssl, issuing client certificates with the serials asked for.
fn external_ca(dir: &Path) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "company-ca.key",
            "-out",
            "company-ca.pem",
            "-subj",
            "/CN=Company CA",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    dir.join("company-ca.pem")
}

fn person(dir: &Path, user: &str, serial_hex: &str) -> Person {
    let (key, csr, cert) = (
        format!("{user}.key"),
        format!("{user}.csr"),
        format!("{user}.pem"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={user}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "company-ca.pem",
            "-CAkey",
            "company-ca.key",
            "-set_serial",
            &format!("0x{serial_hex}"),
            "-days",
            "30",
            "-extfile",
            "client.ext",
            "-out",
            &cert,
        ],
    );
    Person {
        user: user.into(),
        cert: dir.join(&cert),
        key: dir.join(&key),
        pem: std::fs::read_to_string(dir.join(&cert)).unwrap(),
    }
}

/// The DER INTEGER content in lower case, sign byte included.
fn der_lower(p: &Person) -> String {
    format!("00{}", openssl_serial(p).to_ascii_lowercase())
}

/// As browsers and `openssl x509 -text` show it: bytes separated by colons.
fn colons(p: &Person) -> String {
    der_lower(p)
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

/// What `openssl x509 -noout -serial` prints, after `serial=`.
fn openssl_serial(p: &Person) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(&p.cert)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_string()
}

struct Stage {
    dir: tempfile::TempDir,
    server_ca: PathBuf,
    cg: Certgate,
    _redis: Option<Redis>,
}

impl Stage {
    fn curl(&self) -> Curl {
        Curl::new(self.dir.path()).cacert(&self.server_ca)
    }

    fn as_person(&self, p: &Person) -> Curl {
        self.curl().cert(&p.cert, &p.key)
    }

    fn verify(&self, credential: &str) -> u16 {
        self.curl()
            .header(credential)
            .header("X-Original-URL: https://app.example.test/")
            .get(&self.cg.http("/verify"))
            .status
    }

    /// The three credentials `/verify` takes, all minted from (or being) `p`'s certificate.
    fn credentials(&self, p: &Person) -> [String; 3] {
        let r = self.as_person(p).get(&self.cg.mtls("/auth"));
        assert_eq!(r.status, 200, "{r:?}");
        let cookie = format!(
            "Cookie: __Host-certgate={}",
            cookie_value(&r, "__Host-certgate")
        );
        let r = self.as_person(p).post(&self.cg.mtls("/token"), "");
        assert_eq!(r.status, 200, "{r:?}");
        let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let bearer = format!(
            "Authorization: Bearer {}",
            json["access_token"].as_str().unwrap()
        );
        let forwarded = format!(
            "X-SSL-Client-Cert: {}",
            percent_encoding::utf8_percent_encode(&p.pem, percent_encoding::NON_ALPHANUMERIC)
        );
        [cookie, bearer, forwarded]
    }

    fn revoke_cli(&self, serial: &str) -> (String, String) {
        let out = Command::new(binary())
            .args(["revoke", "--serial", serial, "--config"])
            .arg(self.dir.path().join("certgate.toml"))
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "{stdout}{stderr}");
        (stdout, stderr)
    }
}

fn stage(store: &str, with_redis: bool) -> Option<Stage> {
    if !require("curl") || !require("openssl") {
        return None;
    }
    if with_redis && (!require("redis-server") || !require("redis-cli")) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let client_ca = external_ca(dir.path());
    // The server certificate of the mTLS listener comes from another CA: only the client CA
    // bundle matters here.
    let server_pki = Pki::new(dir.path(), "Server CA");
    let server = server_pki.server(&["localhost", "127.0.0.1"]);
    let redis = with_redis.then(|| Redis::start(dir.path()));
    let store = match &redis {
        Some(r) => format!("{store}\nredis_url = \"{}\"", r.url()),
        None => store.to_string(),
    };
    let body = format!(
        r#"{head}[proxy]
trusted = ["127.0.0.1/32"]
[identity]
allow_unlisted = true
[[users]]
name = "carol"
groups = ["admins"]
[admin]
groups = ["admins"]
[access]
allow_unmatched = true
[store]
{store}
"#,
        head = mtls_config(&server, &client_ca),
    );
    let cg = Certgate::start(dir.path(), &body, true);
    let stage = Stage {
        server_ca: server_pki.ca_pem.clone(),
        dir,
        cg,
        _redis: redis,
    };
    crate::replicas::within(Duration::from_secs(5), "ready", || {
        stage.curl().get(&stage.cg.http("/readyz")).status == 200
    });
    Some(stage)
}

/// Every credential of `p` is refused within a second, and the certificate signs in no more.
fn assert_cut_off(s: &Stage, p: &Person, creds: &[String; 3], spelling: &str) {
    crate::replicas::within(Duration::from_secs(1), spelling, || {
        creds.iter().all(|c| s.verify(c) == 401)
    });
    let auth = s.as_person(p).get(&s.cg.mtls("/auth"));
    assert_eq!(auth.status, 495, "{spelling}: {auth:?}");
    assert!(auth.body.contains("revoked"), "{spelling}: {}", auth.body);
    let token = s.as_person(p).post(&s.cg.mtls("/token"), "");
    // RFC 6749 §5.2: a client that cannot authenticate is `invalid_client`.
    assert_eq!(token.status, 401, "{spelling}: {token:?}");
    assert!(token.body.contains("revoked"), "{spelling}: {}", token.body);
}

fn a_serial_with_the_top_bit_set_is_revoked_in_every_spelling(store: &str, with_redis: bool) {
    let Some(s) = stage(store, with_redis) else {
        return;
    };
    let dir = s.dir.path();
    // Top bit set: the DER integer is 00 9a …; openssl prints 9A….
    let serials = [
        "9A0000000000000000000000000000AB",
        "9A0000000000000000000000000001AB",
        "9A0000000000000000000000000002AB",
        "9A0000000000000000000000000003AB",
        "9A0000000000000000000000000004AB",
    ];
    let people: Vec<Person> = serials
        .iter()
        .enumerate()
        .map(|(i, serial)| person(dir, &format!("bob{i}"), serial))
        .collect();
    let carol = person(dir, "carol", "F00D");
    let spellings: [(&str, &Spelling); 4] = [
        ("openssl x509 -serial", &openssl_serial),
        ("colon-separated with the sign byte", &colons),
        ("0x-prefixed", &|p: &Person| {
            format!("0x{}", openssl_serial(p))
        }),
        ("DER content in lower case", &der_lower),
    ];
    for (p, (name, spell)) in people.iter().zip(spellings) {
        let creds = s.credentials(p);
        for c in &creds {
            assert_eq!(s.verify(c), 200, "{name}, before: {c}");
        }
        let spelling = spell(p);
        let (stdout, stderr) = s.revoke_cli(&spelling);
        let canonical = openssl_serial(p).to_ascii_lowercase();
        assert!(stdout.contains(&canonical), "{name}: {stdout}");
        assert!(
            stdout.contains(&format!("seen at sign-in from {}", p.user)),
            "{name}: {stdout}{stderr}"
        );
        assert_cut_off(&s, p, &creds, name);
    }

    // The admin API, from an admin's certificate, in the form openssl prints.
    let p = &people[4];
    let creds = s.credentials(p);
    let r = s.as_person(&carol).post(
        &s.cg.mtls("/admin/revoke"),
        &format!("serial={}", openssl_serial(p)),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(json["id"], openssl_serial(p).to_ascii_lowercase(), "{json}");
    assert_eq!(json["known"], true, "{json}");
    assert_cut_off(&s, p, &creds, "admin API");

    // A serial no certificate has is stored, and said plainly to be unknown.
    let (stdout, stderr) = s.revoke_cli("01:23");
    assert!(stdout.contains("certificate 0123"), "{stdout}");
    assert!(
        stderr.contains("no certificate certgate knows of has serial 0123"),
        "{stderr}"
    );
    let r = s
        .as_person(&carol)
        .post(&s.cg.mtls("/admin/revoke"), "serial=0x4567");
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        (json["id"].as_str(), &json["known"]),
        (Some("4567"), &serde_json::json!(false)),
        "{json}"
    );
    // Input that is no serial names the forms expected.
    let out = Command::new(binary())
        .args(["revoke", "--serial", "9A:ZZ", "--config"])
        .arg(dir.join("certgate.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("certgate revoke: --serial: `9A:ZZ`")
            && stderr.contains("give a certificate serial: hex as `openssl x509"),
        "{stderr}"
    );
}

#[test]
fn a_serial_revoked_as_operators_copy_it_ends_the_certificate_on_the_embedded_store() {
    a_serial_with_the_top_bit_set_is_revoked_in_every_spelling("backend = \"embedded\"", false);
}

#[test]
fn a_serial_revoked_as_operators_copy_it_ends_the_certificate_on_redis() {
    a_serial_with_the_top_bit_set_is_revoked_in_every_spelling("backend = \"redis\"", true);
}
