//! A real Home Assistant: first alone (its tokens, its WebSocket authentication, and whom it
//! bans when it trusts `X-Forwarded-For` from the proxy's address), then behind real nginx
//! with the config `certgate proxy-config nginx --app home-assistant` prints, in both layouts
//! (issue 23's end-to-end check; the README's "Home Assistant" section is written from it).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use std::time::{Duration, Instant};

use crate::harness::certgate::Certgate;
use crate::harness::chromium::{Chromium, Identity, POLICY};
use crate::harness::curl::Curl;
use crate::harness::home_assistant::{
    self, HaSocket, HomeAssistant, OWNER, OWNER_NAME, OWNER_PASSWORD,
};
use crate::harness::nginx::Nginx;
use crate::harness::pki::{CertFiles, Pki};
use crate::harness::upstream::{seen_headers, Upstream};
use crate::harness::{free_port, missing, require};
use crate::proxies::scenarios::identity_aliases;

/// A client address behind the proxy (TEST-NET-3, never routed).
const CLIENT: &str = "203.0.113.9";

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The claims of Home Assistant's access token (an HS256 JWT), read, not verified.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[test]
fn home_assistant_tokens_websocket_and_the_forwarded_client_banned_not_the_proxy() {
    if !(require("curl") && home_assistant::require()) {
        return;
    }
    let ha = HomeAssistant::start();
    let api = format!("{}/api/", ha.url());
    let bearer = format!("Authorization: Bearer {}", ha.access_token());

    // Failed authentications from 127.0.0.1 count toward banning it (threshold 3): this test
    // makes at most two in a row (the 401 below, then the wrong WebSocket token; the right
    // one resets the count), then one more (the wrong refresh token).
    let ok = ha.curl().header(&bearer).get(&api);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(json(&ok.body)["message"], "API running.");
    let anonymous = ha.curl().get(&api);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");

    let states = ha
        .curl()
        .header(&bearer)
        .get(&format!("{}/api/states", ha.url()));
    assert_eq!(states.status, 200, "{states:?}");
    assert!(
        states
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{states:?}"
    );
    assert!(json(&states.body).is_array(), "{states:?}");

    let refused = HaSocket::connect(ha.port(), "not-a-token");
    assert!(!refused.auth_ok, "a wrong token authenticated");
    assert_eq!(
        refused.auth_reply["message"],
        "Invalid access token or password"
    );
    let mut socket = ha.websocket(ha.access_token());
    assert!(socket.auth_ok, "{}", socket.auth_reply);
    let me = socket.command(json!({"type": "auth/current_user"}));
    assert_eq!(me["success"], true, "{me}");
    assert_eq!(me["result"]["name"], OWNER_NAME, "{me}");
    assert_eq!(me["result"]["is_owner"], true, "{me}");
    // The session onboarding made: one refresh token, for the harness's client id.
    let tokens = socket.command(json!({"type": "auth/refresh_tokens"}));
    let tokens = tokens["result"].as_array().unwrap();
    let normal: Vec<_> = tokens.iter().filter(|t| t["type"] == "normal").collect();
    assert_eq!(normal.len(), 1, "{tokens:?}");
    assert_eq!(normal[0]["client_id"], ha.client_id(), "{tokens:?}");

    // A refresh gives an access token issued by the same refresh token (`iss` is its id: the
    // one to remove to end the session). Within one second it is the same string.
    let fresh = ha.refresh(ha.refresh_token()).expect("refresh");
    assert_eq!(claims(&fresh)["iss"], claims(ha.access_token())["iss"]);
    let with_fresh = ha
        .curl()
        .header(&format!("Authorization: Bearer {fresh}"))
        .get(&api);
    assert_eq!(with_fresh.status, 200, "{with_fresh:?}");
    assert!(ha.websocket_auth(&fresh));
    let wrong = ha
        .refresh("not-a-refresh-token")
        .expect_err("a wrong refresh token");
    assert_eq!(wrong.status, 400, "{wrong:?}");
    assert_eq!(json(&wrong.body)["error"], "invalid_grant", "{wrong:?}");

    // The login flow the login page runs, with the right password.
    let login = ha.login(OWNER, OWNER_PASSWORD, &[]);
    assert_eq!(login.status, 200, "{login:?}");
    assert_eq!(json(&login.body)["type"], "create_entry", "{login:?}");

    // 127.0.0.1 is a trusted proxy, so Home Assistant takes the client's address from
    // X-Forwarded-For: three failed logins ban that address, and the proxy stays served. (A
    // proxy that passes on what the client sent lets a client pick the address to ban: issue
    // 23 item 3.)
    let forwarded = format!("X-Forwarded-For: {CLIENT}");
    for attempt in 1..=3 {
        let failed = ha.login(OWNER, "wrong password", &[&forwarded]);
        assert_eq!(failed.status, 200, "attempt {attempt}: {failed:?}");
        assert_eq!(
            json(&failed.body)["errors"]["base"],
            "invalid_auth",
            "attempt {attempt}: {failed:?}"
        );
    }
    let bans = ha.ip_bans().expect("ip_bans.yaml written at the ban");
    assert!(bans.contains(CLIENT), "ip_bans.yaml: {bans}");
    assert!(!bans.contains("127.0.0.1"), "ip_bans.yaml: {bans}");
    // The ban file is written before the answer, the log line a moment later (under load).
    let said = format!("Banned IP {CLIENT} for too many login attempts");
    crate::replicas::within(
        std::time::Duration::from_secs(5),
        "the ban in the log",
        || ha.log().contains(&said),
    );

    let banned = ha.curl().header(&forwarded).header(&bearer).get(&api);
    assert_eq!(banned.status, 403, "{banned:?}");
    let right_password = ha.login(OWNER, OWNER_PASSWORD, &[&forwarded]);
    assert_eq!(right_password.status, 403, "{right_password:?}");
    let proxy = ha.curl().header(&bearer).get(&api);
    assert_eq!(proxy.status, 200, "{proxy:?}");
    let other_client = ha
        .curl()
        .header("X-Forwarded-For: 198.51.100.7")
        .header(&bearer)
        .get(&api);
    assert_eq!(other_client.status, 200, "{other_client:?}");
}

