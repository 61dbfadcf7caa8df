//! certgate as an OpenID Connect provider, driven by real relying-party libraries that nobody
//! here wrote (npm `openid-client` 6, PyPI `authlib`; see `harness::rp`): discovery, the
//! authorization code flow with PKCE S256 where the person is whoever holds the client
//! certificate, the ID token validated by the library against the JWKS, userinfo, and refresh
//! with rotation, for RS256 (the default), ES256 and EdDSA ID tokens and for confidential
//! (client_secret_basic, client_secret_post) and public clients. Each library also refuses a
//! tampered callback and a wrong nonce by itself.

use serde_json::json;

use crate::direct::{setup, Setup, LOOPBACK};
use crate::harness::require;
use crate::harness::rp::{Library, RelyingParty, Started};

const SECRET: &str = "rp-secret-5f0c9a1e7d3b4c2a8e6f1d0b9a7c5e3f";
/// Where the confidential RP wants the code: nothing serves it, the test reads `Location`.
const REDIRECT: &str = "https://rp.example.test/oidc/callback";
/// The public client's (a single-page or native app: no secret, PKCE only).
const PUBLIC_REDIRECT: &str = "https://spa.example.test/callback";
const SCOPE: &str = "openid profile email offline_access";

/// The clients registered: id, token endpoint authentication, ID token algorithm. The
/// confidential ones share [`SECRET`] and [`REDIRECT`]; `rp-public` has no secret.
const CLIENTS: [(&str, &str, &str); 4] = [
    ("rp-confidential", "client_secret_basic", "RS256"),
    ("rp-public", "none", "RS256"),
    ("rp-es256", "client_secret_post", "ES256"),
    ("rp-eddsa", "client_secret_basic", "EdDSA"),
];

/// `[oidc]` (issuer: public_url, the mTLS listener) with [`CLIENTS`].
fn oidc_config() -> String {
    let mut toml = String::from("[oidc]\n");
    for (id, method, alg) in CLIENTS {
        let (secret, redirect) = if method == "none" {
            (String::new(), PUBLIC_REDIRECT)
        } else {
            (format!("secret = \"{SECRET}\"\n"), REDIRECT)
        };
        toml.push_str(&format!(
            "[[oidc.clients]]\nid = \"{id}\"\n{secret}redirect_uris = [\"{redirect}\"]\n\
             token_endpoint_auth_method = \"{method}\"\nid_token_signed_response_alg = \"{alg}\"\n\
             scopes = [\"openid\", \"profile\", \"email\", \"groups\", \"offline_access\"]\n"
        ));
    }
    toml
}

/// certgate with the OIDC clients, or `None` when a tool is missing (skipped locally).
fn provider(library: Library) -> Option<Setup> {
    if !require("curl") || !library.require() {
        return None;
    }
    Some(setup(LOOPBACK, &oidc_config()))
}

/// The issuer: `public_url`, which the harness sets to the mTLS listener.
fn issuer(s: &Setup) -> String {
    s.cg.mtls("")
}

/// The relying party of client `id` (one of [`CLIENTS`]) built on `library`.
fn client(s: &Setup, library: Library, id: &str) -> RelyingParty {
    let (_, method, alg) = CLIENTS
        .into_iter()
        .find(|(c, _, _)| *c == id)
        .unwrap_or_else(|| panic!("no client {id}"));
    let mut settings = json!({
        "issuer": issuer(s),
        "client_id": id,
        "auth_method": method,
        "alg": alg,
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
    });
    if method == "none" {
        settings["redirect_uri"] = json!(PUBLIC_REDIRECT);
    } else {
        settings["client_secret"] = json!(SECRET);
    }
    RelyingParty::new(library, settings, &s.pki.ca_pem)
}

