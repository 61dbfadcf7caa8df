//! Home Assistant with no password (issue 18): the certgate integration
//! (`integrations/home-assistant/custom_components/certgate`) in a real Home Assistant behind real
//! nginx (the printed `proxy-config nginx --app home-assistant --sign-in-with-certgate`), with
//! certgate as its OpenID Connect provider. Chromium holding alice's certificate opens Home
//! Assistant and is signed in without typing; `certgate revoke --user alice` ends her Home
//! Assistant tokens, their refresh and her open WebSocket within 2 s while bob stays signed in;
//! people certgate does not let in never get a Home Assistant user; forged, stale, replayed or
//! misaddressed logout tokens end nothing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::browser::p12;
use crate::harness::certgate::{run, Certgate};
use crate::harness::chromium::{Chromium, Identity};
use crate::harness::curl::{Curl, Response};
use crate::harness::home_assistant::{self, form, json_of, HaSocket, HomeAssistant};
use crate::harness::nginx::Nginx;
use crate::harness::pki::{CertFiles, Pki};
use crate::harness::{free_port, require};
use crate::home_assistant::{
    browser_tools, frontend_connected, frontend_running, printed_with, Layout, AUTH_HOST, HA_HOST,
};

const CLIENT: &str = "home-assistant";
const SECRET: &str = "home-assistant-secret-0123456789";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

struct Sso {
    dir: tempfile::TempDir,
    pki: Pki,
    port: u16,
    certgate: Certgate,
    _nginx: Nginx,
    ha: HomeAssistant,
    /// Each call that may be refused comes from its own address (X-Forwarded-For from the
    /// trusted proxy): Home Assistant bans an address after 3 refusals.
    next_client: std::cell::Cell<u8>,
}

/// What differs between the tests' setups.
#[derive(Default)]
struct Options {
    /// The Home Assistant release (default [`home_assistant::VERSION`]).
    version: Option<&'static str>,
    /// No `backchannel_logout_uri` for Home Assistant at certgate: only the check on refresh
    /// can end its sessions.
    no_backchannel: bool,
    /// More of the integration's settings (YAML lines under `certgate:`).
    integration: &'static str,
}

impl Sso {
    fn start(version: &'static str) -> Option<Self> {
        Self::start_with(&Options {
            version: Some(version),
            ..Options::default()
        })
    }

    fn start_with(opts: &Options) -> Option<Self> {
        let version = opts.version.unwrap_or(home_assistant::VERSION);
        if !(require("curl")
            && require("nginx")
            && home_assistant::require_version(version)
            && browser_tools())
        {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path(), "Family CA");
        let tls = pki.server(&[AUTH_HOST, HA_HOST]);
        let port = free_port();
        let ha_port = free_port();
        let callback = format!("https://{HA_HOST}:{port}/auth/certgate/callback");
        let certgate = Certgate::start(
            dir.path(),
            &format!(
                r#"
public_url = "https://{AUTH_HOST}:{port}"
data_dir = "data"
[client_ca]
bundle = "{ca}"
[proxy]
trusted = ["127.0.0.1/32"]
cert_header = "nginx"
[session]
cookie_domain = "example.com"
allowed_redirect_hosts = ["*.example.com"]
[access]
allow_unmatched = true
[[users]]
name = "alice"
groups = ["admins", "family"]
[[users]]
name = "bob"
groups = ["family"]
[[users]]
name = "carol"
[[users]]
name = "dave"
groups = ["family"]
[oidc]
[[oidc.clients]]
id = "{CLIENT}"
secret = "{SECRET}"
redirect_uris = ["{callback}"]
{backchannel}
groups = ["family"]
"#,
                ca = pki.ca_pem.display(),
                backchannel = if opts.no_backchannel {
                    String::new()
                } else {
                    format!("backchannel_logout_uri = \"http://127.0.0.1:{ha_port}/auth/certgate/backchannel\"")
                },
            ),
            false,
        );
        // With the rule that sends Home Assistant's login page to the integration's start.
        let mut conf = printed_with(
            Layout::SignInHost,
            HA_HOST,
            ha_port,
            certgate.http_port,
            &["--sign-in-with-certgate"],
        )
        .replace("listen 443 ssl", &format!("listen 127.0.0.1:{port} ssl"));
        assert!(
            conf.contains("return 302 /auth/certgate/start?$args;"),
            "{conf}"
        );
        for h in [AUTH_HOST, HA_HOST] {
            for (from, to) in [("pem", &tls.cert), ("key", &tls.key)] {
                conf = conf.replace(
                    &format!("/etc/nginx/tls/{h}.{from}"),
                    &to.display().to_string(),
                );
            }
        }
        let conf = conf.replace(
            "/etc/certgate/client-ca.pem",
            &pki.ca_pem.display().to_string(),
        );
        let nginx = Nginx::start(dir.path(), port, &conf);
        let ha = HomeAssistant::start_version(
            version,
            ha_port,
            &format!(
                r#"certgate:
  issuer: https://{AUTH_HOST}:{port}
  internal_url: http://127.0.0.1:{cg}
  client_id: {CLIENT}
  client_secret: {SECRET}
  redirect_uri: {callback}
  admin_groups: [admins]
{integration}
logger:
  default: warning
  logs:
    custom_components.certgate: info
"#,
                cg = certgate.http_port,
                integration = opts.integration,
            ),
        );
        assert!(
            ha.log().contains("certgate sign-in ready"),
            "the integration did not start:\n{}",
            ha.log()
        );
        Some(Self {
            dir,
            pki,
            port,
            certgate,
            _nginx: nginx,
            ha,
            next_client: std::cell::Cell::new(10),
        })
    }

