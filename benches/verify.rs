//! Token verification, the per-check cost DESIGN.md §4b is about: certgate's EdDSA session
//! token through `certgate::jwt::Tokens` (cached: the same cookie again, as under load;
//! uncached: a different token every time) against a plain jsonwebtoken decode of a token
//! with the same header and claims, HS256 (the "what HS256 would give" baseline) and EdDSA.
//!
//! Also the revocation lookup of every check at 1,000,000 revoked ids (`revoked_1m/*`).
//!
//! `cargo bench --bench verify` (scripts/bench.sh runs it with BENCH_CRITERION=1).

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use certgate::jwt::{cache, Claims, KeySet, Subject, TokenKind, Tokens};
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

const ISSUER: &str = "https://auth.example.com";
const TTL: i64 = 3600;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What `/auth` puts in a session cookie for a user with a certificate.
fn subject() -> Subject {
    Subject {
        user: "alice".into(),
        groups: vec!["admins".into(), "family".into()],
        email: Some("alice@example.com".into()),
        name: Some("Alice".into()),
        cert_thumbprint: Some(URL_SAFE_NO_PAD.encode([7u8; 32])),
        cert_serial: Some("29d7cc39cfb32851ca30c42428509d3b".into()),
        ..Subject::default()
    }
}

/// The validation certgate applies, for another algorithm.
fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[ISSUER]);
    v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    v.leeway = 60;
    v.validate_nbf = true;
    v
}

/// A jsonwebtoken token with certgate's header (kid, typ) and the given claims.
fn plain_token(alg: Algorithm, key: &EncodingKey, claims: &Claims) -> String {
    let mut header = Header::new(alg);
    header.kid = Some("bench-key".into());
    header.typ = Some(TokenKind::Session.typ().into());
    jsonwebtoken::encode(&header, claims, key).expect("encode")
}

fn verify(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = unix_now();
    let keys = KeySet::load_or_create(&dir.path().join("keys"), now).expect("keys");
    let tokens = Tokens::new(keys, ISSUER).with_max_lifetime(TTL + 60);
    let who = subject();
    let (cookie, claims) = tokens
        .mint(TokenKind::Session, &who, TTL, now)
        .expect("mint");
    tokens
        .verify(&cookie, TokenKind::Session, now)
        .expect("the session token verifies");

    // Distinct tokens, more than twice the cache's capacity: cycling through them, each one
    // was cleared from the cache (it starts over when full) before it comes round again.
    let pool: Vec<String> = (0..2 * cache::CAPACITY + 1)
        .map(|_| {
            tokens
                .mint(TokenKind::Session, &who, TTL, now)
                .expect("mint")
                .0
        })
        .collect();

    let secret = [0x5au8; 32];
    let hs_token = plain_token(
        Algorithm::HS256,
        &EncodingKey::from_secret(&secret),
        &claims,
    );
    let hs_key = DecodingKey::from_secret(&secret);
    let hs_validation = validation(Algorithm::HS256);

    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key");
    let ed_token = plain_token(
        Algorithm::EdDSA,
        &EncodingKey::from_ed_der(&pair.serialize_der()),
        &claims,
    );
    let ed_key = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(pair.public_key_raw()))
        .expect("Ed25519 public key");
    let ed_validation = validation(Algorithm::EdDSA);

    let mut group = c.benchmark_group("verify");
    group.bench_function("hs256_jsonwebtoken", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Claims>(black_box(&hs_token), &hs_key, &hs_validation)
                .expect("HS256 verifies")
        });
    });
    group.bench_function("certgate_eddsa_cached", |b| {
        b.iter(|| {
            tokens
                .verify(black_box(&cookie), TokenKind::Session, now)
                .expect("verifies")
        });
    });
    // Criterion calls the closure again for every sample: the cursor lives outside it, so the
    // pool is walked round and round instead of restarting at its (by then cached) beginning.
    let mut cursor = 0;
    group.bench_function("certgate_eddsa_uncached", |b| {
        b.iter(|| {
            cursor = (cursor + 1) % pool.len();
            tokens
                .verify(black_box(&pool[cursor]), TokenKind::Session, now)
                .expect("verifies")
        });
    });
    group.bench_function("eddsa_jsonwebtoken", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Claims>(black_box(&ed_token), &ed_key, &ed_validation)
                .expect("EdDSA verifies")
        });
    });
    group.finish();
}

/// The revocation check every /verify makes, with 1,000,000 token ids revoked: an id held
/// (a revoked session presented again) and one not held (every live session), each walking a
/// pool of 65,536 ids so that the table's memory, not one cached slot, is what is measured.
fn revoked_lookup(c: &mut Criterion) {
    const REVOKED: usize = 1_000_000;
    const POOL: usize = 1 << 16;
    let now = unix_now();
    let revocations = certgate::revocation::Revocations::default();
    let held: Vec<String> = (0..REVOKED)
        .map(|_| certgate::jwt::random_id().expect("random id"))
        .collect();
    for id in &held {
        revocations.revoke_jti(id, now + TTL).expect("revoke");
    }
    let held: Vec<String> = held
        .into_iter()
        .step_by(REVOKED / POOL)
        .take(POOL)
        .collect();
    let absent: Vec<String> = (0..POOL)
        .map(|_| certgate::jwt::random_id().expect("random id"))
        .collect();
    let mut group = c.benchmark_group("revoked_1m");
    for (name, pool, expect) in [("held", &held, true), ("absent", &absent, false)] {
        let mut cursor = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                cursor = (cursor + 1) % pool.len();
                assert_eq!(revocations.is_jti_revoked(black_box(&pool[cursor])), expect);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, verify, revoked_lookup);
criterion_main!(benches);
