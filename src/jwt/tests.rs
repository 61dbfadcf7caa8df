//! Bad-input cases from DESIGN.md §5: every one must be refused.

use super::*;
use crate::clock::{Clock, SystemClock};

const ISS: &str = "https://auth.example.test";

fn tokens() -> (Tokens, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeySet::load_or_create(&dir.path().join("keys"), SystemClock.now()).unwrap();
    (Tokens::new(keys, ISS), dir)
}

fn alice() -> Subject {
    Subject {
        user: "alice".into(),
        groups: vec!["admins".into()],
        email: Some("alice@example.test".into()),
        cert_thumbprint: Some("t".repeat(43)),
        cert_serial: Some("0a1b".into()),
        // As long as a real one: 32 bytes, base64url.
        cert_ca: Some("x".repeat(43)),
        ..Subject::default()
    }
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn claims_json(t: &Tokens, now: i64) -> serde_json::Value {
    serde_json::json!({"iss": t.issuer(), "sub": "alice", "aud": t.issuer(), "exp": now + 600,
        "nbf": now, "iat": now, "jti": "x", "groups": ["admins"]})
}

#[test]
fn a_minted_session_token_verifies_with_its_claims() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    let (jwt, minted) = t.mint(TokenKind::Session, &alice(), 3600, now).unwrap();
    let claims = t.verify(&jwt, TokenKind::Session, now).unwrap();
    assert_eq!(*claims, minted);
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.cnf.as_ref().unwrap().x5t_s256, "t".repeat(43));
    assert_eq!(claims.x5s.as_deref(), Some("0a1b"));
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("certgate-session+jwt"));
    assert!(
        jwt.len() < 1024,
        "cookie must stay under 1 KiB, was {}",
        jwt.len()
    );
}

#[test]
fn alg_none_is_rejected() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    let kid = t.keys().current(now).unwrap().kid.clone();
    let header = serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": kid});
    let jwt = format!("{}.{}.", b64(&header), b64(&claims_json(&t, now)));
    assert!(
        t.claims_to_be_ours(&jwt),
        "a forged token naming our issuer must not be ignored"
    );
    assert!(t.verify(&jwt, TokenKind::Bearer, now).is_err());
}

#[test]
fn hs256_signed_with_the_public_key_is_rejected() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    let keys = t.keys();
    let key = keys.current(now).unwrap();
    let public = URL_SAFE_NO_PAD.decode(&key.x).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    header.typ = Some("at+jwt".into());
    for secret in [public.as_slice(), key.x.as_bytes()] {
        let jwt = jsonwebtoken::encode(
            &header,
            &claims_json(&t, now),
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap();
        assert!(matches!(
            t.verify(&jwt, TokenKind::Bearer, now),
            Err(JwtError::Invalid(_))
        ));
    }
}

#[test]
fn unknown_kid_is_rejected() {
    let (t, _d) = tokens();
    let (other, _d2) = tokens();
    let now = SystemClock.now();
    let (jwt, _) = other.mint(TokenKind::Bearer, &alice(), 600, now).unwrap();
    // Same issuer, different key: still ours by `iss`, refused by `kid`.
    assert!(t.claims_to_be_ours(&jwt));
    assert_eq!(
        t.verify(&jwt, TokenKind::Bearer, now),
        Err(JwtError::UnknownKey)
    );
}

#[test]
fn a_flipped_signature_byte_is_rejected() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    let (jwt, _) = t.mint(TokenKind::Bearer, &alice(), 600, now).unwrap();
    let (head, sig) = jwt.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[10] ^= 0x01;
    let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode(raw));
    assert!(matches!(
        t.verify(&forged, TokenKind::Bearer, now),
        Err(JwtError::Invalid(_))
    ));
}

#[test]
fn expiry_is_enforced_beyond_the_leeway_only() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    let (jwt, _) = t.mint(TokenKind::Bearer, &alice(), 60, now).unwrap();
    assert!(t
        .verify(&jwt, TokenKind::Bearer, now + 60 + LEEWAY - 1)
        .is_ok());
    assert_eq!(
        t.verify(&jwt, TokenKind::Bearer, now + 60 + LEEWAY),
        Err(JwtError::Expired)
    );
    assert_eq!(
        t.verify(&jwt, TokenKind::Bearer, now - LEEWAY - 1),
        Err(JwtError::NotYetValid)
    );
}

#[test]
fn wrong_audience_or_issuer_is_rejected() {
    let (t, d) = tokens();
    let now = SystemClock.now();
    let keys = KeySet::load_or_create(&d.path().join("keys"), now).unwrap();
    let other_aud = Tokens {
        keys: std::sync::RwLock::new(std::sync::Arc::new(keys)),
        max_lifetime: i64::MAX,
        issuer: ISS.into(),
        audience: "https://elsewhere.test".into(),
        verified: cache::VerifiedCache::default(),
    };
    let (jwt, _) = other_aud
        .mint(TokenKind::Bearer, &alice(), 600, now)
        .unwrap();
    assert!(matches!(
        t.verify(&jwt, TokenKind::Bearer, now),
        Err(JwtError::Invalid(_))
    ));
}