    fn home(&self) -> String {
        format!("https://{HA_HOST}:{}/", self.port)
    }

    /// curl through the proxy, presenting `cert` as the Companion app does on every request.
    fn curl(&self, cert: &CertFiles) -> Curl {
        [AUTH_HOST, HA_HOST]
            .iter()
            .fold(
                Curl::new(self.dir.path()).cacert(&self.pki.ca_pem),
                |c, h| c.resolve(h, self.port),
            )
            .cert(&cert.cert, &cert.key)
    }

    /// Straight to Home Assistant from an address of its own.
    fn direct(&self) -> Curl {
        let n = self.next_client.get();
        self.next_client.set(n.wrapping_add(1));
        self.ha
            .curl()
            .header(&format!("X-Forwarded-For: 203.0.113.{n}"))
    }

    /// `GET /api/` with Home Assistant's access token: 200 while it works.
    fn api(&self, access: &str) -> u16 {
        self.direct()
            .header(&format!("Authorization: Bearer {access}"))
            .get(&self.ha.url_of("/api/"))
            .status
    }

    fn refresh(&self, tokens: &Tokens) -> Response {
        self.direct().post(
            &self.ha.url_of("/auth/token"),
            &form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &tokens.refresh),
                ("client_id", &tokens.client_id),
            ]),
        )
    }

    /// The sign-in the login page runs, as a script holding `cert` runs it (each step's
    /// redirect followed by hand): Home Assistant's tokens, or the step that refused and its
    /// answer.
    fn sign_in(&self, cert: &CertFiles) -> Result<Tokens, (&'static str, Response)> {
        self.sign_in_with(cert, &Twist::None)
    }

    /// [`Self::sign_in`] with one step done as an attacker would.
    fn sign_in_with(
        &self,
        cert: &CertFiles,
        twist: &Twist,
    ) -> Result<Tokens, (&'static str, Response)> {
        let client_id = self.home();
        let redirect_uri = format!("{client_id}?auth_callback=1");
        let login = format!(
            "{}auth/authorize?response_type=code&client_id={}&redirect_uri={}&state=st-1",
            self.home(),
            enc(&client_id),
            enc(&redirect_uri)
        );
        // The browser's cookies for the integration's paths (its state cookie).
        let jar = std::cell::RefCell::new(Vec::<String>::new());
        let hop = |url: &str, step: &'static str| {
            let mut c = self.curl(cert);
            let keep = !matches!(twist, Twist::NoStateCookie);
            if keep && url.contains("/auth/certgate/") && !jar.borrow().is_empty() {
                c = c.header(&format!("Cookie: {}", jar.borrow().join("; ")));
            }
            let r = c.get(url);
            for set in r.header("set-cookie").unwrap_or_default().lines() {
                let pair = set.split(';').next().unwrap_or_default();
                if pair.starts_with("certgate_ha_state=") && !pair.ends_with('=') {
                    jar.borrow_mut().push(pair.to_string());
                }
            }
            match (r.status, r.header("location")) {
                (302, Some(to)) => {
                    let to = if to.starts_with('/') {
                        format!("https://{HA_HOST}:{}{to}", self.port)
                    } else {
                        to.to_string()
                    };
                    Ok((to, r))
                }
                _ => Err((step, r)),
            }
        };
        let (start, _) = hop(&login, "login page")?;
        assert!(start.contains("/auth/certgate/start?"), "{start}");
        let (authorize, _) = hop(&start, "start")?;
        assert!(
            authorize.starts_with(&format!(
                "https://{AUTH_HOST}:{}/oidc/authorize?",
                self.port
            )),
            "{authorize}"
        );
        let (callback, at_certgate) = hop(&authorize, "certgate")?;
        if !callback.contains("/auth/certgate/callback?") {
            return Err(("certgate", at_certgate));
        }
        let session = at_certgate
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .and_then(|c| c.split_once('='))
            .map(|(_, v)| v.to_string());
        let (back, answered) = hop(&callback, "callback")?;
        assert!(
            back.contains("/auth/authorize?") && back.contains("certgate=1"),
            "{back}"
        );
        let ticket = answered
            .header("set-cookie")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(';').next())
            .find(|c| c.starts_with("certgate_ha_ticket="))
            .unwrap_or_default()
            .to_string();
        assert!(ticket.starts_with("certgate_ha_ticket="), "{answered:?}");
        // The login page: it starts the first login method's flow, which finishes at once.
        let flow = self
            .curl(cert)
            .header("Content-Type: application/json")
            .header(&format!("Cookie: {ticket}"))
            .post(
                &format!("{}auth/login_flow", self.home()),
                &match twist {
                    Twist::FlowFor(other) => json!({"client_id": other, "handler": ["certgate", null], "redirect_uri": format!("{other}cb")}),
                    _ => json!({"client_id": client_id, "handler": ["certgate", null], "redirect_uri": redirect_uri}),
                }
                .to_string(),
            );
        let step = json_of(&flow);
        if step["type"] != "create_entry" {
            return Err(("login flow", flow));
        }
        let code = step["result"].as_str().unwrap();
        let t = self.curl(cert).post(
            &format!("{}auth/token", self.home()),
            &form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("client_id", &client_id),
            ]),
        );
        assert_eq!(t.status, 200, "{t:?}");
        let t = json_of(&t);
        Ok(Tokens {
            access: t["access_token"].as_str().unwrap().to_string(),
            refresh: t["refresh_token"].as_str().unwrap().to_string(),
            client_id,
            // The session cookie's jti is the OIDC sid.
            sid: session.map(|s| claims(&s)["jti"].as_str().unwrap_or_default().to_string()),
        })
    }

    /// Home Assistant's users by name, as its owner sees them.
    fn users(&self) -> Vec<Value> {
        let mut ws = HaSocket::connect(self.ha.port(), self.ha.access_token());
        let r = ws.command(json!({"type": "config/auth/list"}));
        r["result"].as_array().unwrap().clone()
    }

    /// A logout token signed with certgate's RS256 key (read from its data directory, as only
    /// a test can), with `claims` over the valid ones.
    fn logout_token(&self, claims: Value) -> String {
        let mut all = json!({
            "iss": format!("https://{AUTH_HOST}:{}", self.port),
            "aud": CLIENT,
            "iat": now(),
            "exp": now() + 120,
            "jti": format!("test-{}", rand_suffix()),
            "events": { EVENT: {} },
        });
        for (k, v) in claims.as_object().unwrap() {
            if v.is_null() {
                all.as_object_mut().unwrap().remove(k);
            } else {
                all[k] = v.clone();
            }
        }
        let (kid, pem) = self.rs256_key();
        sign(&all, &kid, &pem)
    }

    fn rs256_key(&self) -> (String, Vec<u8>) {
        let jwks: Value = serde_json::from_str(
            &Curl::new(self.dir.path())
                .get(&self.certgate.http("/oidc/jwks"))
                .body,
        )
        .unwrap();
        let kid = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["alg"] == "RS256")
            .unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_string();
        let keys = self.dir.path().join("data/oidc-keys");
        let pem: PathBuf = std::fs::read_dir(&keys)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("rs256-")
            })
            .unwrap();
        (kid, std::fs::read(pem).unwrap())
    }

    fn backchannel(&self, token: &str) -> Response {
        self.ha.curl().post(
            &self.ha.url_of("/auth/certgate/backchannel"),
            &form(&[("logout_token", token)]),
        )
    }
}

