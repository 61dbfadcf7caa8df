//! Upgrading from the files certgate kept before its database, and keeping the database
//! bounded. The fixture in `tests/fixtures/legacy-data` was written by the last certgate that
//! kept files (see `tests/fixtures/README.md`); the servers here are real processes.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::certgate::{run, Certgate};
use crate::harness::curl::Curl;
use crate::harness::pki::Pki;
use crate::harness::require;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// certgate on `d/data`, its mTLS listener serving a certificate of its own server CA, taking
/// client certificates of `bundle`.
fn start(d: &Path, bundle: &Path) -> (Certgate, Pki) {
    let pki = Pki::new(d, "Server CA");
    let server = pki.server(&["localhost"]);
    let body = format!(
        "public_url = \"https://localhost:{{MTLS_PORT}}\"\ndata_dir = \"data\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n[client_ca]\nbundle = \"{}\"\n[identity]\nallow_unlisted = true\n[access]\nallow_unmatched = true\n",
        server.cert.display(),
        server.key.display(),
        bundle.display()
    );
    (Certgate::start(d, &body, true), pki)
}

fn rows(db: &Path, table: &str) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn an_earlier_certgates_files_are_imported_at_its_first_start_and_kept_renamed() {
    if !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A CA made elsewhere issues the certificates this test signs in with; it becomes the
    // data directory's built-in CA (the fixture has no key).
    let maker = d.join("maker");
    std::fs::create_dir_all(&maker).unwrap();
    assert_eq!(run(d, &["ca", "init", "--data-dir", "maker"]).0, 0);
    for user in ["trent", "peggy"] {
        let (code, out) = run(
            d,
            &[
                "ca",
                "issue",
                "--data-dir",
                "maker",
                "--user",
                user,
                "--out",
                "out",
            ],
        );
        assert_eq!(code, 0, "{out}");
    }
    let data = d.join("data");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-data"),
        &data,
    );
    for file in ["ca.pem", "ca.key"] {
        std::fs::copy(maker.join(file), data.join(file)).unwrap();
    }
    // Dave's link, as if created a moment ago (its secret is in tests/fixtures/README.md).
    let dave =
        data.join("enroll/6d6decd47c8fce8f9185cb99c8e6dcec0fdc26ecde3c2525dc3593d3867eed87.json");
    let record = std::fs::read_to_string(&dave).unwrap();
    std::fs::write(
        &dave,
        record.replace("1796627993", &(now() + 3600).to_string()),
    )
    .unwrap();

    let (cg, server_pki) = start(d, &data.join("ca.pem"));
    let db = data.join("certgate.db");
    assert_eq!(rows(&db, "revocations"), 9, "{}", cg.logs());
    assert_eq!(rows(&db, "ca_issued"), 3);
    assert_eq!(rows(&db, "ca_revoked"), 1);
    assert!(
        cg.logs().contains(
            "9 revocations, 3 issued certificates, 1 revoked certificates, 2 enrollment links"
        ),
        "{}",
        cg.logs()
    );
    for name in [
        "revocations.jsonl",
        "ca/issued.jsonl",
        "ca/revoked.jsonl",
        "enroll",
    ] {
        assert!(!data.join(name).exists(), "{name} is still in use");
        assert!(
            data.join(format!("{name}.imported")).exists(),
            "{name} was not kept"
        );
    }

    // The lock of the old journal holds: trent is refused, peggy (locked, then let back in)
    // signs in.
    let sign_in = |user: &str| {
        Curl::new(d)
            .cacert(&server_pki.ca_pem)
            .cert(
                &d.join(format!("out/{user}.pem")),
                &d.join(format!("out/{user}.key")),
            )
            .header("Accept: text/html")
            .get(&cg.mtls("/auth"))
    };
    let trent = sign_in("trent");
    assert_eq!(trent.status, 403, "{trent:?}");
    assert!(trent.body.contains("locked"), "{}", trent.body);
    assert_eq!(sign_in("peggy").status, 200);

    // The CA's records: carol's certificate revoked, bob's device there.
    let (code, list) = run(d, &["ca", "list", "--data-dir", "data"]);
    assert_eq!(code, 0, "{list}");
    for (serial, user, status) in [
        ("1f980ad3781c673bc54d9b4bb577cb98", "alice", "valid"),
        ("074935b02fb941e0d7dceed005f217db", "bob", "valid"),
        ("23422654b38ab0451e85b11937fa98c3", "carol", "revoked"),
    ] {
        let line = list
            .lines()
            .find(|l| l.starts_with(serial))
            .unwrap_or_else(|| panic!("{serial} missing:\n{list}"));
        assert!(line.contains(user) && line.contains(status), "{line}");
    }
    assert!(list.contains("phone"), "{list}");

    // Dave's link works once; erin's had expired.
    let phone = || {
        Curl::new(d)
            .cacert(&server_pki.ca_pem)
            .header("Accept: text/html")
    };
    let link = cg.mtls("/enroll/Qmk99aXxgRTsYOnaV0anvw");
    assert_eq!(phone().get(&link).status, 200);
    let used = phone().post(&link, "kind=modern");
    assert_eq!(used.status, 200, "{used:?}");
    assert_eq!(
        phone().post(&link, "kind=modern").status,
        410,
        "a second use"
    );
    assert_eq!(
        phone()
            .get(&cg.mtls("/enroll/wDDrf4EbaxbOngbGqj6uBg"))
            .status,
        410
    );

    // A restart imports nothing again, and keeps everything.
    drop(cg);
    let (cg, _) = start(d, &data.join("ca.pem"));
    assert!(!cg.logs().contains("store_imported"), "{}", cg.logs());
    assert_eq!(rows(&db, "revocations"), 9);
}