#[test]
fn session_and_bearer_tokens_are_never_interchangeable() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    let (session, _) = t.mint(TokenKind::Session, &alice(), 600, now).unwrap();
    let (bearer, _) = t.mint(TokenKind::Bearer, &alice(), 600, now).unwrap();
    assert!(matches!(
        t.verify(&session, TokenKind::Bearer, now),
        Err(JwtError::WrongType { .. })
    ));
    assert!(matches!(
        t.verify(&bearer, TokenKind::Session, now),
        Err(JwtError::WrongType { .. })
    ));
}

#[test]
fn foreign_tokens_are_not_claimed() {
    let (t, _d) = tokens();
    let foreign = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"iss": "homeassistant", "exp": 1}),
        &jsonwebtoken::EncodingKey::from_secret(b"s"),
    )
    .unwrap();
    assert!(!t.claims_to_be_ours(&foreign));
    assert!(!t.claims_to_be_ours("opaque-api-token"));
    assert!(t.verify_if_ours(&foreign, TokenKind::Bearer, 0).is_none());
    assert!(t
        .verify_if_ours("opaque-api-token", TokenKind::Bearer, 0)
        .is_none());
}

/// `/verify` reads a bearer token in `Authorization` through `verify_if_ours`: ours is
/// verified (from the cache once seen, still checked for expiry), a forged one of ours refused.
#[test]
fn a_bearer_token_of_ours_is_verified_whether_seen_before_or_not() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    let (jwt, _) = t.mint(TokenKind::Bearer, &alice(), 600, now).unwrap();
    // Not remembered at minting here: the first check verifies the signature.
    let (fresh, _d2) = tokens();
    assert!(
        fresh
            .verify_if_ours(&jwt, TokenKind::Bearer, now)
            .is_some_and(|r| r.is_err()),
        "another instance's key is not ours: unknown kid, refused"
    );
    let first = t
        .verify_if_ours(&jwt, TokenKind::Bearer, now)
        .unwrap()
        .unwrap();
    assert_eq!(first.sub, "alice");
    let again = t
        .verify_if_ours(&jwt, TokenKind::Bearer, now)
        .unwrap()
        .unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "the second check is a cache hit"
    );
    assert!(matches!(
        t.verify_if_ours(&jwt, TokenKind::Bearer, now + 3600),
        Some(Err(JwtError::Expired))
    ));
    let mut forged = jwt.clone();
    forged.pop();
    forged.push(if jwt.ends_with('A') { 'B' } else { 'A' });
    assert!(matches!(
        t.verify_if_ours(&forged, TokenKind::Bearer, now),
        Some(Err(_))
    ));
}

#[test]
fn keys_are_reused_and_written_0600() {
    let dir = tempfile::tempdir().unwrap();
    let a = KeySet::load_or_create(&dir.path().join("keys"), 100).unwrap();
    let b = KeySet::load_or_create(&dir.path().join("keys"), 200).unwrap();
    assert_eq!(a.current(200).unwrap().kid, b.current(200).unwrap().kid);
    assert_eq!(b.all().len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let file = dir.path().join("keys/ed25519-100.pem");
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn app_audiences_are_written_as_an_array_and_still_verify() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    let subject = Subject {
        app_hosts: vec!["ha.example.test".into()],
        ..alice()
    };
    let (jwt, claims) = t.mint(TokenKind::Bearer, &subject, 600, now).unwrap();
    let payload: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        payload["aud"],
        serde_json::json!([ISS, "https://ha.example.test"])
    );
    assert_eq!(*t.verify(&jwt, TokenKind::Bearer, now).unwrap(), claims);
    assert_eq!(claims.aud.app_hosts(ISS), vec!["ha.example.test"]);
    // Without app audiences, aud stays a plain string.
    let (plain, _) = t.mint(TokenKind::Bearer, &alice(), 600, now).unwrap();
    let payload: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(plain.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["aud"], ISS);
}

// === the verified-token cache ===

#[test]
fn a_cached_token_still_expires_and_keeps_its_kind() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    let (jwt, _) = t.mint(TokenKind::Session, &alice(), 10, now).unwrap();
    assert!(t.verify(&jwt, TokenKind::Session, now).is_ok());
    assert_eq!(t.cached(), 1);
    assert!(t.verify(&jwt, TokenKind::Session, now + 5).is_ok(), "a hit");
    assert_eq!(
        t.verify(&jwt, TokenKind::Session, now + 10 + LEEWAY),
        Err(JwtError::Expired),
        "a hit is checked against the clock again"
    );
    assert!(
        matches!(
            t.verify(&jwt, TokenKind::Bearer, now),
            Err(JwtError::WrongType { .. })
        ),
        "a session token cached as such is still no bearer token"
    );
}

