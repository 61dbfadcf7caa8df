//! RFC 7662 introspection and RFC 7009 revocation at certgate's OpenID Connect provider, over
//! HTTP as relying parties call them: only the client a token was issued to learns that it is
//! active, a revocation (`certgate revoke`, `/oidc/revoke`) makes it inactive, and both are
//! counted in `/metrics` and written to the audit log.

use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::direct::{setup_env, Setup, LOOPBACK};
use crate::harness::backchannel::Receiver;
use crate::harness::certgate::run;
use crate::harness::curl::Response;
use crate::harness::require;
use crate::oidc::{enc, json, new_code, token, userinfo, CALLBACK, SECRET};

const WIKI_SECRET: &str = "wiki-secret-0123456789abcdef";

/// grafana (client_secret_basic) and wiki (client_secret_post) both admit alice; JSON logs.
pub(crate) fn provider() -> Setup {
    provider_with("")
}

/// [`provider`] with more keys for grafana (TOML lines).
fn provider_with(grafana: &str) -> Setup {
    setup_env(
        LOOPBACK,
        &format!(
            r#"[oidc]
[[oidc.clients]]
id = "grafana"
secret = "{SECRET}"
redirect_uris = ["{CALLBACK}"]
{grafana}
[[oidc.clients]]
id = "wiki"
secret = "{WIKI_SECRET}"
token_endpoint_auth_method = "client_secret_post"
redirect_uris = ["{CALLBACK}"]
"#
        ),
        &[("CERTGATE_LOG_FORMAT", "json")],
    )
}

/// Access and refresh token of a new sign-in of alice to grafana.
fn sign_in(s: &Setup) -> (String, String) {
    let code = new_code(s, "grafana", &[]);
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}",
        enc(&code),
        enc(CALLBACK)
    );
    let r = token(s, &form, true);
    assert_eq!(r.status, 200, "{r:?}");
    let t = json(&r);
    (
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// A form POST to `/oidc/<endpoint>` as `client` (`grafana` with Basic, `wiki` in the form,
/// anything else: no credentials).
fn call(s: &Setup, endpoint: &str, client: &str, form: &str) -> Response {
    let url = s.cg.mtls(&format!("/oidc/{endpoint}"));
    match client {
        "grafana" => s
            .curl()
            .arg("-u")
            .arg(format!("grafana:{SECRET}"))
            .post(&url, form),
        "wiki" => s.curl().post(
            &url,
            &format!("client_id=wiki&client_secret={WIKI_SECRET}&{form}"),
        ),
        _ => s.curl().post(&url, form),
    }
}

fn introspect(s: &Setup, client: &str, token: &str) -> serde_json::Value {
    let r = call(s, "introspect", client, &format!("token={}", enc(token)));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
    json(&r)
}

fn inactive() -> serde_json::Value {
    serde_json::json!({"active": false})
}

fn refresh(s: &Setup, refresh_token: &str) -> Response {
    token(
        s,
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            enc(refresh_token)
        ),
        true,
    )
}

fn counted(s: &Setup, endpoint: &str, client: &str, outcome: &str) -> f64 {
    s.cg.metric(&format!(
        "certgate_oidc_requests_total{{client=\"{client}\",endpoint=\"{endpoint}\",outcome=\"{outcome}\"}}"
    ))
    .unwrap_or(0.0)
}

pub(crate) fn events(s: &Setup, event: &str) -> Vec<serde_json::Value> {
    s.cg.audit_events()
        .into_iter()
        .filter(|e| e["fields"]["event"] == event)
        .map(|e| e["fields"].clone())
        .collect()
}