/// How [`Sso::sign_in_with`] departs from a browser's sign-in.
enum Twist {
    None,
    /// certgate's answer arrives without the state cookie the start set (someone else's
    /// browser, handed the callback URL).
    NoStateCookie,
    /// The ticket is used by a login for another client (someone else's site).
    FlowFor(String),
}

struct Tokens {
    access: String,
    refresh: String,
    client_id: String,
    /// The certgate session's `sid`, from its cookie.
    sid: Option<String>,
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn sign(claims: &Value, kid: &str, pem: &[u8]) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_string());
    header.typ = Some("logout+jwt".into());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(pem).unwrap(),
    )
    .unwrap()
}

/// Polls `done` for up to `limit`; whether it came true.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let started = Instant::now();
        if done() {
            return true;
        }
        if started > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn home_assistant_signs_in_with_the_certificate_and_certgate_revocation_ends_the_session() {
    signs_in_and_revocation_ends_the_session(home_assistant::VERSION);
}

#[test]
fn home_assistant_2025_signs_in_with_the_certificate_and_certgate_revocation_ends_the_session() {
    signs_in_and_revocation_ends_the_session(home_assistant::NEWER);
}

fn signs_in_and_revocation_ends_the_session(version: &'static str) {
    let Some(s) = Sso::start(version) else {
        return;
    };
    let alice = s.pki.user("alice");
    let bob = s.pki.user("bob");

    // Chromium with alice's certificate opens Home Assistant: the proxy sends its login page
    // to the integration, certgate signs her in, the login page finishes by itself.
    let p12 = p12(s.dir.path(), &s.pki, &alice, "alice");
    let mut b = Chromium::start(
        &s.pki.ca_pem,
        Some(Identity {
            p12: &p12,
            password: "pw",
        }),
    );
    let began = Instant::now();
    b.goto(&s.home());
    let deadline = Instant::now() + Duration::from_secs(30);
    while frontend_running(&mut b) != "home-assistant" {
        assert!(
            Instant::now() < deadline,
            "not signed in: {} {}\n{}",
            b.url(),
            b.text(),
            s.ha.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        frontend_connected(&mut b),
        "the frontend's WebSocket at {}",
        b.url()
    );
    eprintln!(
        "signed in to Home Assistant in {} ms",
        began.elapsed().as_millis()
    );
    let stored = b.eval("localStorage.getItem('hassTokens')");
    let stored: Value = serde_json::from_str(stored.as_str().expect("hassTokens")).unwrap();
    let alice_tokens = Tokens {
        access: stored["access_token"].as_str().unwrap().to_string(),
        refresh: stored["refresh_token"].as_str().unwrap().to_string(),
        client_id: stored["clientId"].as_str().unwrap().to_string(),
        sid: None,
    };
    assert_eq!(
        s.api(&alice_tokens.access),
        200,
        "the browser's token works"
    );
    let mut alice_socket = HaSocket::connect(s.ha.port(), &alice_tokens.access);
    assert!(alice_socket.auth_ok);
    let me = alice_socket.command(json!({"type": "auth/current_user"}));
    assert_eq!(me["result"]["name"], "alice", "{me}");
    assert_eq!(me["result"]["is_admin"], true, "alice is in admins: {me}");

    // bob signs in the same way (as a script: each hop by hand); not an administrator.
    let bob_tokens = s
        .sign_in(&bob)
        .unwrap_or_else(|(step, r)| panic!("{step}: {r:?}"));
    assert_eq!(s.api(&bob_tokens.access), 200);
    let mut bob_socket = HaSocket::connect(s.ha.port(), &bob_tokens.access);
    let me = bob_socket.command(json!({"type": "auth/current_user"}));
    assert_eq!(
        (
            me["result"]["name"].as_str(),
            me["result"]["is_admin"].as_bool()
        ),
        (Some("bob"), Some(false)),
        "{me}"
    );
    // A second sign-in of bob's is the same Home Assistant user.
    let again = s
        .sign_in(&bob)
        .unwrap_or_else(|(step, r)| panic!("{step}: {r:?}"));
    let users = s.users();
    let bobs: Vec<&Value> = users.iter().filter(|u| u["name"] == "bob").collect();
    assert_eq!(bobs.len(), 1, "{users:?}");
    assert_eq!(s.api(&again.access), 200);

    // Revoking alice at certgate ends her token, its refresh and her WebSocket within 2 s.
    let (status, out) = run(
        s.dir.path(),
        &["revoke", "--config", "certgate.toml", "--user", "alice"],
    );
    assert_eq!(status, 0, "{out}");
    let revoked = Instant::now();
    assert!(
        within(Duration::from_secs(2), || s.api(&alice_tokens.access)
            == 401),
        "alice's Home Assistant token still works 2 s after the revocation:\n{}",
        s.ha.log()
    );
    let closed = alice_socket.closed_after();
    assert!(
        closed.is_some() && revoked.elapsed() <= Duration::from_secs(2),
        "alice's WebSocket: {closed:?} after {:?}",
        revoked.elapsed()
    );
    let refreshed = s.refresh(&alice_tokens);
    assert_eq!(refreshed.status, 400, "{refreshed:?}");
    // bob is not touched.
    assert_eq!(s.api(&bob_tokens.access), 200);
    assert!(bob_socket.command(json!({"type": "ping"}))["type"] == "pong");
    assert_eq!(s.refresh(&bob_tokens).status, 200);
    // Nor is the owner, who signs in with a password.
    assert_eq!(s.api(s.ha.access_token()), 200);
    // Home Assistant has nothing to say against the integration (an error, or its report of
    // an integration doing something it should not).
    let log = s.ha.log();
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("certgate")
                && (l.contains("ERROR") || l.contains("Detected") || l.contains("deprecated"))
        })
        .collect();
    assert!(complaints.is_empty(), "{complaints:#?}");
}