#[test]
fn pruning_keeps_the_database_and_the_view_to_the_live_revocations() {
    if !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // 200,000 revoked token ids, as an upgraded certgate brings them: all but 1,000 of their
    // tokens have expired.
    const ALL: usize = 200_000;
    const LIVE: usize = 1_000;
    let now = now();
    let mut journal = String::with_capacity(ALL * 60);
    for i in 0..ALL {
        let until = if i < LIVE { now + 3600 } else { now - 3600 };
        journal.push_str(&format!(
            "{{\"kind\":\"jti\",\"id\":\"bench{i:017}\",\"until\":{until}}}\n"
        ));
    }
    std::fs::write(data.join("revocations.jsonl"), journal).unwrap();
    let pki = Pki::new(d, "Client CA");
    let (cg, _) = start(d, &pki.ca_pem);
    let db = data.join("certgate.db");

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = rows(&db, "revocations");
        let remembered = cg.metric("certgate_revoked_token_ids");
        if stored == LIVE as i64 && remembered == Some(LIVE as f64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {stored} rows, {remembered:?} remembered:\n{}",
            cg.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(cg.logs().contains("store_pruned"), "{}", cg.logs());
    // The file gave the pruned pages back: 1,000 rows need well under a megabyte (the
    // 200,000 took about 20).
    let size = |name: &str| std::fs::metadata(data.join(name)).map_or(0, |m| m.len());
    assert!(
        size("certgate.db") < 1 << 20,
        "{} bytes",
        size("certgate.db")
    );
    assert!(
        size("certgate.db-wal") <= 4 << 20,
        "write-ahead log {} bytes",
        size("certgate.db-wal")
    );
}

#[test]
fn a_database_from_a_newer_certgate_stops_serve_and_every_command_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("data")).unwrap();
    // A database this certgate made, then upgraded by a newer one.
    assert_eq!(
        run(d, &["revoke", "--data-dir", "data", "--user", "bob"]).0,
        0
    );
    let db = d.join("data/certgate.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let pki = Pki::new(d, "Client CA");
    std::fs::write(
        d.join("c.toml"),
        format!(
            "public_url = \"https://auth.example.test\"\ndata_dir = \"data\"\n[listen]\nhttp = \"127.0.0.1:0\"\nmetrics = \"\"\n[client_ca]\nbundle = \"{}\"\n",
            pki.ca_pem.display()
        ),
    )
    .unwrap();
    for args in [
        &["serve", "--config", "c.toml"][..],
        &["check-config", "--config", "c.toml"],
        &["revoke", "--data-dir", "data", "--user", "eve"],
        &["user", "disable", "eve", "--data-dir", "data"],
        &["backup", "copy.db", "--data-dir", "data"],
    ] {
        let (code, out) = run(d, args);
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(
            out.contains("data/certgate.db")
                && out.contains("schema version is 99")
                && out.contains("restore a backup"),
            "{args:?}: {out}"
        );
    }
    assert!(!d.join("copy.db").exists());
}
