//! certgate as an OpenID Connect provider, over HTTP as a relying party and a browser meet it:
//! the code flow with a client certificate, every refusal the contract names (DESIGN.md §8,
//! issue 17), and revocation reaching the grants. The relying-party libraries' own runs are in
//! `oidc_rp.rs`.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::direct::{setup_env, Setup, LOOPBACK};
use crate::harness::certgate::run;
use crate::harness::curl::Response;
use crate::harness::require;

pub(crate) const SECRET: &str = "grafana-secret-0123456789abcdef";
pub(crate) const CALLBACK: &str = "https://app.example.test/callback";

fn provider(extra_client: &str) -> Setup {
    setup_env(
        LOOPBACK,
        &format!(
            r#"[oidc]
[[oidc.clients]]
id = "grafana"
secret = "{SECRET}"
redirect_uris = ["{CALLBACK}"]
[[oidc.clients]]
id = "spa"
token_endpoint_auth_method = "none"
redirect_uris = ["{CALLBACK}"]
id_token_signed_response_alg = "ES256"
[[oidc.clients]]
id = "mtls-app"
token_endpoint_auth_method = "tls_client_auth"
tls_client_auth_san_uri = "urn:example:mtls-app"
redirect_uris = ["{CALLBACK}"]
[[oidc.clients]]
id = "tv"
token_endpoint_auth_method = "none"
redirect_uris = ["{CALLBACK}"]
[[oidc.clients]]
id = "bobs-app"
secret = "{SECRET}"
redirect_uris = ["{CALLBACK}"]
users = ["bob"]
{extra_client}"#
        ),
        &[],
    )
}

pub(crate) fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn authorize_url(s: &Setup, params: &[(&str, &str)]) -> String {
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    format!("{}?{}", s.cg.mtls("/oidc/authorize"), q.join("&"))
}

pub(crate) fn code_request<'a>(
    client: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email groups offline_access"),
        ("state", "st-123"),
        ("nonce", "n-456"),
    ];
    p.extend_from_slice(extra);
    p
}

/// A code for alice (her certificate at /oidc/authorize).
pub(crate) fn new_code(s: &Setup, client: &str, extra: &[(&str, &str)]) -> String {
    let r = s
        .as_alice()
        .get(&authorize_url(s, &code_request(client, extra)));
    assert_eq!(r.status, 302, "{r:?}");
    let q = query(r.header("location").unwrap());
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], s.cg.mtls(""));
    q["code"].clone()
}

/// The token request that redeems `code` (for CALLBACK).
pub(crate) fn code_form(code: &str) -> String {
    format!(
        "grant_type=authorization_code&code={}&redirect_uri={}",
        enc(code),
        enc(CALLBACK)
    )
}

pub(crate) fn token(s: &Setup, form: &str, basic: bool) -> Response {
    let mut c = s.curl();
    if basic {
        c = c.arg("-u").arg(format!("grafana:{SECRET}"));
    }
    c.post(&s.cg.mtls("/oidc/token"), form)
}

pub(crate) fn json(r: &Response) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

pub(crate) fn userinfo(s: &Setup, access: &str) -> Response {
    s.curl()
        .header(&format!("Authorization: Bearer {access}"))
        .get(&s.cg.mtls("/oidc/userinfo"))
}

/// The ID token's claims, its signature checked with the published JWKS.
fn verified_claims(s: &Setup, id_token: &str, aud: &str) -> serde_json::Value {
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&s.curl().get(&s.cg.mtls("/oidc/jwks")).body).unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[s.cg.mtls("")]);
    jsonwebtoken::decode::<serde_json::Value>(
        id_token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &v,
    )
    .unwrap()
    .claims
}

#[test]
fn discovery_names_every_endpoint_under_the_issuer_and_without_oidc_there_is_none() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let issuer = s.cg.mtls("");
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let d = json(&s.curl().get(&s.cg.mtls(path)));
        assert_eq!(d["issuer"], issuer.as_str());
        for key in [
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
        ] {
            assert!(
                d[key]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{issuer}/oidc/")),
                "{key}: {d}"
            );
        }
        assert_eq!(
            d["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(d["authorization_response_iss_parameter_supported"], true);
        assert_eq!(d["id_token_signing_alg_values_supported"][0], "RS256");
        assert!(d.get("acr_values_supported").is_none(), "no oidc.acr: {d}");
    }
    let jwks = json(&s.curl().get(&s.cg.mtls("/oidc/jwks")));
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert!(k["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
            k["alg"].as_str().unwrap()
        })
        .collect();
    assert_eq!(algs, ["RS256", "ES256", "EdDSA"]);

    let plain = setup_env(LOOPBACK, "", &[]);
    for path in [
        "/.well-known/openid-configuration",
        "/oidc/jwks",
        "/oidc/authorize",
    ] {
        assert_eq!(plain.curl().get(&plain.cg.mtls(path)).status, 404, "{path}");
    }
}