/// Home Assistant behind real nginx with the sign-in-host config
/// (`proxy-config nginx --app home-assistant --auth-host auth.example.com`).
#[test]
fn home_assistant_end_to_end_sign_in_host_layout() {
    end_to_end(Layout::SignInHost);
}

/// Home Assistant behind real nginx with the single-host config (certgate under
/// `/.certgate/`, `proxy-config nginx --app home-assistant` without `--auth-host`).
#[test]
fn home_assistant_end_to_end_single_host_layout() {
    end_to_end(Layout::SingleHost);
}

/// Issue 23's check on a real Home Assistant, in one layout: a script with certgate's token
/// beside Home Assistant's; the Companion-style client (certificate on every request, Home
/// Assistant's token, no cookie) through API, webhook, token refresh and WebSocket; no
/// client-sent address or identity header reaching the app; Chromium holding the certificate
/// reaching Home Assistant's frontend, then a reload and a WebSocket after its session cookie
/// expired; the user locked out and let back in (`certgate user disable|enable`); and last (it
/// bans an address) a client naming another address in `X-Forwarded-For`, banned under its
/// own.
fn end_to_end(layout: Layout) {
    if !(require("curl") && require("nginx") && home_assistant::require() && browser_tools()) {
        return;
    }
    let ha = HomeAssistant::start();
    let g = Gate::start(layout, ha.port());
    let states = g.url(HA_HOST, "/api/states");
    let ha_bearer = format!("Authorization: Bearer {}", ha.access_token());

    // A script: certgate's token (from /token) in X-Certgate-Authorization, Home Assistant's
    // in Authorization; on the WebSocket, certgate's on the upgrade, Home Assistant's in its
    // auth message.
    let minted = g.with_cert().post(&g.certgate("/token"), "");
    assert_eq!(minted.status, 200, "{minted:?}");
    let cg = json(&minted.body)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let cg_header = format!("X-Certgate-Authorization: Bearer {cg}");
    let script = g.curl().header(&cg_header).header(&ha_bearer).get(&states);
    assert_eq!(script.status, 200, "{script:?}");
    assert!(json(&script.body).is_array(), "{script:?}");
    assert_eq!(
        ha_socket(
            &g,
            None,
            Some(("x-certgate-authorization", format!("Bearer {cg}"))),
            ha.access_token()
        ),
        Ok(true)
    );
    // Without certgate's token the proxy stops it before Home Assistant counts a thing.
    let anonymous = g.curl().header(&ha_bearer).get(&states);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(ha_socket(&g, None, None, ha.access_token()), Err(401));

    // The Companion app: its certificate on every request, Home Assistant's token, no cookie.
    let api = g
        .with_cert()
        .header(&ha_bearer)
        .get(&g.url(HA_HOST, "/api/"));
    assert_eq!(api.status, 200, "{api:?}");
    assert_eq!(json(&api.body)["message"], "API running.", "{api:?}");
    let app_states = g.with_cert().header(&ha_bearer).get(&states);
    assert_eq!(app_states.status, 200, "{app_states:?}");
    assert!(json(&app_states.body).is_array(), "{app_states:?}");
    // Its registration (mobile_app) gives the webhook it sends sensors and location to.
    let registered = g
        .with_cert()
        .header(&ha_bearer)
        .header("Content-Type: application/json")
        .post(
            &g.url(HA_HOST, "/api/mobile_app/registrations"),
            &json!({
                "device_id": "test-phone-1",
                "app_id": "io.homeassistant.companion.android",
                "app_name": "Home Assistant",
                "app_version": "2024.3.0",
                "device_name": "Test Phone",
                "manufacturer": "Test",
                "model": "Phone",
                "os_name": "Android",
                "os_version": "14",
                "supports_encryption": false,
                "app_data": {},
            })
            .to_string(),
        );
    assert_eq!(registered.status, 201, "{registered:?}");
    let webhook_id = json(&registered.body)["webhook_id"]
        .as_str()
        .unwrap()
        .to_string();
    let webhook = g.url(HA_HOST, &format!("/api/webhook/{webhook_id}"));
    let get_config = json!({"type": "get_config"}).to_string();
    let hooked = g
        .with_cert()
        .header("Content-Type: application/json")
        .post(&webhook, &get_config);
    assert_eq!(hooked.status, 200, "{hooked:?}");
    let config = json(&hooked.body);
    assert!(
        config["components"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("mobile_app"))),
        "{hooked:?}"
    );
    assert_eq!(config["version"], home_assistant::VERSION, "{hooked:?}");
    // Without the certificate (and with no bypass rule, as printed) the webhook is refused at
    // the proxy.
    let bare_hook = g
        .curl()
        .header("Content-Type: application/json")
        .post(&webhook, &get_config);
    assert_eq!(bare_hook.status, 401, "{bare_hook:?}");
    // Its token refresh, then the WebSocket with the fresh token.
    let refreshed = g.with_cert().post(
        &g.url(HA_HOST, "/auth/token"),
        &url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "refresh_token"),
                ("refresh_token", ha.refresh_token()),
                ("client_id", ha.client_id()),
            ])
            .finish(),
    );
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    let fresh = json(&refreshed.body)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(claims(&fresh)["iss"], claims(ha.access_token())["iss"]);
    assert_eq!(ha_socket(&g, Some(&g.alice), None, &fresh), Ok(true));

    // No client-sent address or identity header reaches the app, in any spelling (seen by
    // the echo app on the second host the same printed text makes: Home Assistant echoes no
    // header). From 127.0.0.2, so the client's address and the proxy's differ.
    let mut forged = g
        .with_cert()
        .arg("--interface")
        .arg("127.0.0.2")
        .header(&format!("X-Forwarded-For: {CLIENT}"))
        .header(&format!("X-Real-IP: {CLIENT}"))
        .header(&format!("Forwarded: for={CLIENT}"))
        .header(&cg_header);
    for name in identity_aliases() {
        forged = forged.header(&format!("{name}: forged"));
    }
    let echoed = forged.get(&g.url(ECHO_HOST, "/api/states"));
    assert_eq!(echoed.status, 200, "{echoed:?}");
    let seen = seen_headers(&echoed.body);
    assert!(!seen.is_empty(), "{}", echoed.body);
    for (name, value) in &seen {
        assert!(
            !value.contains("forged") && !value.contains(CLIENT),
            "the client's `{name}: {value}` reached the app:\n{}",
            echoed.body
        );
    }
    let one = |wanted: &str| -> Vec<&str> {
        seen.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(one("remote-user"), ["alice"], "{}", echoed.body);
    assert_eq!(one("x-forwarded-for"), ["127.0.0.2"], "{}", echoed.body);
    assert_eq!(one("x-real-ip"), ["127.0.0.2"], "{}", echoed.body);
    // certgate's token is for certgate: checked, then removed.
    assert!(
        one("x-certgate-authorization").is_empty(),
        "{}",
        echoed.body
    );

    browser_after_session_end(&g, &ha);

    lock_out_and_back_in(&g, &ha, &webhook, &cg_header, &fresh);

    // Last, as it bans an address: a client on 127.0.0.2 claims to be 203.0.113.9 and fails
    // to log in three times. The ban is for 127.0.0.2; the proxy (127.0.0.1) and the named
    // address stay unbanned, and other clients are served.
    let from = |address: &'static str| {
        let g = &g;
        move || {
            g.with_cert()
                .arg("--interface")
                .arg(address)
                .header(&format!("X-Forwarded-For: {CLIENT}"))
                .header(&format!("X-Real-IP: {CLIENT}"))
        }
    };
    let base = g.url(HA_HOST, "");
    for attempt in 1..=3 {
        let failed = ha.login_through(&from("127.0.0.2"), &base, OWNER, "wrong password");
        assert_eq!(failed.status, 200, "attempt {attempt}: {failed:?}");
        assert_eq!(
            json(&failed.body)["errors"]["base"],
            "invalid_auth",
            "attempt {attempt}: {failed:?}"
        );
    }
    let bans = ha.ip_bans().expect("ip_bans.yaml written at the ban");
    assert!(bans.contains("127.0.0.2"), "ip_bans.yaml: {bans}");
    assert!(!bans.contains(CLIENT), "ip_bans.yaml: {bans}");
    assert!(!bans.contains("127.0.0.1"), "ip_bans.yaml: {bans}");
    let banned = from("127.0.0.2")().header(&ha_bearer).get(&states);
    assert_eq!(banned.status, 403, "{banned:?}");
    let others = from("127.0.0.3")().header(&ha_bearer).get(&states);
    assert_eq!(others.status, 200, "{others:?}");
}