#[test]
fn home_assistant_lets_in_nobody_certgate_refuses_and_ends_nothing_on_a_bad_logout_token() {
    lets_in_nobody_and_ends_nothing_on_a_bad_logout_token(home_assistant::VERSION);
}

#[test]
fn home_assistant_2025_lets_in_nobody_certgate_refuses_and_ends_nothing_on_a_bad_logout_token() {
    lets_in_nobody_and_ends_nothing_on_a_bad_logout_token(home_assistant::NEWER);
}

fn lets_in_nobody_and_ends_nothing_on_a_bad_logout_token(version: &'static str) {
    let Some(s) = Sso::start(version) else {
        return;
    };
    let users_before = s.users().len();
    // mallory: a certificate from the CA, but no certgate user; carol: a user outside the
    // client's groups; dave: a user certgate has disabled.
    let (status, out) = run(
        s.dir.path(),
        &["user", "disable", "dave", "--config", "certgate.toml"],
    );
    assert_eq!(status, 0, "{out}");
    let dave = s.pki.user("dave");
    assert!(
        within(Duration::from_secs(2), || s
            .curl(&dave)
            .get(&s.home())
            .status
            == 403),
        "certgate still lets dave through"
    );
    for name in ["mallory", "carol", "dave"] {
        let cert = s.pki.user(name);
        match s.sign_in(&cert) {
            Ok(_) => panic!("{name} was signed in to Home Assistant"),
            // The proxy (certgate's /verify) stops mallory and dave before Home Assistant;
            // certgate's /oidc/authorize stops carol, whom the proxy lets through.
            Err((step, r)) => {
                let expected = if name == "carol" { "certgate" } else { "start" };
                assert_eq!(step, expected, "{name} stopped at {step}: {r:?}");
                assert_eq!(r.status, 403, "{name}: {r:?}");
            }
        }
    }
    assert_eq!(s.users().len(), users_before, "no user was made");
    // Attacks on the sign-in itself, each with bob's certificate: a link naming someone
    // else's site as the client; certgate's answer replayed in a browser that did not start
    // the sign-in; a ticket used by a login for another client. None signs anyone in.
    let bob = s.pki.user("bob");
    let evil = format!(
        "{}auth/certgate/start?response_type=code&client_id={}&redirect_uri={}&state=x",
        s.home(),
        enc("https://evil.example/"),
        enc("https://evil.example/cb")
    );
    let r = s.curl(&bob).get(&evil);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.header("location").is_none(), "{r:?}");
    match s.sign_in_with(&bob, &Twist::NoStateCookie) {
        Err((step, r)) => assert_eq!((step, r.status), ("callback", 400), "{r:?}"),
        Ok(_) => panic!("signed in from a browser that did not start the sign-in"),
    }
    match s.sign_in_with(&bob, &Twist::FlowFor("https://evil.example/".into())) {
        Err((step, r)) => {
            assert_eq!(step, "login flow", "{r:?}");
            assert_ne!(json_of(&r)["type"], "create_entry", "{r:?}");
        }
        Ok(_) => panic!("a ticket signed in another client"),
    }
    assert_eq!(s.users().len(), users_before, "no user was made");
    // The login page lists "Sign in with certificate" first and keeps Home Assistant's own
    // login (without a ticket the certificate's flow aborts, and the page offers the other),
    // so the owner's password still works when certgate cannot sign anyone in.
    let providers = json_of(&s.direct().get(&s.ha.url_of("/auth/providers")));
    let providers = providers.get("providers").unwrap_or(&providers).clone();
    let types: Vec<&str> = providers
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["certgate", "homeassistant"], "{providers}");
    let owner = s.ha.login(
        home_assistant::OWNER,
        home_assistant::OWNER_PASSWORD,
        &["X-Forwarded-For: 203.0.113.200"],
    );
    assert_eq!(json_of(&owner)["type"], "create_entry", "{owner:?}");

    let bob = s.pki.user("bob");
    let bob_tokens = s
        .sign_in(&bob)
        .unwrap_or_else(|(step, r)| panic!("{step}: {r:?}"));
    let sid = bob_tokens.sid.clone().expect("certgate's session cookie");
    assert!(!sid.is_empty(), "no sid in certgate's session cookie");
    assert_eq!(s.api(&bob_tokens.access), 200);
    let valid = json!({"sub": "bob", "sid": sid});
    // Signed with another key under certgate's key id.
    let other_key = s.dir.path().join("other.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&other_key)
        .status()
        .unwrap();
    assert!(made.success());
    let (kid, _) = s.rs256_key();
    let mut forged_claims = json!({
        "iss": format!("https://{AUTH_HOST}:{}", s.port),
        "aud": CLIENT, "iat": now(), "exp": now() + 120, "jti": "forged-1",
        "events": { EVENT: {} },
    });
    forged_claims["sub"] = json!("bob");
    forged_claims["sid"] = json!(sid);
    let forged = sign(&forged_claims, &kid, &std::fs::read(&other_key).unwrap());
    let old = now() - 600;
    for (why, token) in [
        ("another key", forged),
        (
            "another audience",
            s.logout_token(json!({"sub": "bob", "sid": sid, "aud": "grafana"})),
        ),
        (
            "another issuer",
            s.logout_token(json!({"sub": "bob", "sid": sid, "iss": "https://evil.example.com"})),
        ),
        (
            "issued 10 minutes ago",
            s.logout_token(json!({"sub": "bob", "sid": sid, "iat": old, "exp": old + 120})),
        ),
        (
            "no event",
            s.logout_token(json!({"sub": "bob", "sid": sid, "events": {}})),
        ),
        (
            "a nonce",
            s.logout_token(json!({"sub": "bob", "sid": sid, "nonce": "n"})),
        ),
        (
            "no jti",
            s.logout_token(json!({"sub": "bob", "sid": sid, "jti": null})),
        ),
        ("not a JWT", "not.a.jwt".to_string()),
    ] {
        let r = s.backchannel(&token);
        assert_eq!(r.status, 400, "{why}: {r:?}");
        assert_eq!(s.api(&bob_tokens.access), 200, "{why} ended bob's session");
    }
    // Valid tokens for someone else end nothing of bob's: another person, another session of
    // bob's. Each is taken once: its replay is refused.
    for other in [
        json!({"sub": "alice", "sid": sid}),
        json!({"sub": "bob", "sid": "another-session"}),
        json!({"sub": "zed"}),
    ] {
        let token = s.logout_token(other.clone());
        let r = s.backchannel(&token);
        assert_eq!(r.status, 200, "{other}: {r:?}");
        assert_eq!(
            s.api(&bob_tokens.access),
            200,
            "{other} ended bob's session"
        );
        let replay = s.backchannel(&token);
        assert_eq!(replay.status, 400, "replayed {other}: {replay:?}");
    }
    // The valid token for bob's session does end it (so the refusals above were for their
    // faults, not for something else).
    let r = s.backchannel(&s.logout_token(valid));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(s.api(&bob_tokens.access), 401, "sid {sid}:\n{}", s.ha.log());
    assert_eq!(s.refresh(&bob_tokens).status, 400);
}