#[test]
fn oidc_acr_is_in_every_id_token_and_in_discovery() {
    if !require("curl") {
        return;
    }
    let s = setup_env(
        LOOPBACK,
        &format!(
            r#"[oidc]
acr = "urn:example:acr:certificate"
[[oidc.clients]]
id = "grafana"
secret = "{SECRET}"
redirect_uris = ["{CALLBACK}"]
"#
        ),
        &[],
    );
    let d = json(
        &s.curl()
            .get(&s.cg.mtls("/.well-known/openid-configuration")),
    );
    assert_eq!(
        d["acr_values_supported"],
        serde_json::json!(["urn:example:acr:certificate"])
    );
    assert!(d["claims_supported"]
        .as_array()
        .unwrap()
        .contains(&"acr".into()));
    let t = token(&s, &code_form(&new_code(&s, "grafana", &[])), true);
    assert_eq!(t.status, 200, "{t:?}");
    let claims = verified_claims(&s, json(&t)["id_token"].as_str().unwrap(), "grafana");
    assert_eq!(claims["acr"], "urn:example:acr:certificate");
    assert_eq!(claims["amr"], serde_json::json!(["mtls"]));
}

#[test]
fn a_certificate_signs_in_to_an_app_and_its_tokens_work_until_revoked() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    // The browser with the certificate gets a code, and a certgate session beside it.
    let r = s
        .as_alice()
        .get(&authorize_url(&s, &code_request("grafana", &[])));
    assert_eq!(r.status, 302, "{r:?}");
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("certgate=")),
        "{r:?}"
    );
    let code = query(r.header("location").unwrap())["code"].clone();
    let form = code_form(&code);
    let t = token(&s, &form, true);
    assert_eq!(t.status, 200, "{t:?}");
    assert_eq!(t.header("cache-control"), Some("no-store"));
    let t = json(&t);
    let claims = verified_claims(&s, t["id_token"].as_str().unwrap(), "grafana");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["email"], "alice@example.test");
    assert_eq!(
        claims["email_verified"], false,
        "[[users]] does not vouch for it"
    );
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["groups"], serde_json::json!(["admins", "family"]));
    assert_eq!(claims["amr"], serde_json::json!(["mtls"]));
    assert!(claims.get("acr").is_none(), "no oidc.acr, no acr: {claims}");
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    // at_hash: the left half of SHA-256 of the access token (RS256).
    let access = t["access_token"].as_str().unwrap().to_string();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    assert_eq!(
        claims["at_hash"],
        URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
    );
    let header = jsonwebtoken::decode_header(t["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);

    let u = userinfo(&s, &access);
    assert_eq!(u.status, 200, "{u:?}");
    assert_eq!(json(&u)["sub"], "alice");

    // Refresh rotates; the old refresh token, presented again, ends the whole sign-in.
    let refresh1 = t["refresh_token"].as_str().unwrap().to_string();
    let t2 = token(
        &s,
        &format!("grant_type=refresh_token&refresh_token={}", enc(&refresh1)),
        true,
    );
    assert_eq!(t2.status, 200, "{t2:?}");
    let t2 = json(&t2);
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh1, refresh2);
    let c2 = verified_claims(&s, t2["id_token"].as_str().unwrap(), "grafana");
    assert_eq!((c2["sub"].as_str(), c2.get("nonce")), (Some("alice"), None));
    let again = token(
        &s,
        &format!("grant_type=refresh_token&refresh_token={}", enc(&refresh1)),
        true,
    );
    assert_eq!(
        (again.status, json(&again)["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let newest = token(
        &s,
        &format!("grant_type=refresh_token&refresh_token={}", enc(&refresh2)),
        true,
    );
    assert_eq!(
        json(&newest)["error"],
        "invalid_grant",
        "the family is revoked"
    );
    assert_eq!(
        userinfo(&s, t2["access_token"].as_str().unwrap()).status,
        401
    );

    // A second sign-in, ended by `certgate revoke --user`: refresh and userinfo refuse
    // within a second.
    let code = new_code(&s, "grafana", &[]);
    let form = code_form(&code);
    let t = json(&token(&s, &form, true));
    let access = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(userinfo(&s, &access).status, 200);
    let (status, out) = run(
        s.dir.path(),
        &["revoke", "--config", "certgate.toml", "--user", "alice"],
    );
    assert_eq!(status, 0, "{out}");
    let deadline = Instant::now() + Duration::from_secs(1);
    while userinfo(&s, &access).status != 401 {
        assert!(
            Instant::now() < deadline,
            "userinfo still answers after the revocation"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = token(
        &s,
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            enc(t["refresh_token"].as_str().unwrap())
        ),
        true,
    );
    assert_eq!(json(&r)["error"], "invalid_grant", "{r:?}");
}

#[test]
fn logging_out_of_certgate_ends_the_apps_sign_in_made_from_that_session() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let jar = s.dir.path().join("jar");
    let r = s
        .as_alice()
        .jar(&jar)
        .get(&authorize_url(&s, &code_request("grafana", &[])));
    let code = query(r.header("location").unwrap())["code"].clone();
    let form = code_form(&code);
    let t = json(&token(&s, &form, true));
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&s, access).status, 200);
    // The same browser (its session cookie, no certificate) signs in to the app again without
    // a new session: the grant carries the session's id.
    let again = s
        .curl()
        .jar(&jar)
        .get(&authorize_url(&s, &code_request("grafana", &[])));
    assert_eq!(again.status, 302, "{again:?}");
    assert!(again.header("set-cookie").is_none(), "{again:?}");
    let out = s.curl().jar(&jar).post(&s.cg.mtls("/logout"), "");
    assert_eq!(out.status, 200, "{out:?}");
    let u = userinfo(&s, access);
    assert_eq!(u.status, 401, "{u:?}");
    assert!(u.body.contains("logged out"), "{}", u.body);
    let r = token(
        &s,
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            enc(t["refresh_token"].as_str().unwrap())
        ),
        true,
    );
    assert_eq!(json(&r)["error"], "invalid_grant");
}