/// What a client met: which request, and the HTTP status (101: the WebSocket authenticated).
type Answer = (&'static str, u16);

/// `certgate user disable alice` (the lock-out): within a second her certificate is refused
/// on Home Assistant's page, API, webhook and WebSocket (403), and her certgate token (401),
/// all at the proxy; `certgate user enable alice` lets the certificate and a new token back in
/// within a second, while the token from before the lock stays ended.
fn lock_out_and_back_in(g: &Gate, ha: &HomeAssistant, webhook: &str, cg_header: &str, token: &str) {
    let ha_bearer = format!("Authorization: Bearer {}", ha.access_token());
    let states = g.url(HA_HOST, "/api/states");
    let get_config = json!({"type": "get_config"}).to_string();
    let answers = || -> Vec<Answer> {
        let socket = match ha_socket(g, Some(&g.alice), None, token) {
            Ok(true) => 101,
            Ok(false) => 0,
            Err(status) => status,
        };
        vec![
            (
                "page",
                g.with_cert()
                    .header("Accept: text/html")
                    .get(&g.url(HA_HOST, "/lovelace/0"))
                    .status,
            ),
            ("API", g.with_cert().header(&ha_bearer).get(&states).status),
            (
                "webhook",
                g.with_cert()
                    .header("Content-Type: application/json")
                    .post(webhook, &get_config)
                    .status,
            ),
            ("WebSocket", socket),
            (
                "script",
                g.curl()
                    .header(cg_header)
                    .header(&ha_bearer)
                    .get(&states)
                    .status,
            ),
        ]
    };
    let user = |action: &str| {
        let out = std::process::Command::new(crate::harness::certgate::binary())
            .args(["user", action, "alice", "--config"])
            .arg(g.dir.path().join("certgate.toml"))
            .current_dir(g.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "certgate user {action}: {out:?}");
        Instant::now()
    };
    // Asks until every answer is the expected one, for at most a second after the command;
    // what it saw on the way is in the message if not.
    let within_a_second = |since: Instant, expected: [Answer; 5], what: &str| {
        let mut history: Vec<(u128, Vec<Answer>)> = Vec::new();
        loop {
            let seen = answers();
            if seen == expected {
                return since.elapsed();
            }
            history.push((since.elapsed().as_millis(), seen));
            assert!(
                since.elapsed() < Duration::from_secs(1),
                "{what}: not within a second; expected {expected:?}, saw (ms, answers):\n{history:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    let took = within_a_second(
        user("disable"),
        [
            ("page", 403),
            ("API", 403),
            ("webhook", 403),
            ("WebSocket", 403),
            ("script", 401),
        ],
        "locked out",
    );
    eprintln!(
        "locked out everywhere {} ms after user disable",
        took.as_millis()
    );
    let took = within_a_second(
        user("enable"),
        [
            ("page", 200),
            ("API", 200),
            ("webhook", 200),
            ("WebSocket", 101),
            // The token from before the lock stays ended.
            ("script", 401),
        ],
        "let back in",
    );
    eprintln!("let back in {} ms after user enable", took.as_millis());
    let minted = g.with_cert().post(&g.certgate("/token"), "");
    assert_eq!(minted.status, 200, "{minted:?}");
    let new_token = json(&minted.body)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let script = g
        .curl()
        .header(&format!("X-Certgate-Authorization: Bearer {new_token}"))
        .header(&ha_bearer)
        .get(&states);
    assert_eq!(
        script.status, 200,
        "a new token after user enable: {script:?}"
    );
}

/// Chromium holding the certificate signs in at certgate's page (the cookie is what a browser
/// without a certificate on every request lives on), lands on Home Assistant and runs its
/// frontend; then, after the session cookie expired, a reload reaches Home Assistant through
/// the proxy again and a WebSocket the page opens authenticates.
fn browser_after_session_end(g: &Gate, ha: &HomeAssistant) {
    let p12 = p12(g);
    let mut b = Chromium::start(
        &g.pki.ca_pem,
        Some(Identity {
            p12: &p12,
            password: "pw",
        }),
    );
    b.call("Network.enable", json!({}));
    let home = g.url(HA_HOST, "/");
    let signed_in_at = Instant::now();
    b.goto(&format!(
        "{}?rd={}",
        g.certgate("/auth"),
        url::form_urlencoded::byte_serialize(home.as_bytes()).collect::<String>()
    ));
    // The frontend sends `/` on to its own login page by script: read the files of the page
    // that stays (under load the first look can land between the two).
    let deadline = Instant::now() + Duration::from_secs(10);
    let (element, assets) = loop {
        let element = frontend_running(&mut b);
        let assets = frontend_assets(&mut b);
        if !assets.is_empty() || Instant::now() > deadline {
            break (element, assets);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let at = b.url();
    assert!(at.starts_with(&home), "{at}");
    assert!(
        !assets.is_empty(),
        "no /frontend_latest/ file loaded at {at}"
    );
    assert!(assets.iter().all(|(_, s)| *s == 200), "{assets:?}");
    let cookies = certgate_cookies(&mut b);
    let session: Vec<_> = cookies
        .iter()
        .filter(|c| c["name"] == g.cookie_name())
        .collect();
    assert_eq!(session.len(), 1, "the session cookie: {cookies:?}");
    let cookie = format!(
        "Cookie: {}={}",
        g.cookie_name(),
        session[0]["value"].as_str().unwrap()
    );
    eprintln!("frontend: <{element}> at {at}, {} assets", assets.len());
    // Home Assistant's own login (certgate signs people in to the proxy, not to Home
    // Assistant) ends with its tokens in the page's localStorage: put the owner's there, as
    // that login would, and open the app. Its frontend connects its own WebSocket.
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let tokens = json!({
        "access_token": ha.access_token(),
        "refresh_token": ha.refresh_token(),
        "token_type": "Bearer",
        "expires_in": 1800,
        "expires": now_ms + 1_500_000,
        "hassUrl": home.trim_end_matches('/'),
        "clientId": ha.client_id(),
    });
    b.eval(&format!(
        "localStorage.setItem('hassTokens', {:?})",
        tokens.to_string()
    ));
    b.goto(&home);
    assert_eq!(frontend_running(&mut b), "home-assistant", "{}", b.url());
    assert!(
        frontend_connected(&mut b),
        "the frontend's WebSocket at {}",
        b.url()
    );

    // Wait the session out (the cookie's `exp`).
    let ttl = Duration::from_secs(SESSION_TTL_SECS + 1);
    std::thread::sleep(ttl.saturating_sub(signed_in_at.elapsed()));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let exp = claims(cookie.rsplit('=').next().unwrap())["exp"]
        .as_i64()
        .unwrap();
    assert!(exp <= now, "the session has not ended: {cookie}");
    // The browser dropped the cookie at its Max-Age (the session's end): what follows carries
    // no cookie at all. (certgate itself would still take the cookie for `jwt::LEEWAY`, 60 s,
    // past its `exp`: clock skew.)
    let held = certgate_cookies(&mut b);
    assert!(
        !held.iter().any(|c| c["name"] == g.cookie_name()),
        "the browser still holds the session cookie: {held:?}"
    );
    // Control: without a cookie, only the certificate lets the reload and the WebSocket in (no
    // certificate: the sign-in page, and 401 for the WebSocket upgrade).
    let page = g.curl().header("Accept: text/html").get(&b.url());
    assert_eq!(page.status, 302, "{page:?}");
    assert!(
        page.header("location")
            .is_some_and(|l| l.starts_with(&g.certgate("/auth?rd="))),
        "{page:?}"
    );
    assert_eq!(ha_socket(g, None, None, ha.access_token()), Err(401));

    // A reload: through the proxy to Home Assistant (nginx logs its 200, or 304 for the
    // browser's conditional request), on Home Assistant, not on the sign-in page.
    let logged = g.access_log().len();
    let before = b.url();
    b.call("Page.reload", json!({}));
    b.wait_loaded(None);
    assert_eq!(frontend_running(&mut b), "home-assistant", "{}", b.url());
    let again = b.url();
    assert!(again.starts_with(&home), "{again}");
    // The frontend's own WebSocket, reconnected after the reload: the certificate carries it.
    assert!(
        frontend_connected(&mut b),
        "the frontend's WebSocket at {again}"
    );
    assert!(before.starts_with(&home), "{before}");
    let path = &before[home.len() - 1..];
    // The browser's lines only (the curl controls above may be logged late), waiting for
    // nginx to write the page's line after it answered.
    let browser_lines = || -> Vec<String> {
        g.access_log()[logged..]
            .lines()
            .filter(|l| l.contains("HeadlessChrome"))
            .map(str::to_string)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let reloaded = |l: &String| {
        l.contains(&format!("\"GET {path} HTTP/"))
            && (l.contains("\" 200 ") || l.contains("\" 304 "))
    };
    while !browser_lines().iter().any(reloaded) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let new = browser_lines();
    assert!(
        new.iter().any(reloaded),
        "the reload of {path} did not reach Home Assistant through the proxy:\n{}",
        new.join("\n")
    );
    assert!(
        !new.iter()
            .any(|l| l.contains("\" 401 ") || l.contains("\" 302 ")),
        "refused after the session ended:\n{}",
        new.join("\n")
    );
    // The WebSocket reconnect, as the page makes it: the certificate carries it.
    assert_eq!(page_websocket(&mut b, ha.access_token()), "auth_ok");
    eprintln!(
        "after the reload the browser holds: {:?}",
        certgate_cookies(&mut b)
            .iter()
            .map(|c| c["name"].clone())
            .collect::<Vec<_>>()
    );
}

/// Which of the two layouts `proxy-config nginx` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `--auth-host auth.example.com`: one sign-in host, single sign-on across app hosts.
    SignInHost,
    /// No `--auth-host`: the app host asks for the certificate, certgate under `/.certgate/`.
    SingleHost,
}

pub(crate) const HA_HOST: &str = "ha.example.com";
/// A second app host from the same printed text (`--host echo.example.com`) in front of the
/// stand-in app that echoes the headers it got: Home Assistant echoes none.
const ECHO_HOST: &str = "echo.example.com";
pub(crate) const AUTH_HOST: &str = "auth.example.com";
/// `session.ttl` in the test config: long enough to sign in, short enough to wait out.
const SESSION_TTL_SECS: u64 = 3;

/// Home Assistant and the echo app behind real nginx running what
/// `certgate proxy-config nginx --app home-assistant` prints, with only the listen port and
/// the test's certificate paths changed (certgate's and the apps' addresses are the
/// `--certgate` and `--upstream` flags), and certgate with a short session.
struct Gate {
    layout: Layout,
    dir: tempfile::TempDir,
    pki: Pki,
    alice: CertFiles,
    port: u16,
    _certgate: Certgate,
    _nginx: Nginx,
    _echo: Upstream,
}

/// What `certgate proxy-config nginx` prints for `host` in `layout`.
pub(crate) fn printed(layout: Layout, host: &str, upstream: u16, certgate: u16) -> String {
    printed_with(layout, host, upstream, certgate, &[])
}

/// [`printed`] with more flags (`--sign-in-with-certgate`).
pub(crate) fn printed_with(
    layout: Layout,
    host: &str,
    upstream: u16,
    certgate: u16,
    flags: &[&str],
) -> String {
    let mut cmd = std::process::Command::new(crate::harness::certgate::binary());
    cmd.args([
        "proxy-config",
        "nginx",
        "--app",
        "home-assistant",
        "--host",
        host,
    ])
    .arg("--upstream")
    .arg(format!("http://127.0.0.1:{upstream}"))
    .arg("--certgate")
    .arg(format!("127.0.0.1:{certgate}"));
    if layout == Layout::SignInHost {
        cmd.args(["--auth-host", AUTH_HOST]);
    }
    cmd.args(flags);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

impl Gate {
    fn start(layout: Layout, ha_port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path(), "Family CA");
        let alice = pki.user("alice");
        let tls = pki.server(&[AUTH_HOST, HA_HOST, ECHO_HOST]);
        let port = free_port();
        let echo = Upstream::start();
        let (public_url, session) = match layout {
            Layout::SignInHost => (
                format!("https://{AUTH_HOST}:{port}"),
                "cookie_domain = \"example.com\"\nallowed_redirect_hosts = [\"*.example.com\"]"
                    .to_string(),
            ),
            Layout::SingleHost => (
                format!("https://{HA_HOST}:{port}/.certgate"),
                // The echo host is only asked with certificates and tokens, never sent back to
                // from /auth: listing it would be the redirect loop check-config refuses.
                format!("allowed_redirect_hosts = [\"{HA_HOST}\"]"),
            ),
        };
        let certgate = Certgate::start(
            dir.path(),
            &format!(
                r#"
public_url = "{public_url}"
data_dir = "data"
[client_ca]
bundle = "{ca}"
[proxy]
trusted = ["127.0.0.1/32"]
cert_header = "nginx"
[session]
ttl = "{SESSION_TTL_SECS}s"
{session}
[access]
allow_unmatched = true
[[users]]
name = "alice"
groups = ["family"]
"#,
                ca = pki.ca_pem.display(),
            ),
            false,
        );
        let paths = |text: String, host: &str| -> String {
            let mut text = text.replace("listen 443 ssl", &format!("listen 127.0.0.1:{port} ssl"));
            for h in [AUTH_HOST, host] {
                for (from, to) in [("pem", &tls.cert), ("key", &tls.key)] {
                    text = text.replace(
                        &format!("/etc/nginx/tls/{h}.{from}"),
                        &to.display().to_string(),
                    );
                }
            }
            text.replace(
                "/etc/certgate/client-ca.pem",
                &pki.ca_pem.display().to_string(),
            )
        };
        let conf = paths(
            printed(layout, HA_HOST, ha_port, certgate.http_port),
            HA_HOST,
        );
        // Home Assistant's side, printed as comments: the harness runs it with this block.
        for line in [
            "#   http:",
            "#     use_x_forwarded_for: true",
            "#     trusted_proxies:",
            "#       - 127.0.0.1",
            "#       - \"::1\"",
            "#     ip_ban_enabled: true",
        ] {
            assert!(conf.contains(line), "not printed: {line}\n{conf}");
        }
        // The same printed text for a second app host, as an operator adds one: its last
        // server block (the app's), in front of the echo app.
        let echo_conf = paths(
            printed(layout, ECHO_HOST, echo.port, certgate.http_port),
            ECHO_HOST,
        );
        let echo_block = &echo_conf[echo_conf.rfind("\nserver {").unwrap()..];
        assert!(
            !conf
                .lines()
                .any(|l| l.contains("/etc/") && !l.trim_start().starts_with('#')),
            "a path left unchanged:\n{conf}"
        );
        let nginx = Nginx::start(dir.path(), port, &format!("{conf}\n{echo_block}"));
        let gate = Self {
            layout,
            dir,
            pki,
            alice,
            port,
            _certgate: certgate,
            _nginx: nginx,
            _echo: echo,
        };
        let warnings: Vec<String> =
            std::fs::read_to_string(gate.dir.path().join("nginx/error.log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| {
                    ["[warn]", "[error]", "[crit]", "[alert]", "[emerg]"]
                        .iter()
                        .any(|w| l.contains(w))
                })
                .map(str::to_string)
                .collect();
        assert!(
            warnings.is_empty(),
            "nginx warns about the printed config:\n{}",
            warnings.join("\n")
        );
        gate
    }

    fn curl(&self) -> Curl {
        [AUTH_HOST, HA_HOST, ECHO_HOST].iter().fold(
            Curl::new(self.dir.path()).cacert(&self.pki.ca_pem),
            |c, h| c.resolve(h, self.port),
        )
    }

    /// The Companion app or `curl --cert`: the certificate in every TLS handshake.
    fn with_cert(&self) -> Curl {
        self.curl().cert(&self.alice.cert, &self.alice.key)
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }

    /// certgate's endpoint `path` as reached through the proxy.
    fn certgate(&self, path: &str) -> String {
        match self.layout {
            Layout::SignInHost => self.url(AUTH_HOST, path),
            Layout::SingleHost => self.url(HA_HOST, &format!("/.certgate{path}")),
        }
    }

    fn cookie_name(&self) -> &'static str {
        match self.layout {
            Layout::SignInHost => "__Secure-certgate",
            Layout::SingleHost => "__Host-certgate",
        }
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nginx/access.log")).unwrap_or_default()
    }
}

/// Home Assistant's WebSocket through the proxy: the TLS handshake with `cert` (or none) and
/// `header` on the upgrade request. `Ok(auth_ok?)` after its `auth` message with `token`, or
/// the HTTP status the upgrade was refused with.
fn ha_socket(
    g: &Gate,
    cert: Option<&CertFiles>,
    header: Option<(&'static str, String)>,
    token: &str,
) -> Result<bool, u16> {
    use tungstenite::client::IntoClientRequest;

    let tls = g.pki.tls_client(cert);
    let mut request = g
        .url(HA_HOST, "/api/websocket")
        .replace("https://", "wss://")
        .into_client_request()
        .unwrap();
    if let Some((name, value)) = header {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let tcp = std::net::TcpStream::connect(("127.0.0.1", g.port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let connector = tungstenite::Connector::Rustls(std::sync::Arc::new(tls));
    let (mut ws, response) =
        match tungstenite::client_tls_with_config(request, tcp, None, Some(connector)) {
            Ok(done) => done,
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                return Err(r.status().as_u16())
            }
            Err(e) => panic!("WebSocket handshake through the proxy: {e}"),
        };
    assert_eq!(response.status().as_u16(), 101);
    assert_eq!(next_json(&mut ws)["type"], "auth_required");
    ws.send(tungstenite::Message::text(
        json!({"type": "auth", "access_token": token}).to_string(),
    ))
    .unwrap();
    let reply = next_json(&mut ws);
    let _ = ws.close(None);
    Ok(reply["type"] == "auth_ok")
}

/// The certificate as the `.p12` a person installs in the browser.
fn p12(g: &Gate) -> std::path::PathBuf {
    let out = g.dir.path().join("alice.p12");
    let status = std::process::Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:pw", "-in"])
        .arg(&g.alice.cert)
        .arg("-inkey")
        .arg(&g.alice.key)
        .arg("-certfile")
        .arg(&g.pki.ca_pem)
        .arg("-out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

pub(crate) fn browser_tools() -> bool {
    require("chromium")
        && require("pk12util")
        && require("openssl")
        && (std::path::Path::new(POLICY).exists() || missing(POLICY))
}

/// Waits until Home Assistant's frontend has run in the page: its login element
/// (`<ha-authorize>`, where the frontend sends a browser without Home Assistant tokens) or
/// its app element (`<home-assistant>`) is defined by its JavaScript. The element's name.
pub(crate) fn frontend_running(b: &mut Chromium) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The page may be navigating (the frontend sends `/` on to its login page).
        let defined = b
            .try_call(
                "Runtime.evaluate",
                json!({
                    "expression": "['ha-authorize', 'home-assistant'].find(n => document.readyState === 'complete' && document.querySelector(n) && customElements.get(n)) || ''",
                    "returnByValue": true,
                }),
            )
            .map(|r| r["result"]["value"].clone())
            .unwrap_or_default();
        if let Some(name) = defined.as_str().filter(|n| !n.is_empty()) {
            return name.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "Home Assistant's frontend never ran: {} {}",
            b.url(),
            b.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether Home Assistant's frontend (`<home-assistant>`) says its WebSocket is connected
/// and authenticated (`hass.connected`), waiting up to 20 s for it.
pub(crate) fn frontend_connected(b: &mut Chromium) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connected = b
            .try_call(
                "Runtime.evaluate",
                json!({
                    "expression": "document.querySelector('home-assistant')?.hass?.connected === true",
                    "returnByValue": true,
                }),
            )
            .map(|r| r["result"]["value"] == json!(true))
            .unwrap_or(false);
        if connected {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The frontend's own files (`/frontend_latest/…`) the page loaded, with their HTTP status.
fn frontend_assets(b: &mut Chromium) -> Vec<(String, u64)> {
    // The page may be navigating (its callers look again).
    let v = b
        .try_call(
            "Runtime.evaluate",
            json!({
                "expression": "performance.getEntriesByType('resource').filter(e => e.name.includes('/frontend_latest/')).map(e => [e.name, e.responseStatus])",
                "returnByValue": true,
            }),
        )
        .map(|r| r["result"]["value"].clone())
        .unwrap_or_default();
    v.as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e[0].as_str().unwrap().to_string(),
                e[1].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// A WebSocket the page itself opens to Home Assistant (the browser presents the certificate
/// as for the page), authenticated with `token`: Home Assistant's verdict, or how it failed.
fn page_websocket(b: &mut Chromium, token: &str) -> String {
    let script = format!(
        r#"new Promise(resolve => {{
            const ws = new WebSocket(`wss://${{location.host}}/api/websocket`);
            ws.onmessage = e => {{
                const m = JSON.parse(e.data);
                if (m.type === 'auth_required') ws.send(JSON.stringify({{type: 'auth', access_token: {token:?}}}));
                else {{ resolve(m.type); ws.close(); }}
            }};
            ws.onerror = () => resolve('error');
            ws.onclose = e => resolve('closed ' + e.code);
            setTimeout(() => resolve('timeout'), 15000);
        }})"#
    );
    let r = b.call(
        "Runtime.evaluate",
        json!({"expression": script, "awaitPromise": true, "returnByValue": true}),
    );
    r["result"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The certgate cookies the browser holds.
fn certgate_cookies(b: &mut Chromium) -> Vec<Value> {
    let all = b.call("Network.getAllCookies", json!({}));
    all["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.contains("certgate")))
        .cloned()
        .collect()
}

/// The next JSON message on a WebSocket to Home Assistant.
fn next_json<S: std::io::Read + std::io::Write>(ws: &mut tungstenite::WebSocket<S>) -> Value {
    loop {
        match ws.read().expect("read from Home Assistant's WebSocket") {
            tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            tungstenite::Message::Close(frame) => {
                panic!("Home Assistant closed the WebSocket: {frame:?}")
            }
            _ => continue,
        }
    }
}