#[test]
fn home_assistant_asks_certgate_on_refresh_and_ends_a_session_whose_logout_token_never_came() {
    let Some(s) = Sso::start_with(&Options {
        version: None,
        no_backchannel: true,
        integration: "  check_interval: 1",
    }) else {
        return;
    };
    let bob = s.pki.user("bob");
    let mut tokens = s
        .sign_in(&bob)
        .unwrap_or_else(|(step, r)| panic!("{step}: {r:?}"));
    // Refreshes while certgate holds the grant change nothing (each one may ask certgate).
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1_100));
        let r = s.refresh(&tokens);
        assert_eq!(r.status, 200, "{r:?}");
        tokens.access = json_of(&r)["access_token"].as_str().unwrap().to_string();
        assert_eq!(s.api(&tokens.access), 200);
    }
    let (status, out) = run(
        s.dir.path(),
        &["revoke", "--config", "certgate.toml", "--user", "bob"],
    );
    assert_eq!(status, 0, "{out}");
    // No logout token comes; the next refresh a second later asks certgate, which answers
    // that the grant is gone: the session's tokens are removed.
    std::thread::sleep(Duration::from_millis(1_100));
    let asked = s.refresh(&tokens);
    assert!(asked.status == 200 || asked.status == 400, "{asked:?}");
    assert!(
        within(Duration::from_secs(3), || s.api(&tokens.access) == 401),
        "bob's token still works after certgate ended his grant:\n{}",
        s.ha.log()
    );
    assert_eq!(s.refresh(&tokens).status, 400);
}