#[test]
fn a_code_is_single_use_and_its_replay_revokes_what_it_gave() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let code = new_code(&s, "grafana", &[]);
    let form = code_form(&code);
    let first = json(&token(&s, &form, true));
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&s, access).status, 200);
    let replay = token(&s, &form, true);
    assert_eq!(
        (replay.status, json(&replay)["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo(&s, access).status,
        401,
        "the replay ends the first exchange's tokens"
    );

    // Bound to its redirect URI and its client.
    let code = new_code(&s, "grafana", &[]);
    let wrong = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}",
        enc(&code),
        enc("https://app.example.test/other")
    );
    assert_eq!(json(&token(&s, &wrong, true))["error"], "invalid_grant");
    // Presented by another client (here the public "spa"): stolen, so it is spent for its own
    // client too.
    let code = new_code(&s, "grafana", &[]);
    let stolen = s.curl().post(
        &s.cg.mtls("/oidc/token"),
        &format!("{}&client_id=spa", code_form(&code)),
    );
    assert_eq!(json(&stolen)["error"], "invalid_grant", "{stolen:?}");
    assert!(stolen.body.contains("another client"), "{}", stolen.body);
    assert_eq!(
        json(&token(&s, &code_form(&code), true))["error"],
        "invalid_grant"
    );
}

#[test]
fn client_authentication_is_checked_and_answered_with_a_basic_challenge() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let code = new_code(&s, "grafana", &[]);
    let form = code_form(&code);
    for bad in [
        s.curl().arg("-u").arg("grafana:wrong-secret-0123456789"),
        s.curl().arg("-u").arg("nobody:whatever"),
        s.curl(),
    ] {
        let r = bad.post(&s.cg.mtls("/oidc/token"), &form);
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(json(&r)["error"], "invalid_client");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic")),
            "{r:?}"
        );
    }
    // The secret in the form is not this client's method (client_secret_basic).
    let post = format!("{form}&client_id=grafana&client_secret={SECRET}");
    assert_eq!(
        json(&s.curl().post(&s.cg.mtls("/oidc/token"), &post))["error"],
        "invalid_client"
    );
    // Unknown grant types and duplicated parameters.
    let r = token(&s, "grant_type=password&username=a&password=b", true);
    assert_eq!(json(&r)["error"], "unsupported_grant_type");
    let r = token(&s, &format!("{form}&code=again"), true);
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // The code still works: none of the refusals used it.
    assert_eq!(token(&s, &form, true).status, 200);
}

#[test]
fn pkce_is_s256_only_required_of_public_clients_and_never_downgraded() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    // A public client without PKCE, or with plain: an error at its redirect URI, no code.
    for extra in [
        vec![],
        vec![
            ("code_challenge", verifier),
            ("code_challenge_method", "plain"),
        ],
        vec![("code_challenge", challenge)],
    ] {
        let r = s
            .as_alice()
            .get(&authorize_url(&s, &code_request("spa", &extra)));
        assert_eq!(r.status, 302, "{r:?}");
        let q = query(r.header("location").unwrap());
        assert_eq!(q["error"], "invalid_request", "{extra:?}");
        assert!(!q.contains_key("code"));
        assert_eq!(
            (q["state"].as_str(), q["iss"].as_str()),
            ("st-123", s.cg.mtls("").as_str())
        );
    }
    let s256 = [
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let exchange = |code: &str, verifier: Option<&str>| {
        let mut form = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&client_id=spa",
            enc(code),
            enc(CALLBACK)
        );
        if let Some(v) = verifier {
            form.push_str(&format!("&code_verifier={v}"));
        }
        s.curl().post(&s.cg.mtls("/oidc/token"), &form)
    };
    let wrong = "x".repeat(43);
    assert_eq!(
        json(&exchange(&new_code(&s, "spa", &s256), Some(&wrong)))["error"],
        "invalid_grant"
    );
    assert_eq!(
        json(&exchange(&new_code(&s, "spa", &s256), None))["error"],
        "invalid_grant"
    );
    let ok = exchange(&new_code(&s, "spa", &s256), Some(verifier));
    assert_eq!(ok.status, 200, "{ok:?}");
    let header = jsonwebtoken::decode_header(json(&ok)["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::ES256,
        "the client's algorithm"
    );
    // A verifier for a code made without a challenge (authentik CVE-2024-23647).
    let plain_code = new_code(&s, "grafana", &[]);
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={verifier}",
        enc(&plain_code),
        enc(CALLBACK)
    );
    assert_eq!(json(&token(&s, &form, true))["error"], "invalid_grant");
}

