//! One revocation list: `certgate ca revoke` and `certgate revoke --serial` reach the same
//! places. A certificate of the built-in CA revoked either way is refused by every replica on
//! Redis within a second, shows as revoked on the status page, in `ca list` and in the expiry
//! gauge, and is listed in the CRL (`ca crl`, `/ca/crl.pem`) of every replica sharing the CA.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::direct::cookie_value;
use crate::harness::certgate::Certgate;
use crate::harness::curl::Curl;
use crate::harness::pki::Pki;
use crate::harness::redis::Redis;
use crate::harness::require;
use crate::replicas::{config, ready_within, within};

/// `certgate ARGS` run in `dir` (where `data` is the data directory); exit code and output.
fn certgate(dir: &Path, args: &[&str]) -> (i32, String) {
    crate::harness::certgate::run(dir, args)
}

fn serial_of(pem: &str) -> String {
    let der: rustls_pki_types::CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    certgate::cert::ClientCert::parse(&der)
        .unwrap()
        .serial
        .to_string()
}

/// The certificate as nginx forwards it.
fn forwarded(pem: &str) -> String {
    format!(
        "X-SSL-Client-Cert: {}",
        percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC)
    )
}

fn check(cg: &Certgate, dir: &Path, credential: &str) -> u16 {
    Curl::new(dir)
        .header(credential)
        .header("X-Original-URL: https://app.example.com/")
        .get(&cg.http("/verify"))
        .status
}

/// `openssl crl -text` of a PEM CRL file.
fn crl_text(path: &Path) -> String {
    let out = Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

fn row<'a>(list: &'a str, serial: &str) -> &'a str {
    list.lines()
        .find(|l| l.starts_with(serial))
        .unwrap_or_default()
}

