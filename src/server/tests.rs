//! `/verify` and `certgate explain` decide through the same [`crate::policy::decide`]: for
//! the same rules, credential and revocation state they must agree. Here, above both, on a
//! state built as `certgate serve` builds it.

use std::sync::Arc;

use actix_web::test::TestRequest;
use rustls_pki_types::CertificateDer;

use crate::cert::PresentedChain;
use crate::clock::FixedClock;
use crate::config::{self, Source};
use crate::explain::{explain_against, Case, Who};
use crate::http::verify::answer;
use crate::http::AppState;
use crate::jwt::{Subject, TokenKind};

const NOW: i64 = 1_750_000_000;

const CONFIG: &str = r#"
public_url = "https://auth.example.test"
data_dir = "data"

[client_ca]
bundle = "ca.pem"

[proxy]
trusted = ["127.0.0.1/32"]
cert_header = "nginx"

[[users]]
name = "alice"
groups = ["admins"]

[[users]]
name = "bob"

[[rules]]
host = "app.example.test"
path = "/admin/**"
groups = ["admins"]
action = "allow"

[[rules]]
host = "app.example.test"
path = "/admin/**"
action = "deny"

[[rules]]
host = "app.example.test"
users = ["alice", "bob"]
action = "allow"
"#;

struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    state: AppState,
    ca: crate::ca::Ca,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let ca = crate::ca::Ca::generate("Decide Test CA", NOW).unwrap();
    std::fs::write(path.join("ca.pem"), &ca.cert_pem).unwrap();
    std::fs::write(path.join("certgate.toml"), CONFIG).unwrap();
    let source = Source::file(&path.join("certgate.toml")).unwrap();
    let config = config::load(&source, Vec::new()).unwrap();
    let state = super::build_state(config, Arc::new(FixedClock::at(NOW))).unwrap();
    World {
        _dir: dir,
        dir: path,
        state,
        ca,
    }
}

/// A bearer token of `user`, and its id.
fn token(w: &World, user: &str) -> (String, String) {
    let subject = Subject {
        user: user.into(),
        ..Subject::default()
    };
    let (token, claims) = w
        .state
        .tokens
        .mint(TokenKind::Bearer, &subject, 600, NOW)
        .unwrap();
    (token, claims.jti)
}

/// What `/verify` answers for `url` with the credential in `header`.
fn verify(w: &World, url: &str, header: (&str, String)) -> u16 {
    let req = TestRequest::default()
        .peer_addr("127.0.0.1:40000".parse().unwrap())
        .insert_header(("X-Original-URL", url))
        .insert_header(header)
        .to_http_request();
    answer(&req, &w.state).status().as_u16()
}

/// What `certgate explain` says for `url` as `who`, against the gateway's revocations.
fn explain(w: &World, url: &str, who: &Who) -> (bool, String) {
    let case = Case {
        url,
        method: "GET",
        client: None,
        who,
    };
    let e = explain_against(&w.state.config, CONFIG, &case, NOW, &w.state).unwrap();
    (e.allowed, e.text)
}

const ADMIN: &str = "https://app.example.test/admin/users";

#[test]
fn explain_and_verify_agree_on_bearer_tokens() {
    let w = world();
    let (alice, alice_jti) = token(&w, "alice");
    let (bob, _) = token(&w, "bob");
    let bearer = |t: &str| ("Authorization", format!("Bearer {t}"));

    assert_eq!(verify(&w, ADMIN, bearer(&alice)), 200);
    let (allowed, text) = explain(&w, ADMIN, &Who::Token(alice.clone()));
    assert!(allowed && text.contains("allowed by rules[0]"), "{text}");

    assert_eq!(verify(&w, ADMIN, bearer(&bob)), 403);
    let (allowed, text) = explain(&w, ADMIN, &Who::Token(bob));
    assert!(!allowed && text.contains("denied by rules[1]"), "{text}");

    w.state
        .revocations
        .revoke_jti(&alice_jti, NOW + 600)
        .unwrap();
    assert_eq!(verify(&w, ADMIN, bearer(&alice)), 401);
    let (allowed, text) = explain(&w, ADMIN, &Who::Token(alice));
    assert!(
        !allowed && text.contains("refused: token revoked"),
        "{text}"
    );
}