#[test]
fn an_unknown_client_or_redirect_uri_gets_a_page_never_a_redirect() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let cases: Vec<Vec<(&str, &str)>> = vec![
        code_request("nobody", &[]),
        vec![
            ("response_type", "code"),
            ("client_id", "grafana"),
            ("redirect_uri", "https://evil.example/cb"),
            ("scope", "openid"),
        ],
        vec![
            ("response_type", "code"),
            ("client_id", "grafana"),
            ("redirect_uri", "https://app.example.test/callback/"),
            ("scope", "openid"),
        ],
        vec![
            ("response_type", "code"),
            ("client_id", "grafana"),
            ("scope", "openid"),
        ],
        // Bad in other ways too: still no redirect to an unregistered URI.
        vec![
            ("response_type", "token"),
            ("client_id", "grafana"),
            ("redirect_uri", "https://evil.example/cb"),
            ("prompt", "none"),
        ],
    ];
    for params in cases {
        let r = s.as_alice().get(&authorize_url(&s, &params));
        assert_eq!(r.status, 400, "{params:?}: {r:?}");
        assert!(r.header("location").is_none(), "{params:?}");
        assert!(r.body.contains("Sign-in request refused"), "{params:?}");
    }
    // A parameter given twice: which one would count is a guess.
    let twice = format!(
        "{}&redirect_uri={}",
        authorize_url(&s, &code_request("grafana", &[])),
        enc("https://evil.example/cb")
    );
    let r = s.as_alice().get(&twice);
    assert_eq!((r.status, r.header("location")), (400, None));
}

#[test]
fn errors_after_the_client_is_known_go_back_with_state_and_iss() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let iss = s.cg.mtls("");
    let back = |params: Vec<(&str, &str)>, with_cert: bool| {
        let c = if with_cert { s.as_alice() } else { s.curl() };
        let r = c.get(&authorize_url(&s, &params));
        assert_eq!(r.status, 302, "{params:?}: {r:?}");
        let loc = r.header("location").unwrap().to_string();
        assert!(loc.starts_with(CALLBACK), "{loc}");
        let q = query(&loc);
        assert_eq!(q["iss"], iss);
        assert!(!q.contains_key("code"));
        q
    };
    let base = |rt: &'static str, scope: &'static str| {
        vec![
            ("response_type", rt),
            ("client_id", "grafana"),
            ("redirect_uri", CALLBACK),
            ("scope", scope),
            ("state", "s1"),
        ]
    };
    assert_eq!(
        back(base("token", "openid"), true)["error"],
        "unsupported_response_type"
    );
    assert_eq!(
        back(base("code", "profile"), true)["error"],
        "invalid_scope"
    );
    let mut req = base("code", "openid");
    req.push(("request", "eyJhbGciOiJub25lIn0.e30."));
    assert_eq!(back(req, true)["error"], "request_not_supported");
    let mut none = base("code", "openid");
    none.push(("prompt", "none"));
    let q = back(none, false);
    assert_eq!(
        (q["error"].as_str(), q["state"].as_str()),
        ("login_required", "s1")
    );

    // Without prompt=none a browser without a certificate goes to /auth and comes back.
    let r = s.curl().get(&authorize_url(&s, &base("code", "openid")));
    assert_eq!(r.status, 302, "{r:?}");
    let loc = r.header("location").unwrap();
    assert!(loc.starts_with(&s.cg.mtls("/auth?rd=")), "{loc}");
    assert!(
        query(loc)["rd"].starts_with(&s.cg.mtls("/oidc/authorize?")),
        "{loc}"
    );
}

#[test]
fn a_person_the_client_does_not_admit_gets_a_page_and_no_code() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let r = s
        .as_alice()
        .get(&authorize_url(&s, &code_request("bobs-app", &[])));
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.header("location").is_none());
    assert!(
        r.body.contains("alice may not sign in to bobs-app"),
        "{}",
        r.body
    );
}

