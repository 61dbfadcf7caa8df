//! A real Home Assistant: first alone (its tokens, its WebSocket authentication, and whom it
//! bans when it trusts `X-Forwarded-For` from the proxy's address), then behind real nginx
//! with the config `certgate proxy-config` prints.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::harness::home_assistant::{
    self, HaSocket, HomeAssistant, OWNER, OWNER_NAME, OWNER_PASSWORD,
};
use crate::harness::require;
use crate::proxies::{Proxy, Stack};

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

/// Home Assistant behind real nginx with the sign-in-host config `certgate proxy-config`
/// prints: a script with certgate's token beside Home Assistant's, the Companion-style client
/// with its certificate on every request (API and WebSocket), and a client-sent
/// `X-Forwarded-For` that names someone else: Home Assistant bans the real client, never the
/// proxy and never whom the client named.
#[test]
fn home_assistant_behind_the_printed_nginx_config() {
    if !(require("curl") && require("nginx") && home_assistant::require()) {
        return;
    }
    let ha = HomeAssistant::start();
    let Some(s) = Stack::sso_in_front_of(Proxy::Nginx, ha.port()) else {
        return;
    };
    let states = s.app(0, "/api/states");
    let ha_bearer = format!("Authorization: Bearer {}", ha.access_token());

    // A script: certgate's token in X-Certgate-Authorization, Home Assistant's in Authorization.
    let minted = s
        .curl()
        .cert(&s.alice.cert, &s.alice.key)
        .post(&s.auth("/token"), "");
    assert_eq!(minted.status, 200, "{minted:?}");
    let cg = json(&minted.body)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let script = s
        .curl()
        .header(&format!("X-Certgate-Authorization: Bearer {cg}"))
        .header(&ha_bearer)
        .get(&states);
    assert_eq!(script.status, 200, "{script:?}");
    assert!(json(&script.body).is_array(), "{script:?}");
    // Without certgate's token the proxy stops it before Home Assistant counts anything.
    let anonymous = s.curl().header(&ha_bearer).get(&states);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");

    // The Companion app: its certificate on every request, Home Assistant's token, no cookie.
    let app = s
        .curl()
        .cert(&s.alice.cert, &s.alice.key)
        .header(&ha_bearer)
        .get(&states);
    assert_eq!(app.status, 200, "{app:?}");
    assert!(json(&app.body).is_array(), "{app:?}");
    assert!(
        ha_socket_with_certificate(&s, ha.access_token()),
        "the WebSocket with the certificate"
    );

    // A client on 127.0.0.2 claims to be 203.0.113.9 and fails to log in three times: the
    // ban is for 127.0.0.2. The proxy (127.0.0.1) and the named address stay unbanned.
    let from = |address: &'static str| {
        let s = &s;
        move || {
            s.curl()
                .arg("--interface")
                .arg(address)
                .cert(&s.alice.cert, &s.alice.key)
                .header(&format!("X-Forwarded-For: {CLIENT}"))
                .header("X-Real-IP: 203.0.113.9")
        }
    };
    let base = s.app(0, "");
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

/// Home Assistant's WebSocket through the proxy, the certificate in the TLS handshake and no
/// cookie: whether its `auth` message with `token` gets `auth_ok`.
fn ha_socket_with_certificate(s: &Stack, token: &str) -> bool {
    use tungstenite::client::IntoClientRequest;
    use tungstenite::Message;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(s.pki.ca.cert_der.clone().into()).unwrap();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![s.alice.issued.cert_der.clone().into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(s.alice.issued.key_der.clone().into()),
        )
        .unwrap();
    let request = format!("wss://{}:{}/api/websocket", s.apps[0], s.port)
        .into_client_request()
        .unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let connector = tungstenite::Connector::Rustls(std::sync::Arc::new(tls));
    let (mut ws, response) =
        tungstenite::client_tls_with_config(request, tcp, None, Some(connector))
            .expect("WebSocket handshake through the proxy");
    assert_eq!(response.status().as_u16(), 101);
    assert_eq!(next_json(&mut ws)["type"], "auth_required");
    ws.send(Message::text(
        json!({"type": "auth", "access_token": token}).to_string(),
    ))
    .unwrap();
    let reply = next_json(&mut ws);
    let _ = ws.close(None);
    reply["type"] == "auth_ok"
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