#[test]
fn ca_revoke_and_revoke_serial_are_one_list_across_redis_replicas() {
    for tool in ["redis-server", "redis-cli", "curl", "openssl"] {
        if !require(tool) {
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (a_dir, b_dir) = (root.join("a"), root.join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    // The built-in CA in A's data directory issues alice a phone and a laptop certificate.
    assert_eq!(certgate(&a_dir, &["ca", "--data-dir", "data", "init"]).0, 0);
    for device in ["phone", "laptop"] {
        let args = [
            "ca",
            "--data-dir",
            "data",
            "issue",
            "--user",
            "alice",
            "--device",
            device,
            "--out",
            "out",
        ];
        assert_eq!(certgate(&a_dir, &args).0, 0);
    }
    let pem = |device: &str| {
        std::fs::read_to_string(a_dir.join(format!("out/alice-{device}.pem"))).unwrap()
    };
    let (phone, laptop) = (pem("phone"), pem("laptop"));
    let (phone_serial, laptop_serial) = (serial_of(&phone), serial_of(&laptop));

    let redis = Redis::start(root);
    let server = Pki::new(root, "Server CA").server(&["localhost", "auth.example.com"]);
    let body = config(&a_dir.join("data/ca.pem"), &server, &redis.url(), "10s");
    let a = Certgate::start(&a_dir, &body, false);
    // B shares the CA (its certificate, key and a consistent copy of the database with what
    // it issued, as an operator copies them) and the signing keys, but not A's list of
    // revoked certificates (nothing is revoked yet): what it knows of revocations, it learns
    // from Redis.
    for file in ["ca.pem", "ca.key"] {
        copy(
            &a_dir.join("data").join(file),
            &b_dir.join("data").join(file),
        );
    }
    certgate::db::Db::open(&a_dir.join("data"))
        .unwrap()
        .backup(&b_dir.join("data").join(certgate::db::FILE))
        .unwrap();
    for key in std::fs::read_dir(a_dir.join("data/keys")).unwrap() {
        let key = key.unwrap();
        copy(&key.path(), &b_dir.join("data/keys").join(key.file_name()));
    }
    let b = Certgate::start(&b_dir, &body, false);
    for cg in [&a, &b] {
        ready_within(cg, Duration::from_secs(5));
    }
    let sign_in = |cg: &Certgate, pem: &str| {
        let r = Curl::new(root)
            .header(&forwarded(pem))
            .get(&cg.http("/auth"));
        assert_eq!(r.status, 200, "{r:?}");
        format!(
            "Cookie: __Host-certgate={}",
            cookie_value(&r, "__Host-certgate")
        )
    };
    let phone_cookie = sign_in(&b, &phone);
    let laptop_cookie = sign_in(&b, &laptop);
    for cg in [&a, &b] {
        assert_eq!(check(cg, root, &forwarded(&phone)), 200);
        assert_eq!(check(cg, root, &phone_cookie), 200);
    }

    // `ca revoke` on A's host: both replicas refuse the phone within a second.
    let (code, out) = certgate(
        &a_dir,
        &["ca", "revoke", &phone_serial, "--config", "certgate.toml"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Redis"), "it says where it went: {out}");
    within(Duration::from_secs(1), "ca revoke on both replicas", || {
        [&a, &b].iter().all(|cg| {
            check(cg, root, &forwarded(&phone)) == 401 && check(cg, root, &phone_cookie) == 401
        })
    });
    assert_eq!(check(&b, root, &laptop_cookie), 200, "only the phone");
    let revoked_by_b_ca: i64 = certgate::db::Db::open(&b_dir.join("data"))
        .unwrap()
        .read(|c| c.query_row("SELECT count(*) FROM ca_revoked", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(revoked_by_b_ca, 0, "B learnt it from Redis alone");
    // B's status page, expiry gauge, `ca list` and CRLs say so.
    let page = Curl::new(root)
        .header(&laptop_cookie)
        .header("Accept: text/html")
        .get(&b.http("/"));
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("phone: revoked"), "{}", page.body);
    assert!(
        page.body.contains("laptop (this sign-in): valid until"),
        "{}",
        page.body
    );
    let metrics = Curl::new(root).get(&b.metrics("/metrics")).body;
    let gauge = |device: &str| {
        metrics.lines().any(|l| {
            l.starts_with("certgate_client_cert_days_to_expiry{")
                && l.contains(&format!("device=\"{device}\""))
        })
    };
    assert!(gauge("laptop") && !gauge("phone"), "{metrics}");
    assert!(
        metrics.contains("certgate_revoked_serials 1\n"),
        "{metrics}"
    );
    let (code, list) = certgate(&b_dir, &["ca", "list", "--config", "certgate.toml"]);
    assert_eq!(code, 0, "{list}");
    assert!(row(&list, &phone_serial).ends_with("revoked"), "{list}");
    assert!(row(&list, &laptop_serial).ends_with("valid"), "{list}");
    let (code, out) = certgate(
        &b_dir,
        &["ca", "crl", "--out", "crl.pem", "--config", "certgate.toml"],
    );
    assert_eq!(code, 0, "{out}");
    let text = crl_text(&b_dir.join("crl.pem"));
    assert!(
        text.contains(&phone_serial) && !text.contains(&laptop_serial),
        "{text}"
    );

    // `certgate revoke --serial` from B's host: A's `ca list`, `ca crl` and served CRL list it.
    let (code, out) = certgate(
        &b_dir,
        &[
            "revoke",
            "--serial",
            &laptop_serial,
            "--config",
            "certgate.toml",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("issued by the built-in CA to alice"), "{out}");
    within(Duration::from_secs(1), "the served CRL of A", || {
        let served = Curl::new(root).get(&a.http("/ca/crl.pem"));
        assert_eq!(served.status, 200, "{served:?}");
        std::fs::write(root.join("served.pem"), &served.body).unwrap();
        let text = crl_text(&root.join("served.pem"));
        text.contains(&laptop_serial) && text.contains(&phone_serial)
    });
    let (_, list) = certgate(&a_dir, &["ca", "list", "--config", "certgate.toml"]);
    assert!(row(&list, &laptop_serial).ends_with("revoked"), "{list}");
    let (code, out) = certgate(
        &a_dir,
        &["ca", "crl", "--out", "crl.pem", "--config", "certgate.toml"],
    );
    assert_eq!(code, 0, "{out}");
    let text = crl_text(&a_dir.join("crl.pem"));
    assert!(
        text.contains(&laptop_serial) && text.contains(&phone_serial),
        "{text}"
    );
    assert_eq!(check(&a, root, &laptop_cookie), 401);

    // Without its config, `ca crl` cannot know what Redis holds: it refuses, it does not
    // print a CRL that leaves revocations out.
    let (code, out) = certgate(&a_dir, &["ca", "--data-dir", "data", "crl"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("keeps revocations in Redis"), "{out}");
}