#[test]
fn oidc_configuration_errors_name_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::harness::pki::Pki::new(dir.path(), "CA");
    let config = |body: &str| {
        std::fs::write(
            dir.path().join("c.toml"),
            format!(
                "public_url = \"https://auth.example.test\"\n[client_ca]\nbundle = \"{}\"\n{body}",
                pki.ca_pem.display()
            ),
        )
        .unwrap();
        run(dir.path(), &["check-config", "--config", "c.toml"])
    };
    for (body, expect) in [
        ("[oidc]\n", "oidc.clients: none"),
        ("[oidc]\nacr = \" \"\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb\"]\n", "oidc.acr: is empty"),
        ("[[users]]\nname = \"x\"\nemail_verified = true\n", "users[0].email_verified"),
        ("[oidc]\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb#frag\"]\n", "oidc.clients[0].redirect_uris[0]"),
        ("[oidc]\n[[oidc.clients]]\nid = \"a\"\nsecret = \"short\"\nredirect_uris = [\"https://x/cb\"]\n", "shorter than 16"),
        ("[oidc]\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb\"]\nid_token_signed_response_alg = \"HS256\"\n", "oidc.clients[0].id_token_signed_response_alg"),
        ("[oidc]\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb\"]\ntoken_endpoint_auth_method = \"tls_client_auth\"\n", "oidc.clients[0].tls_client_auth_san_uri: missing"),
        ("[oidc]\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb\"]\nbackchannel_logout_uri = \"ftp://x/bc\"\n", "oidc.clients[0].backchannel_logout_uri: `ftp://x/bc` is not an http or https URL"),
        ("[oidc]\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb\"]\nbackchannel_logout_uri = \"/bc\"\n", "oidc.clients[0].backchannel_logout_uri: `/bc` is not an absolute URL"),
        ("[oidc]\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb\"]\npost_logout_redirect_uris = [\"https://x/\", \"https://x/out#f\"]\n", "oidc.clients[0].post_logout_redirect_uris[1]: `https://x/out#f` has a fragment"),
        ("[oidc]\nissuer = \"https://other.example.test\"\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb\"]\n", "oidc.issuer"),
        ("[session]\nallowed_redirect_hosts = [\"app.example.test\"]\n[oidc]\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb\"]\n", "session.allowed_redirect_hosts"),
    ] {
        let (code, out) = config(body);
        assert_eq!(code, 2, "{body}: {out}");
        assert!(out.contains(expect), "{body}: {out}");
    }
    let (code, out) =
        config("[oidc]\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb\"]\n");
    assert_eq!(code, 0, "{out}");
    // Replicas sharing Redis share the provider's grants there (tests/it/oidc_redis.rs).
    let (code, out) = config("[store]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:1/\"\n[oidc]\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb\"]\n");
    assert_eq!(code, 0, "{out}");
    let (code, out) = config(
        "[oidc]\n[[oidc.clients]]\nid = \"a\"\nredirect_uris = [\"https://x/cb\"]\npost_logout_redirect_uris = [\"https://x/\"]\nbackchannel_logout_uri = \"http://x:8080/bc\"\n",
    );
    assert_eq!(code, 0, "{out}");
}

/// A relying party as small as one can be: a sign-in link (PKCE, state, nonce) and a callback
/// that redeems the code at the token endpoint (through curl, trusting the test CA), checks
/// the ID token against the JWKS and says who signed in. Served on `port` until the test ends.
struct TestApp {
    port: u16,
}