#[test]
fn explain_and_verify_agree_on_certificates() {
    let w = world();
    let issue = |user: &str| {
        let issued = w.ca.issue_client(user, 30, NOW).unwrap();
        let header = (
            "X-SSL-Client-Cert",
            percent_encoding::utf8_percent_encode(
                &issued.cert_pem,
                percent_encoding::NON_ALPHANUMERIC,
            )
            .to_string(),
        );
        let chain = PresentedChain(vec![CertificateDer::from(issued.cert_der)]);
        let serial = w
            .state
            .trust
            .verify(&chain, NOW)
            .unwrap()
            .cert()
            .serial
            .to_string();
        let pem = w.dir.join(format!("{user}-{serial}.pem"));
        std::fs::write(&pem, &issued.cert_pem).unwrap();
        (Who::Cert(pem), header, serial)
    };
    let (alice, alice_header, alice_serial) = issue("alice");
    let (bob, bob_header, _) = issue("bob");

    assert_eq!(verify(&w, ADMIN, alice_header.clone()), 200);
    let (allowed, text) = explain(&w, ADMIN, &alice);
    assert!(allowed && text.contains("allowed by rules[0]"), "{text}");

    assert_eq!(verify(&w, ADMIN, bob_header.clone()), 403);
    let (allowed, text) = explain(&w, ADMIN, &bob);
    assert!(!allowed && text.contains("denied by rules[1]"), "{text}");

    // Revoked by the built-in CA's own list (`certgate ca revoke`), which the chain check
    // reads: refused by both.
    let (bob2, bob2_header, bob2_serial) = issue("bob");
    crate::db::Db::open(&w.dir.join("data"))
        .unwrap()
        .write(|tx| {
            tx.execute(
                "INSERT INTO ca_revoked (serial, revoked_at) VALUES (?1, ?2)",
                rusqlite::params![bob2_serial, NOW],
            )
        })
        .unwrap();
    assert_eq!(verify(&w, ADMIN, bob2_header), 401);
    let (allowed, text) = explain(&w, ADMIN, &bob2);
    assert!(
        !allowed && text.contains("refused: ") && text.contains("revoked"),
        "{text}"
    );
    assert_eq!(
        verify(&w, ADMIN, bob_header),
        403,
        "another certificate of bob's"
    );

    let entry = crate::revocation::Entry::requested(
        None,
        Some(&alice_serial),
        None,
        None,
        NOW * 1000,
        3600,
    )
    .unwrap();
    w.state.revocations.revoke(entry).unwrap();
    assert_eq!(verify(&w, ADMIN, alice_header), 401);
    let (allowed, text) = explain(&w, ADMIN, &alice);
    assert!(
        !allowed && text.contains("refused: the certificate was revoked"),
        "{text}"
    );
}

#[test]
fn a_public_or_closed_path_reads_no_credential_in_either() {
    let w = world();
    let (bob, _) = token(&w, "bob");
    // No rule matches another host: closed to everyone, whoever asks.
    let other = "https://other.example.test/";
    assert_eq!(
        verify(&w, other, ("Authorization", format!("Bearer {bob}"))),
        403
    );
    let (allowed, text) = explain(&w, other, &Who::Token(bob));
    assert!(!allowed && text.contains("no rule matched"), "{text}");
    // Without credentials a rule that names users asks for them.
    let home = "https://app.example.test/";
    assert_eq!(verify(&w, home, ("Accept", "application/json".into())), 401);
    let (allowed, text) = explain(&w, home, &Who::Nobody);
    assert!(!allowed && text.contains("sign-in required"), "{text}");
}

/// What `/verify` answers for `url` with all of `headers`.
fn verify_with(w: &World, url: &str, headers: &[(&str, String)]) -> u16 {
    let req = headers.iter().fold(
        TestRequest::default()
            .peer_addr("127.0.0.1:40000".parse().unwrap())
            .insert_header(("X-Original-URL", url)),
        |req, (name, value)| req.insert_header((*name, value.as_str())),
    );
    answer(&req.to_http_request(), &w.state).status().as_u16()
}

#[test]
fn x_certgate_authorization_carries_our_token_beside_the_apps_own() {
    let w = world();
    let (alice, _) = token(&w, "alice");
    let (bob, _) = token(&w, "bob");
    let ours = |t: &str| ("X-Certgate-Authorization", format!("Bearer {t}"));
    let app_token = ("Authorization", "Bearer ha-long-lived-token".to_string());

    assert_eq!(verify_with(&w, ADMIN, &[ours(&alice)]), 200);
    assert_eq!(
        verify_with(&w, ADMIN, &[ours(&alice), app_token.clone()]),
        200,
        "the app's own token beside ours is not ours to judge"
    );
    // Both headers hold a certgate token: X-Certgate-Authorization decides.
    assert_eq!(
        verify_with(
            &w,
            ADMIN,
            &[ours(&bob), ("Authorization", format!("Bearer {alice}"))]
        ),
        403
    );
    assert_eq!(
        verify_with(
            &w,
            ADMIN,
            &[ours(&alice), ("Authorization", format!("Bearer {bob}"))]
        ),
        200
    );
    // Whatever is in certgate's own header is judged, never skipped for another credential.
    for bad in ["Bearer not-a-token", "Basic YWxpY2U6eA==", "Bearer", ""] {
        assert_eq!(
            verify_with(
                &w,
                ADMIN,
                &[
                    ("X-Certgate-Authorization", bad.to_string()),
                    ("Authorization", format!("Bearer {alice}"))
                ]
            ),
            401,
            "{bad:?}"
        );
    }
}
