//! `certgate explain` on the shipped example configuration.

use certgate::jwt::{KeySet, Subject, TokenKind, Tokens};

use crate::harness::pki::Pki;

fn explain(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let config = dir.join("certgate.toml");
    let mut all = vec!["explain", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    crate::harness::certgate::run(dir, &all)
}

#[test]
fn explain_names_the_rule_that_decides() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Explain CA");
    std::fs::copy(&pki.ca_pem, dir.path().join("client-ca.pem")).unwrap();
    let example = include_str!("../../config/certgate.example.toml");
    std::fs::write(dir.path().join("certgate.toml"), example).unwrap();
    let line_of = |n: usize| {
        example
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with("[[rules]]"))
            .nth(n)
            .map(|(i, _)| i + 1)
            .unwrap()
    };
    let admin = "https://Grafana.Example.COM./admin/users";

    let (code, out) = explain(dir.path(), &["--url", admin, "--user", "bob"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("decision: deny") && out.contains("denied by rules[2]"),
        "{out}"
    );
    assert!(
        out.contains(&format!("certgate.toml:{}", line_of(2))),
        "{out}"
    );
    assert!(
        out.contains("host grafana.example.com path /admin/users"),
        "{out}"
    );

    let (code, out) = explain(dir.path(), &["--url", admin, "--user", "alice"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("allowed by rules[1]"), "{out}");

    let (code, out) = explain(
        dir.path(),
        &["--url", "https://grafana.example.com/manifest.json"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("public by rules[0]"), "{out}");
    let (code, out) = explain(
        dir.path(),
        &["--url", "https://grafana.example.com/x/../manifest.json"],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(". or .. segment") && out.contains("400"),
        "{out}"
    );
    // Split as /verify splits a proxy's original URL: a `:` before `://` is no URL.
    let (code, out) = explain(dir.path(), &["--url", "a:b://grafana.example.com/d/home"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("is not an absolute URL"), "{out}");
    let (code, out) = explain(
        dir.path(),
        &[
            "--url",
            "https://grafana.example.com:1#/x/admin",
            "--user",
            "bob",
        ],
    );
    assert_eq!(code, 2, "{out}");

    let (code, out) = explain(dir.path(), &["--url", "https://grafana.example.com/d/home"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("sign-in required"), "{out}");

    let (code, out) = explain(
        dir.path(),
        &["--url", "https://other.test/", "--user", "alice"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no rule matched"), "{out}");

    let (code, out) = explain(
        dir.path(),
        &[
            "--url",
            "https://grafana.example.com/admin%2Fx",
            "--user",
            "alice",
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("encoded slash") && out.contains("400"),
        "{out}"
    );

    let (code, out) = explain(dir.path(), &["--url", admin, "--user", "mallory"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not listed"), "{out}");

    // As the holder of a certificate, and of a scoped token.
    let alice = pki.user("alice");
    let (code, out) = explain(
        dir.path(),
        &["--url", admin, "--cert", &alice.cert.display().to_string()],
    );
    assert_eq!(code, 0, "{out}");
    let keys = KeySet::load_or_create(&dir.path().join("certgate-data/keys"), 1).unwrap();
    let tokens = Tokens::new(keys, "https://auth.example.com");
    let subject = Subject {
        user: "bob".into(),
        scope: Some("GET:grafana.example.com/d/**".into()),
        ..Subject::default()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (token, _) = tokens.mint(TokenKind::Bearer, &subject, 600, now).unwrap();
    let (code, out) = explain(
        dir.path(),
        &[
            "--url",
            "https://grafana.example.com/d/home",
            "--token",
            &token,
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = explain(
        dir.path(),
        &[
            "--url",
            "https://grafana.example.com/explore",
            "--token",
            &token,
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("insufficient_scope"), "{out}");

    // As /verify decides: a public path asks for no credential, so a bad one does not matter;
    // elsewhere a refused credential says so, and why.
    let manifest = "https://grafana.example.com/manifest.json";
    let (code, out) = explain(dir.path(), &["--url", manifest, "--token", "not-a-token"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("identity: refused") && out.contains("allow (public"),
        "{out}"
    );
    let (code, out) = explain(dir.path(), &["--url", admin, "--token", "not-a-token"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("because:  the credential was refused (see identity)"),
        "{out}"
    );
    // A bearer token limited to another app is refused here, as /verify refuses it.
    let elsewhere = Subject {
        user: "alice".into(),
        app_hosts: vec!["jellyfin.example.com".into()],
        ..Subject::default()
    };
    let (token, _) = tokens
        .mint(TokenKind::Bearer, &elsewhere, 600, now)
        .unwrap();
    let (code, out) = explain(dir.path(), &["--url", admin, "--token", &token]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("identity: refused"), "{out}");
}