impl TestApp {
    fn start_on(
        port: u16,
        issuer: String,
        ca: std::path::PathBuf,
        scratch: std::path::PathBuf,
        mtls_port: u16,
    ) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let callback = format!("http://rp.example.com:{port}/callback");
        std::thread::spawn(move || {
            let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
            let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
            for stream in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(&stream);
                let mut line = String::new();
                let _ = std::io::BufRead::read_line(&mut reader, &mut line);
                let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                let body = if path.starts_with("/callback") {
                    let q = query(&format!("http://x{path}"));
                    let form = format!(
                        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={verifier}",
                        enc(q.get("code").map_or("", String::as_str)),
                        enc(&callback)
                    );
                    let r = crate::harness::curl::Curl::new(&scratch)
                        .cacert(&ca)
                        .resolve("auth.example.com", mtls_port)
                        .arg("-u")
                        .arg(format!("grafana:{SECRET}"))
                        .post(&format!("{issuer}/oidc/token"), &form);
                    let id_token: serde_json::Value =
                        serde_json::from_str(&r.body).unwrap_or_default();
                    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(
                        &crate::harness::curl::Curl::new(&scratch)
                            .cacert(&ca)
                            .resolve("auth.example.com", mtls_port)
                            .get(&format!("{issuer}/oidc/jwks"))
                            .body,
                    )
                    .unwrap();
                    let token = id_token["id_token"].as_str().unwrap_or("");
                    let verified = jsonwebtoken::decode_header(token).ok().and_then(|h| {
                        let jwk = jwks.find(h.kid.as_deref()?)?;
                        let mut v = jsonwebtoken::Validation::new(h.alg);
                        v.set_audience(&["grafana"]);
                        v.set_issuer(&[issuer.as_str()]);
                        jsonwebtoken::decode::<serde_json::Value>(
                            token,
                            &jsonwebtoken::DecodingKey::from_jwk(jwk).ok()?,
                            &v,
                        )
                        .ok()
                    });
                    match verified {
                        Some(data)
                            if data.claims["nonce"] == "rp-nonce"
                                && q.get("state").map(String::as_str) == Some("rp-state") =>
                        {
                            format!(
                                "<p id=who>Signed in as {} ({})</p>",
                                data.claims["sub"].as_str().unwrap_or(""),
                                data.claims["email"].as_str().unwrap_or("")
                            )
                        }
                        _ => format!("<p>Sign-in failed: {}</p>", r.body),
                    }
                } else {
                    let authorize = format!(
                        "{issuer}/oidc/authorize?response_type=code&client_id=grafana&redirect_uri={}&scope=openid%20email&state=rp-state&nonce=rp-nonce&code_challenge={challenge}&code_challenge_method=S256",
                        enc(&callback)
                    );
                    format!("<p>Test app</p><a id=signin href=\"{authorize}\">Sign in with certgate</a>")
                };
                let page = format!("<!doctype html><html><body>{body}</body></html>");
                let _ = std::io::Write::write_all(
                    &mut &stream,
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                        page.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Self { port }
    }
}

#[test]
fn a_person_with_a_certificate_clicks_sign_in_at_an_app_and_is_signed_in_without_a_password() {
    if !crate::browser::tools_present() || !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = crate::harness::pki::Pki::new(d, "Test CA");
    let server = pki.server(&["auth.example.com"]);
    let alice = pki.user("alice");
    // The app's callback is the test app's; certgate is auth.example.com to the browser.
    let app_port = crate::harness::free_port();
    let callback = format!("http://rp.example.com:{app_port}/callback");
    let body = format!(
        "public_url = \"https://auth.example.com:{{MTLS_PORT}}\"\ndata_dir = \"data\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n[client_ca]\nbundle = \"{}\"\n[[users]]\nname = \"alice\"\nemail = \"alice@example.test\"\n[access]\nallow_unmatched = true\n[oidc]\n[[oidc.clients]]\nid = \"grafana\"\nsecret = \"{SECRET}\"\nredirect_uris = [\"{callback}\"]\n",
        server.cert.display(),
        server.key.display(),
        pki.ca_pem.display()
    );
    let cg = crate::harness::certgate::Certgate::start(d, &body, true);
    let issuer = format!("https://auth.example.com:{}", cg.mtls_port.unwrap());
    // The test app listens where its callback says (curl reaches certgate as localhost).
    let app = TestApp::start_on(
        app_port,
        issuer.clone(),
        pki.ca_pem.clone(),
        d.to_path_buf(),
        cg.mtls_port.unwrap(),
    );
    let p12 = crate::browser::p12(d, &pki, &alice, "alice");
    let mut b = crate::harness::chromium::Chromium::start(
        &pki.ca_pem,
        Some(crate::harness::chromium::Identity {
            p12: &p12,
            password: "pw",
        }),
    );
    b.goto(&format!("http://rp.example.com:{}/", app.port));
    assert!(b.text().contains("Test app"), "{}", b.text());
    b.click("#signin");
    let text = b.text();
    assert!(b.url().starts_with(&callback), "{}: {text}", b.url());
    assert!(
        text.contains("Signed in as alice (alice@example.test)"),
        "{text}"
    );
    b.screenshot("oidc-01-app-signed-in");
}

#[test]
fn keys_rotate_publishes_the_next_oidc_keys_at_once_and_signs_with_them_later() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let kids = |s: &Setup| -> Vec<String> {
        json(&s.curl().get(&s.cg.mtls("/oidc/jwks")))["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    let before = kids(&s);
    assert_eq!(before.len(), 3);
    let (status, out) = run(
        s.dir.path(),
        &[
            "keys",
            "rotate",
            "--config",
            "certgate.toml",
            "--publish-ahead",
            "1h",
        ],
    );
    assert_eq!(status, 0, "{out}");
    assert_eq!(out.matches("next OpenID Connect key").count(), 3, "{out}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while kids(&s).len() != 6 {
        assert!(
            Instant::now() < deadline,
            "the next keys were not published: {:?}",
            kids(&s)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Published ahead, not yet signing: a new ID token still carries a kid of before.
    let code = new_code(&s, "grafana", &[]);
    let form = code_form(&code);
    let t = json(&token(&s, &form, true));
    let kid = jsonwebtoken::decode_header(t["id_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    assert!(before.contains(&kid), "{kid} is not one of {before:?}");
    let (_, list) = run(s.dir.path(), &["keys", "list", "--config", "certgate.toml"]);
    assert_eq!(list.matches("(OpenID Connect,").count(), 6, "{list}");
    assert!(list.contains("next  (OpenID Connect, RS256)"), "{list}");
}

/// A device (a TV, a watch) asks for codes.
fn device_request(s: &Setup) -> serde_json::Value {
    let r = s.curl().post(
        &s.cg.mtls("/oidc/device"),
        "client_id=tv&scope=openid%20profile",
    );
    assert_eq!(r.status, 200, "{r:?}");
    json(&r)
}

fn device_poll(s: &Setup, device_code: &str) -> Response {
    s.curl().post(
        &s.cg.mtls("/oidc/token"),
        &format!(
            "grant_type={}&client_id=tv&device_code={}",
            enc("urn:ietf:params:oauth:grant-type:device_code"),
            enc(device_code)
        ),
    )
}

/// The person's decision on certgate's device page, with alice's certificate.
fn device_decide(s: &Setup, user_code: &str, action: &str, origin: Option<&str>) -> Response {
    let mut c = s.as_alice();
    if let Some(o) = origin {
        c = c.header(&format!("Origin: {o}"));
    }
    c.post(
        &s.cg.mtls("/oidc/device/verify"),
        &format!("user_code={}&action={action}", enc(user_code)),
    )
}

#[test]
fn a_device_is_signed_in_from_a_phone_with_a_certificate_and_out_with_it() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let origin = s.cg.mtls("");
    let d = device_request(&s);
    let (device_code, user_code) = (
        d["device_code"].as_str().unwrap(),
        d["user_code"].as_str().unwrap(),
    );
    assert_eq!(d["interval"], 5);
    let complete = d["verification_uri_complete"].as_str().unwrap();
    assert!(
        complete.starts_with(&s.cg.mtls("/oidc/device/verify?user_code=")),
        "{complete}"
    );

    // The phone opens the link: without a certificate it is sent to sign in first.
    let r = s.curl().get(complete);
    assert_eq!(r.status, 302);
    assert!(r
        .header("location")
        .unwrap()
        .starts_with(&s.cg.mtls("/auth?rd=")));
    let page = s.as_alice().get(complete);
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("Sign in tv as alice"), "{}", page.body);
    // A form posted from elsewhere (no Origin, or another one) decides nothing.
    assert_eq!(device_decide(&s, user_code, "approve", None).status, 403);
    assert_eq!(
        device_decide(&s, user_code, "approve", Some("https://evil.example")).status,
        403
    );
    let typed = user_code.to_lowercase().replace('-', " ");
    let ok = device_decide(&s, &typed, "approve", Some(&origin));
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.body.contains("tv is signed in as alice"), "{}", ok.body);

    let t = device_poll(&s, device_code);
    assert_eq!(t.status, 200, "{t:?}");
    let t = json(&t);
    let claims = verified_claims(&s, t["id_token"].as_str().unwrap(), "tv");
    assert_eq!(claims["sub"], "alice");
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&s, access).status, 200);
    assert_eq!(
        json(&device_poll(&s, device_code))["error"],
        "invalid_grant",
        "handed out once"
    );

    // Signing the phone out (its certificate's serial) ends the device's grant too.
    let serial = crate::ca::serial_of(&s.alice.cert);
    let (status, out) = run(
        s.dir.path(),
        &["revoke", "--config", "certgate.toml", "--device", &serial],
    );
    assert_eq!(status, 0, "{out}");
    let deadline = Instant::now() + Duration::from_secs(1);
    while userinfo(&s, access).status != 401 {
        assert!(
            Instant::now() < deadline,
            "the device still signed in after its phone was signed out"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_device_polls_politely_and_hears_a_refusal() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let d = device_request(&s);
    let device_code = d["device_code"].as_str().unwrap();
    assert_eq!(
        json(&device_poll(&s, device_code))["error"],
        "authorization_pending"
    );
    assert_eq!(json(&device_poll(&s, device_code))["error"], "slow_down");
    let denied = device_decide(
        &s,
        d["user_code"].as_str().unwrap(),
        "deny",
        Some(&s.cg.mtls("")),
    );
    assert_eq!(denied.status, 200, "{denied:?}");
    // A decided request answers at once: slow_down only holds back polls of a pending one.
    assert_eq!(
        json(&device_poll(&s, device_code))["error"],
        "access_denied"
    );
    assert_eq!(
        json(&device_poll(&s, "no-such-code"))["error"],
        "invalid_grant"
    );
    // An unknown user code on the page: said so, nothing decided.
    let r = device_decide(&s, "BCDF-GHJK", "approve", Some(&s.cg.mtls("")));
    assert_eq!(r.status, 400);
}

#[test]
fn tokens_issued_over_a_certificate_work_only_over_that_certificate() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    // The app's server holds a certificate of the client CA and presents it at the token
    // endpoint (RFC 8705 §3): its tokens are bound to it.
    let server = s.pki.user("grafana-server");
    let with_server_cert = || s.curl().cert(&server.cert, &server.key);
    let discovery = json(
        &s.curl()
            .get(&s.cg.mtls("/.well-known/openid-configuration")),
    );
    assert_eq!(
        discovery["tls_client_certificate_bound_access_tokens"],
        true
    );
    let code = new_code(&s, "grafana", &[]);
    let t = with_server_cert()
        .arg("-u")
        .arg(format!("grafana:{SECRET}"))
        .post(&s.cg.mtls("/oidc/token"), &code_form(&code));
    assert_eq!(t.status, 200, "{t:?}");
    let t = json(&t);
    let (access, refresh) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    let der: rustls_pki_types::CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_file(&server.cert).unwrap();
    let thumbprint =
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der));
    let seen = json(&token_call(
        &s,
        "/oidc/introspect",
        &format!("token={access}"),
    ));
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["cnf"]["x5t#S256"], thumbprint.as_str());