#[test]
fn home_assistant_makes_no_user_when_create_users_is_off() {
    let Some(s) = Sso::start_with(&Options {
        version: None,
        no_backchannel: false,
        integration: "  create_users: false",
    }) else {
        return;
    };
    let before = s.users().len();
    match s.sign_in(&s.pki.user("bob")) {
        Ok(_) => panic!("bob was signed in although create_users is off"),
        Err((step, r)) => {
            assert_eq!(step, "login flow", "{r:?}");
            assert_eq!(json_of(&r)["type"], "abort", "{r:?}");
        }
    }
    assert_eq!(s.users().len(), before);
}

#[test]
fn home_assistant_follows_certgate_groups_at_each_sign_in() {
    let Some(s) = Sso::start(home_assistant::VERSION) else {
        return;
    };
    let bob = s.pki.user("bob");
    let is_admin = |t: &Tokens| {
        let mut ws = HaSocket::connect(s.ha.port(), &t.access);
        ws.command(json!({"type": "auth/current_user"}))["result"]["is_admin"] == json!(true)
    };
    let first = s
        .sign_in(&bob)
        .unwrap_or_else(|(step, r)| panic!("{step}: {r:?}"));
    assert!(!is_admin(&first));
    let body = std::fs::read_to_string(s.dir.path().join("certgate.toml")).unwrap();
    let body = body.split("\n[listen]").next().unwrap().to_string();
    let (member, admin) = (
        "name = \"bob\"\ngroups = [\"family\"]",
        "name = \"bob\"\ngroups = [\"family\", \"admins\"]",
    );
    assert!(body.contains(member));
    for (groups, expected) in [(admin, true), (member, false)] {
        s.certgate.reload_with(&body.replace(member, groups));
        // The reload takes a moment: sign in until certgate says the new groups.
        assert!(
            within(Duration::from_secs(10), || {
                let t = s
                    .sign_in(&bob)
                    .unwrap_or_else(|(step, r)| panic!("{step}: {r:?}"));
                is_admin(&t) == expected
            }),
            "bob's Home Assistant rights did not follow certgate's groups (admin {expected})"
        );
    }
    let users = s.users();
    assert_eq!(
        users.iter().filter(|u| u["name"] == "bob").count(),
        1,
        "{users:?}"
    );
}