#[test]
fn introspection_is_active_only_for_the_live_tokens_of_the_asking_client() {
    if !require("curl") {
        return;
    }
    let s = provider();
    let issuer = s.cg.mtls("");
    let d = json(
        &s.curl()
            .get(&s.cg.mtls("/.well-known/openid-configuration")),
    );
    assert_eq!(
        d["introspection_endpoint"],
        format!("{issuer}/oidc/introspect")
    );
    assert_eq!(d["revocation_endpoint"], format!("{issuer}/oidc/revoke"));
    for key in [
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        assert_eq!(d[key], d["token_endpoint_auth_methods_supported"], "{key}");
    }

    let (access, refresh_token) = sign_in(&s);
    let a = introspect(&s, "grafana", &access);
    assert_eq!(a["active"], true, "{a}");
    assert_eq!(
        (
            a["token_type"].as_str(),
            a["client_id"].as_str(),
            a["sub"].as_str(),
            a["iss"].as_str(),
        ),
        (
            Some("Bearer"),
            Some("grafana"),
            Some("alice"),
            Some(issuer.as_str())
        )
    );
    let scopes: Vec<&str> = a["scope"].as_str().unwrap().split(' ').collect();
    assert!(
        scopes.contains(&"openid") && scopes.contains(&"offline_access"),
        "{a}"
    );
    let (iat, exp) = (a["iat"].as_i64().unwrap(), a["exp"].as_i64().unwrap());
    assert!(iat <= exp && exp - iat <= 600, "{a}");
    let r = call(
        &s,
        "introspect",
        "grafana",
        &format!("token={}&token_type_hint=access_token", enc(&refresh_token)),
    );
    let r = json(&r);
    assert_eq!(
        (r["active"].as_bool(), r["token_type"].as_str()),
        (Some(true), Some("refresh_token")),
        "a wrong hint is only a hint: {r}"
    );

    // Another client learns nothing of grafana's tokens, nor of tokens that do not exist.
    assert_eq!(introspect(&s, "wiki", &access), inactive());
    assert_eq!(introspect(&s, "wiki", &refresh_token), inactive());
    assert_eq!(introspect(&s, "grafana", "no-such-token"), inactive());

    // Client authentication is required, as at the token endpoint.
    for (client, form) in [
        ("nobody", format!("token={}", enc(&access))),
        (
            "nobody",
            format!("client_id=grafana&token={}", enc(&access)),
        ),
        (
            "nobody",
            format!(
                "client_id=wiki&client_secret=wrong-0123456789abc&token={}",
                enc(&access)
            ),
        ),
    ] {
        let r = call(&s, "introspect", client, &form);
        assert_eq!(r.status, 401, "{form}: {r:?}");
        assert_eq!(json(&r)["error"], "invalid_client", "{r:?}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic")),
            "{r:?}"
        );
        assert!(!r.body.contains("active"), "{r:?}");
    }
    let r = call(&s, "introspect", "grafana", "token_type_hint=access_token");
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // A rotated refresh token is spent; the new one counts.
    let r = refresh(&s, &refresh_token);
    assert_eq!(r.status, 200, "{r:?}");
    let t = json(&r);
    let (access2, refresh2) = (
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_eq!(introspect(&s, "grafana", &refresh_token), inactive());
    assert_eq!(introspect(&s, "grafana", &refresh2)["active"], true);

    // `certgate revoke --user` ends every token of the sign-in within a second.
    let (status, out) = run(
        s.dir.path(),
        &["revoke", "--config", "certgate.toml", "--user", "alice"],
    );
    assert_eq!(status, 0, "{out}");
    let deadline = Instant::now() + Duration::from_secs(1);
    while introspect(&s, "grafana", &access2) != inactive() {
        assert!(
            Instant::now() < deadline,
            "still active after the revocation"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(introspect(&s, "grafana", &refresh2), inactive());
    assert_eq!(introspect(&s, "grafana", &access), inactive());

    // Counted per client and outcome; the 401s have no client to count under but `unknown`,
    // except the one that named a configured client.
    assert!(counted(&s, "introspect", "grafana", "ok") >= 3.0);
    assert!(counted(&s, "introspect", "grafana", "inactive") >= 4.0);
    assert_eq!(counted(&s, "introspect", "wiki", "inactive"), 2.0);
    assert_eq!(counted(&s, "introspect", "unknown", "invalid_client"), 1.0);
    assert_eq!(counted(&s, "introspect", "grafana", "invalid_client"), 1.0);
    assert_eq!(counted(&s, "introspect", "wiki", "invalid_client"), 1.0);
    assert_eq!(counted(&s, "token", "grafana", "ok"), 2.0);
    assert_eq!(counted(&s, "authorize", "grafana", "ok"), 1.0);

    // Audited: who asked, whether the token counted; never a token.
    let seen = events(&s, "oidc_introspect");
    assert!(
        seen.iter()
            .any(|e| e["client_id"] == "grafana" && e["active"] == true && e["user"] == "alice"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| e["client_id"] == "wiki" && e["active"] == false && e["grant"] == ""),
        "{seen:?}"
    );
    assert_eq!(events(&s, "oidc_code").len(), 1);
    assert_eq!(events(&s, "oidc_token").len(), 2);
    let refused = events(&s, "oidc_refused");
    assert!(
        refused
            .iter()
            .any(|e| e["endpoint"] == "introspect" && e["error"] == "invalid_client"),
        "{refused:?}"
    );
    let logs = s.cg.logs();
    for secret in [&access, &refresh_token, &access2, &refresh2] {
        assert!(!logs.contains(secret.as_str()), "a token in the log");
    }
}

#[test]
fn revocation_ends_an_access_token_alone_and_a_refresh_token_its_whole_sign_in() {
    if !require("curl") {
        return;
    }
    let s = provider();
    let (access, refresh_token) = sign_in(&s);
    assert_eq!(userinfo(&s, &access).status, 200);

    // An access token: it alone stops working.
    let r = call(&s, "revoke", "grafana", &format!("token={}", enc(&access)));
    assert_eq!((r.status, r.body.as_str()), (200, ""), "{r:?}");
    assert_eq!(introspect(&s, "grafana", &access), inactive());
    assert_eq!(userinfo(&s, &access).status, 401);
    assert_eq!(introspect(&s, "grafana", &refresh_token)["active"], true);
    let r = refresh(&s, &refresh_token);
    assert_eq!(r.status, 200, "the sign-in lives on: {r:?}");
    let t = json(&r);
    let (access2, refresh2) = (
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_eq!(userinfo(&s, &access2).status, 200);

    // A refresh token (with a wrong hint: only a hint): the whole sign-in ends.
    let r = call(
        &s,
        "revoke",
        "grafana",
        &format!("token={}&token_type_hint=access_token", enc(&refresh2)),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(introspect(&s, "grafana", &refresh2), inactive());
    assert_eq!(introspect(&s, "grafana", &access2), inactive());
    assert_eq!(userinfo(&s, &access2).status, 401);
    assert_eq!(json(&refresh(&s, &refresh2))["error"], "invalid_grant");

    // Another client's token, an unknown one, an unknown hint: 200, and nothing changes.
    let (access3, refresh3) = sign_in(&s);
    for (client, form) in [
        ("wiki", format!("token={}", enc(&refresh3))),
        ("wiki", format!("token={}", enc(&access3))),
        ("grafana", "token=no-such-token".to_string()),
        (
            "grafana",
            "token=no-such-token&token_type_hint=id_token".to_string(),
        ),
    ] {
        let r = call(&s, "revoke", client, &form);
        assert_eq!((r.status, r.body.as_str()), (200, ""), "{form}: {r:?}");
    }
    assert_eq!(introspect(&s, "grafana", &access3)["active"], true);
    assert_eq!(introspect(&s, "grafana", &refresh3)["active"], true);
    assert_eq!(userinfo(&s, &access3).status, 200);

    // Client authentication is required; a token is required.
    let r = call(&s, "revoke", "nobody", &format!("token={}", enc(&refresh3)));
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(json(&r)["error"], "invalid_client");
    assert!(r
        .header("www-authenticate")
        .is_some_and(|h| h.starts_with("Basic")));
    let r = call(&s, "revoke", "grafana", "token_type_hint=refresh_token");
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(introspect(&s, "grafana", &refresh3)["active"], true);

    assert_eq!(counted(&s, "revoke", "grafana", "ok"), 4.0);
    assert_eq!(counted(&s, "revoke", "wiki", "ok"), 2.0);
    assert_eq!(counted(&s, "revoke", "unknown", "invalid_client"), 1.0);
    assert_eq!(counted(&s, "revoke", "grafana", "invalid_request"), 1.0);
    assert!(counted(&s, "userinfo", "grafana", "ok") >= 3.0);
    // The revoked access token and the access token of the revoked sign-in: both grafana's.
    assert_eq!(counted(&s, "userinfo", "grafana", "invalid_token"), 2.0);
    assert_eq!(counted(&s, "token", "grafana", "invalid_grant"), 1.0);

    let revoked = events(&s, "oidc_revoke");
    let kinds = |client: &str| -> Vec<String> {
        revoked
            .iter()
            .filter(|e| e["client_id"] == client)
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        kinds("grafana"),
        ["access", "refresh", "", ""],
        "{revoked:?}"
    );
    assert_eq!(kinds("wiki"), ["", ""], "{revoked:?}");
    assert!(revoked.iter().any(|e| e["user"] == "alice"), "{revoked:?}");
    let refused = events(&s, "oidc_refused");
    assert!(
        refused
            .iter()
            .any(|e| e["endpoint"] == "token" && e["error"] == "invalid_grant"),
        "{refused:?}"
    );
    let logs = s.cg.logs();
    for secret in [
        &access,
        &refresh_token,
        &access2,
        &refresh2,
        &access3,
        &refresh3,
    ] {
        assert!(!logs.contains(secret.as_str()), "a token in the log");
    }
}

#[test]
fn revoking_a_refresh_token_tells_the_app_over_the_back_channel_and_an_access_token_does_not() {
    if !require("curl") {
        return;
    }
    let rp = Receiver::start(&[]);
    let s = provider_with(&format!("backchannel_logout_uri = \"{}\"", rp.url()));
    let (access, refresh_token) = sign_in(&s);
    let r = call(&s, "revoke", "grafana", &format!("token={}", enc(&access)));
    assert_eq!(r.status, 200, "{r:?}");
    // Another client revoking grafana's refresh token changes nothing, and tells nobody.
    let r = call(
        &s,
        "revoke",
        "wiki",
        &format!("token={}", enc(&refresh_token)),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        rp.wait_for(1, Duration::from_millis(700)).is_empty(),
        "the sign-in lives on: no logout token"
    );
    let r = call(
        &s,
        "revoke",
        "grafana",
        &format!("token={}", enc(&refresh_token)),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let posts = rp.wait_for(1, Duration::from_secs(2));
    assert_eq!(posts.len(), 1, "{posts:?}");
    let token = posts[0].logout_token();
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (claims["sub"].as_str(), claims["aud"].as_str()),
        (Some("alice"), Some("grafana"))
    );
    assert!(
        claims["sid"].as_str().is_some_and(|sid| !sid.is_empty()),
        "{claims}"
    );
}