    // userinfo: refused without the certificate and with another one, answered with it.
    assert_eq!(userinfo(&s, access).status, 401);
    let other = s
        .as_alice()
        .header(&format!("Authorization: Bearer {access}"))
        .get(&s.cg.mtls("/oidc/userinfo"));
    assert_eq!(other.status, 401, "{other:?}");
    assert!(
        other.body.contains("bound to a certificate"),
        "{}",
        other.body
    );
    let own = with_server_cert()
        .header(&format!("Authorization: Bearer {access}"))
        .get(&s.cg.mtls("/oidc/userinfo"));
    assert_eq!(own.status, 200, "{own:?}");

    // The refresh token too; refused without the certificate, and not used up by that.
    let form = format!("grant_type=refresh_token&refresh_token={}", enc(refresh));
    let without = token(&s, &form, true);
    assert_eq!(json(&without)["error"], "invalid_grant", "{without:?}");
    let again = with_server_cert()
        .arg("-u")
        .arg(format!("grafana:{SECRET}"))
        .post(&s.cg.mtls("/oidc/token"), &form);
    assert_eq!(again.status, 200, "{again:?}");
}

/// A client-authenticated POST of `form` to `path` as grafana.
fn token_call(s: &Setup, path: &str, form: &str) -> Response {
    s.curl()
        .arg("-u")
        .arg(format!("grafana:{SECRET}"))
        .post(&s.cg.mtls(path), form)
}