#[test]
fn a_rejected_token_is_never_cached_and_a_changed_byte_is_a_miss() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    let (jwt, _) = t.mint(TokenKind::Bearer, &alice(), 600, now).unwrap();
    assert!(t.verify(&jwt, TokenKind::Bearer, now).is_ok());
    let (head, sig) = jwt.rsplit_once('.').unwrap();
    let mut sig = sig.as_bytes().to_vec();
    sig[3] = if sig[3] == b'A' { b'B' } else { b'A' };
    let forged = format!("{head}.{}", String::from_utf8(sig).unwrap());
    for _ in 0..2 {
        assert!(t.verify(&forged, TokenKind::Bearer, now).is_err());
    }
    assert_eq!(t.cached(), 1, "only the good token is cached");
    // Expired at first sight: refused, and not cached either.
    let (old, _) = t.mint(TokenKind::Bearer, &alice(), 10, now - 1000).unwrap();
    assert_eq!(
        t.verify(&old, TokenKind::Bearer, now),
        Err(JwtError::Expired)
    );
    assert_eq!(t.cached(), 1);
}

#[test]
fn the_cache_stays_bounded() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    for _ in 0..=cache::CAPACITY {
        let (jwt, _) = t.mint(TokenKind::Bearer, &alice(), 600, now).unwrap();
        assert!(t.verify(&jwt, TokenKind::Bearer, now).is_ok());
    }
    assert!(t.cached() <= cache::CAPACITY, "{}", t.cached());
}

// === key rotation ===

#[test]
fn a_rotated_key_is_published_first_signs_later_and_retires_after_the_longest_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let old = KeySet::load_or_create(&keys_dir, 1_000).unwrap();
    let t = Tokens::new(old, ISS).with_max_lifetime(3_600);
    let (before, _) = t.mint(TokenKind::Bearer, &alice(), 600, 1_000).unwrap();
    let old_kid = t.keys().current(1_000).unwrap().kid.clone();

    KeySet::add(&keys_dir, 1_060).unwrap();
    assert!(t.reload_keys(&keys_dir).unwrap(), "the new key is noticed");
    assert!(!t.reload_keys(&keys_dir).unwrap(), "and only once");
    let published: Vec<String> = t.jwks(1_010)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(published.len(), 2, "published before it signs");
    let new_kid = published[0].clone();
    assert_ne!(new_kid, old_kid);
    let kid_of = |jwt: &str| jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
    let (early, _) = t.mint(TokenKind::Bearer, &alice(), 600, 1_030).unwrap();
    assert_eq!(kid_of(&early), old_kid, "the next key does not sign yet");
    let (late, _) = t.mint(TokenKind::Bearer, &alice(), 600, 1_060).unwrap();
    assert_eq!(kid_of(&late), new_kid);
    assert!(
        t.verify(&before, TokenKind::Bearer, 1_100).is_ok(),
        "old tokens still verify"
    );
    assert!(t.verify(&late, TokenKind::Bearer, 1_100).is_ok());

    let retired_at = 1_060 + 3_600 + 1;
    assert_eq!(t.jwks(retired_at)["keys"].as_array().unwrap().len(), 1);
    let (old_signed, _) = {
        // A token of the retired key that claims a long life: refused all the same.
        let set = KeySet::load(&keys_dir).unwrap();
        let key = set.all().iter().find(|k| k.kid == old_kid).unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(old_kid.clone());
        header.typ = Some("at+jwt".into());
        let claims = serde_json::json!({"iss": ISS, "sub": "alice", "aud": ISS, "exp": retired_at + 600,
            "nbf": retired_at, "iat": retired_at, "jti": "r"});
        (
            jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap(),
            (),
        )
    };
    assert_eq!(
        t.verify(&old_signed, TokenKind::Bearer, retired_at),
        Err(JwtError::UnknownKey)
    );
}

#[test]
fn forged_values_cost_at_most_four_signature_checks_and_never_hide_a_known_token() {
    let (t, _d) = tokens();
    let now = SystemClock.now();
    let (real, claims) = t.mint(TokenKind::Session, &alice(), 3600, now).unwrap();
    // The real header and signature over other claims: each costs a signature check.
    let (head, rest) = real.split_once('.').unwrap();
    let sig = rest.rsplit_once('.').unwrap().1;
    let forged: Vec<String> = (0..100)
        .map(|i| format!("{head}.{}.{sig}", b64(&serde_json::json!({ "n": i }))))
        .collect();
    let mut values: Vec<&str> = forged.iter().map(String::as_str).collect();
    values.push(&real);
    let results: Vec<_> = t
        .verify_each(values.iter().copied(), TokenKind::Session, now, 4)
        .collect();
    assert_eq!(results.len(), 4, "only four unknown values are checked");
    assert!(results.iter().all(Result::is_err));
    // Once known (minted at /auth, or verified before), the real value is found anyway.
    t.remember(&real, TokenKind::Session, claims);
    let found: Vec<_> = t
        .verify_each(values.iter().copied(), TokenKind::Session, now, 4)
        .filter_map(Result::ok)
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].sub, "alice");
    // A remembered token is still checked for time.
    let late = now + 3600 + LEEWAY + 1;
    assert!(matches!(
        t.verify_each([real.as_str()].into_iter(), TokenKind::Session, late, 4)
            .next(),
        Some(Err(JwtError::Expired))
    ));
}
