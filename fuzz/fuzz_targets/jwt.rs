//! Session cookies and bearer tokens as `/verify` checks them, on arbitrary strings and on
//! edits of tokens this target minted itself: never a panic, nothing verifies but the exact
//! tokens minted here (an altered or forged token never passes), and nothing verifies once
//! those have expired.
#![no_main]

use std::sync::OnceLock;

use certgate::http::extract::MAX_SESSION_COOKIE_CHECKS;
use certgate::jwt::{KeySet, Subject, TokenKind, Tokens, LEEWAY};
use libfuzzer_sys::fuzz_target;

/// A fixed clock: the key starts signing at `NOW`, the tokens live `TTL` seconds.
const NOW: i64 = 1_700_000_000;
const TTL: i64 = 3600;

struct Minted {
    tokens: Tokens,
    session: String,
    bearer: String,
}

fn minted() -> &'static Minted {
    static MINTED: OnceLock<Minted> = OnceLock::new();
    MINTED.get_or_init(|| {
        // A throw-away key: created in a fresh directory, kept in memory, the directory removed.
        let dir = std::env::temp_dir().join(format!("certgate-fuzz-jwt-{}", std::process::id()));
        let keys = KeySet::load_or_create(&dir.join("keys"), NOW).expect("a throw-away key");
        std::fs::remove_dir_all(&dir).expect("remove the key directory");
        let tokens = Tokens::new(keys, "https://auth.example.test").with_max_lifetime(TTL);
        let subject = Subject {
            user: "alice".into(),
            groups: vec!["admins".into()],
            scope: Some("app.example.test".into()),
            app_hosts: vec!["app.example.test".into()],
            ..Subject::default()
        };
        let (session, _) = tokens
            .mint(TokenKind::Session, &subject, TTL, NOW)
            .expect("mint");
        tokens
            .verify(&session, TokenKind::Session, NOW)
            .expect("our session verifies");
        let (bearer, _) = tokens
            .mint(TokenKind::Bearer, &subject, TTL, NOW)
            .expect("mint");
        Minted {
            tokens,
            session,
            bearer,
        }
    })
}

/// The input as a token: after an even first byte, the rest as is; after an odd one, one of
/// our tokens with a span replaced (bytes 1-2: where, byte 3: how many bytes to remove, the
/// rest: what to insert), so the fuzzer starts from tokens that verify.
fn token<'a>(m: &Minted, data: &'a [u8]) -> Option<std::borrow::Cow<'a, str>> {
    let (&mode, rest) = data.split_first()?;
    if mode % 2 == 0 {
        return std::str::from_utf8(rest).ok().map(Into::into);
    }
    let base = if mode & 2 == 0 { &m.session } else { &m.bearer };
    let [hi, lo, remove, insert @ ..] = rest else {
        return None;
    };
    let at = usize::from(u16::from_be_bytes([*hi, *lo])) % (base.len() + 1);
    let end = (at + usize::from(*remove)).min(base.len());
    let mut edited = base.as_bytes()[..at].to_vec();
    edited.extend_from_slice(insert);
    edited.extend_from_slice(&base.as_bytes()[end..]);
    String::from_utf8(edited).ok().map(Into::into)
}

fuzz_target!(|data: &[u8]| {
    let m = minted();
    let Some(token) = token(m, data) else { return };
    let token = token.as_ref();
    // /verify asks this first for a bearer token; it must not panic on anything.
    let _ = m.tokens.claims_to_be_ours(token);
    for (kind, ours) in [
        (TokenKind::Session, &m.session),
        (TokenKind::Bearer, &m.bearer),
    ] {
        if m.tokens.verify(token, kind, NOW).is_ok() {
            assert_eq!(
                token, ours,
                "a token this target did not mint verified as {kind:?}"
            );
        }
        if kind == TokenKind::Session {
            // /verify's cookie path: the input several times in front of our session cookie
            // (verified before, so cached) finds exactly ours, whatever the cap skips.
            let values = std::iter::repeat_n(token, 5).chain(std::iter::once(ours.as_str()));
            let found = m
                .tokens
                .verify_each(values, kind, NOW, MAX_SESSION_COOKIE_CHECKS)
                .filter(Result::is_ok)
                .count();
            let want = if token == ours.as_str() { 6 } else { 1 };
            assert_eq!(found, want, "our session cookie behind the input");
        }
        let after = NOW + TTL + LEEWAY;
        assert!(
            m.tokens.verify(token, kind, after).is_err(),
            "verified after expiry"
        );
    }
});