/// The query parameters of a URL, decoded.
fn query(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The URL with one query parameter's value replaced.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = query(url)
        .into_iter()
        .map(|(k, v)| {
            if k == name {
                (k, value.to_string())
            } else {
                (k, v)
            }
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

/// `start`, then alice's browser: a GET of the authorization URL with her client certificate
/// (no cookie), which certgate answers with a redirect to the RP's redirect URI carrying
/// `code`, the RP's `state` and `iss` (RFC 9207). Returns what `start` gave and that callback.
fn authorize(s: &Setup, rp: &RelyingParty) -> (Started, String) {
    let started = rp.start();
    let issuer = issuer(s);
    assert!(
        started.authorization_url.starts_with(&format!("{issuer}/")),
        "discovery's authorization endpoint is not under the issuer {issuer}: {}",
        started.authorization_url
    );
    assert_eq!(
        param(&started.authorization_url, "code_challenge_method").as_deref(),
        Some("S256"),
        "{}",
        started.authorization_url
    );
    let r = s.as_alice().get(&started.authorization_url);
    assert!(
        [302, 303].contains(&r.status),
        "GET {} with alice's certificate: {r:?}",
        started.authorization_url
    );
    let callback = r
        .header("location")
        .unwrap_or_else(|| panic!("no Location: {r:?}"))
        .to_string();
    let redirect = rp.client["redirect_uri"].as_str().unwrap();
    assert!(
        callback.starts_with(&format!("{redirect}?")),
        "redirected to {callback}, not to {redirect}"
    );
    assert!(param(&callback, "code").is_some(), "{callback}");
    assert_eq!(param(&callback, "state"), Some(started.state.clone()));
    assert_eq!(param(&callback, "iss"), Some(issuer), "{callback}");
    (started, callback)
}

/// A whole sign-in of alice through `rp`, and what every library must have seen.
fn sign_in(s: &Setup, rp: &RelyingParty) {
    let library = rp.library.name();
    let client_id = rp.client["client_id"].as_str().unwrap();
    let (started, callback) = authorize(s, rp);
    let got = rp
        .finish(&started, &callback)
        .unwrap_or_else(|r| panic!("{library} ({client_id}) refused the sign-in: {r}"));
    eprintln!("{library} ({client_id}) got: {got:#}");

    // The library validated the ID token (signature against the JWKS, iss, aud, exp, iat,
    // nonce) or finish would have failed; these are the claims it accepted.
    let claims = &got["id_token_claims"];
    assert_eq!(got["id_token_header"]["alg"], rp.client["alg"], "{got}");
    assert!(got["id_token_header"]["kid"].is_string(), "{got}");
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(claims["iss"], json!(issuer(s)), "{claims}");
    assert!(
        claims["aud"] == json!(client_id)
            || claims["aud"]
                .as_array()
                .is_some_and(|a| a.contains(&json!(client_id))),
        "{claims}"
    );
    assert_eq!(claims["nonce"], json!(started.nonce), "{claims}");
    assert!(got["has_access_token"].as_bool().unwrap(), "{got}");

    // userinfo with the access token names the same subject.
    assert_eq!(got["userinfo"]["sub"], claims["sub"], "{got}");

    // The refresh: a new refresh token (rotated), a new access token that userinfo accepts,
    // and the old refresh token refused from then on.
    let old = got["refresh_token"].as_str().unwrap_or_else(|| {
        panic!("{library}: no refresh token for scope {SCOPE}: {got}");
    });
    let refreshed = &got["refreshed"];
    let new = refreshed["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{library}: the refresh returned no refresh token: {got}"));
    assert_ne!(new, old, "the refresh token did not rotate");
    assert_eq!(refreshed["access_token_changed"], true, "{got}");
    assert_eq!(refreshed["userinfo"]["sub"], claims["sub"], "{got}");
    if !refreshed["id_token_claims"].is_null() {
        assert_eq!(refreshed["id_token_claims"]["sub"], claims["sub"], "{got}");
        assert_eq!(refreshed["id_token_claims"]["iss"], claims["iss"], "{got}");
    }
    assert_eq!(
        got["old_refresh_reuse"]["accepted"], false,
        "the rotated-away refresh token was accepted again: {got}"
    );
    assert_eq!(got["old_refresh_reuse"]["error"], "invalid_grant", "{got}");
    // That reuse revoked the family: the newest refresh token is refused as well.
    assert_eq!(
        got["family_after_reuse"]["accepted"], false,
        "the family outlived the reuse of its old refresh token: {got}"
    );
    assert_eq!(got["family_after_reuse"]["error"], "invalid_grant", "{got}");
}

#[test]
fn openid_client_signs_alice_in_with_her_certificate() {
    let Some(s) = provider(Library::OpenidClient) else {
        return;
    };
    sign_in(&s, &client(&s, Library::OpenidClient, "rp-confidential"));
    sign_in(&s, &client(&s, Library::OpenidClient, "rp-public"));
    // The same through the RFC 8414 alias, <issuer>/.well-known/oauth-authorization-server.
    let mut rfc8414 = client(&s, Library::OpenidClient, "rp-confidential");
    rfc8414.client["discovery"] = json!("oauth2");
    sign_in(&s, &rfc8414);
}

#[test]
fn authlib_signs_alice_in_with_her_certificate() {
    let Some(s) = provider(Library::Authlib) else {
        return;
    };
    sign_in(&s, &client(&s, Library::Authlib, "rp-confidential"));
    sign_in(&s, &client(&s, Library::Authlib, "rp-public"));
}

/// Clients registered for ES256 and EdDSA ID tokens (one with client_secret_post): the library,
/// told the algorithm, verifies them against the JWKS (P-256 and Ed25519 keys).
fn other_algorithms(library: Library) {
    let Some(s) = provider(library) else {
        return;
    };
    sign_in(&s, &client(&s, library, "rp-es256"));
    sign_in(&s, &client(&s, library, "rp-eddsa"));
}

#[test]
fn openid_client_verifies_es256_and_eddsa_id_tokens() {
    other_algorithms(Library::OpenidClient);
}

#[test]
fn authlib_verifies_es256_and_eddsa_id_tokens() {
    other_algorithms(Library::Authlib);
}

/// The library's own checks: a callback whose `state` (or, for openid-client, `iss`) is not
/// what it sent is refused before the code is used; the same code with the right state is then
/// exchanged, and a `nonce` other than the one sent makes the library refuse the ID token.
fn refuses_tampered_callbacks(
    library: Library,
    s: &Setup,
    not_this_state: &str,
    wrong_nonce: &str,
) {
    let rp = client(s, library, "rp-confidential");
    let (started, callback) = authorize(s, &rp);

    let tampered = with_param(&callback, "state", "tampered-state");
    let refused = rp
        .finish(&started, &tampered)
        .expect_err("a callback with another state was accepted");
    // Exit 1 is the driver reporting what the library raised (a crash exits otherwise).
    assert_eq!(refused.status, Some(1), "{refused}");
    assert!(refused.text().contains(not_this_state), "{refused}");

    if library == Library::OpenidClient {
        let tampered = with_param(&callback, "iss", "https://evil.example.test");
        let refused = rp
            .finish(&started, &tampered)
            .expect_err("a callback from another issuer was accepted");
        assert!(
            refused
                .text()
                .contains(r#"unexpected "iss" (issuer) response parameter value"#),
            "{refused}"
        );
    }

    // The untouched code was never sent: with the right state it is exchanged, and the ID
    // token carries the nonce sent, not this one.
    let mut other = started.clone();
    other.nonce = "not-the-nonce-that-was-sent".into();
    let refused = rp
        .finish(&other, &callback)
        .expect_err("an ID token with another nonce was accepted");
    assert!(refused.text().contains(wrong_nonce), "{refused}");
}

#[test]
fn openid_client_refuses_a_tampered_state_or_issuer_and_a_wrong_nonce() {
    let Some(s) = provider(Library::OpenidClient) else {
        return;
    };
    refuses_tampered_callbacks(
        Library::OpenidClient,
        &s,
        r#"unexpected "state" response parameter value"#,
        r#"unexpected ID Token "nonce" claim value"#,
    );
}

#[test]
fn authlib_refuses_a_tampered_state_and_a_wrong_nonce() {
    let Some(s) = provider(Library::Authlib) else {
        return;
    };
    refuses_tampered_callbacks(
        Library::Authlib,
        &s,
        "MismatchingStateException",
        "Invalid claim 'nonce'",
    );
}