#[test]
fn a_client_that_authenticates_with_its_certificate_gets_tokens_bound_to_it() {
    if !require("curl") {
        return;
    }
    let s = provider("");
    let mut spec = certgate::ca::ClientSpec::new("mtls-app-server", 30);
    spec.uris = vec!["urn:example:mtls-app".into()];
    let server = s.pki.client(&spec);
    let impostor = s.pki.user("someone-else");
    let discovery = json(
        &s.curl()
            .get(&s.cg.mtls("/.well-known/openid-configuration")),
    );
    assert!(
        discovery["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("tls_client_auth")),
        "{discovery}"
    );
    let code = new_code(&s, "mtls-app", &[]);
    let form = format!("{}&client_id=mtls-app", code_form(&code));
    // Without a certificate, or with one that is not the client's: invalid_client, and the
    // code is still good.
    for (who, cert) in [("none", None), ("impostor", Some(&impostor))] {
        let mut c = s.curl();
        if let Some(cert) = cert {
            c = c.cert(&cert.cert, &cert.key);
        }
        let r = c.post(&s.cg.mtls("/oidc/token"), &form);
        assert_eq!(
            (r.status, json(&r)["error"].as_str()),
            (401, Some("invalid_client")),
            "{who}: {r:?}"
        );
    }
    let ok = s
        .curl()
        .cert(&server.cert, &server.key)
        .post(&s.cg.mtls("/oidc/token"), &form);
    assert_eq!(ok.status, 200, "{ok:?}");
    let access = json(&ok)["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        userinfo(&s, &access).status,
        401,
        "bound to the client's certificate"
    );
    let own = s
        .curl()
        .cert(&server.cert, &server.key)
        .header(&format!("Authorization: Bearer {access}"))
        .get(&s.cg.mtls("/oidc/userinfo"));
    assert_eq!(own.status, 200, "{own:?}");
}

#[test]
fn explain_says_who_may_sign_in_to_a_client_and_why() {
    let s = provider("");
    let explain = |args: &[&str]| {
        let mut all = vec!["explain", "--config", "certgate.toml"];
        all.extend_from_slice(args);
        run(s.dir.path(), &all)
    };
    let (code, out) = explain(&["--client-id", "grafana", "--user", "alice"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("alice may sign in to grafana: the client lists no users or groups"),
        "{out}"
    );
    let cert = s.alice.cert.display().to_string();
    let (code, out) = explain(&["--client-id", "bobs-app", "--cert", &cert]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("alice may not sign in to bobs-app: not in its users [bob]"),
        "{out}"
    );
    let (code, out) = explain(&["--client-id", "nobody", "--user", "alice"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("no client `nobody`") && out.contains("grafana"),
        "{out}"
    );
}
