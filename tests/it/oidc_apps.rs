//! Real apps that people sign in to, with certgate as their OpenID Connect provider (issue 17):
//! Apache 2.4 with mod_auth_openidc (Debian packages), Matrix Synapse and JupyterHub with
//! oauthenticator (PyPI, each in its own venv), each started on a free loopback port with the
//! settings the README shows, and signed in to by a scripted browser: curl holding alice's
//! client certificate and a cookie jar, following every redirect by hand
//! (`shared/notes/relying-parties.md`: the same as Chromium).
//! Then certgate ends the sign-in (`certgate revoke --user`, or the app's own logout) and the
//! app must have been told: its next request is no longer signed in.
//!
//! The exact settings here are the README's sections "Apache 2.4 with mod_auth_openidc",
//! "Matrix Synapse" and "JupyterHub with oauthenticator": change one, change the other.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::direct::{setup, Setup, LOOPBACK};
use crate::harness::apache::{self, Apache};
use crate::harness::certgate::run;
use crate::harness::curl::Response;
use crate::harness::jupyterhub::{self, JupyterHub};
use crate::harness::synapse::{self, Synapse};
use crate::harness::{free_port, require};

/// One hop of a scripted browser: the URL asked and what came back.
struct Hop {
    url: String,
    response: Response,
}

/// A browser that is curl with a cookie jar (and alice's certificate when `with_cert`; curl
/// presents it only to a server that asks, i.e. certgate's mTLS listener), following at most
/// 10 redirects by hand. Every hop, the last one the page it ended on.
fn browse(s: &Setup, jar: &Path, url: &str, with_cert: bool) -> Vec<Hop> {
    browse_until(s, jar, url, with_cert, None).0
}

/// [`browse`], stopping before a URL that starts with `stop` (an app's page nothing serves
/// here): the hops, and that URL when it was reached.
fn browse_until(
    s: &Setup,
    jar: &Path,
    url: &str,
    with_cert: bool,
    stop: Option<&str>,
) -> (Vec<Hop>, Option<String>) {
    let mut hops: Vec<Hop> = Vec::new();
    let mut url = url.to_string();
    for _ in 0..10 {
        if stop.is_some_and(|stop| url.starts_with(stop)) {
            return (hops, Some(url));
        }
        let curl = if with_cert { s.as_alice() } else { s.curl() };
        let response = curl.jar(jar).get(&url);
        let next = match response.status {
            301 | 302 | 303 | 307 | 308 => response.header("location").map(|l| {
                url::Url::parse(&url)
                    .and_then(|base| base.join(l))
                    .unwrap_or_else(|e| panic!("Location {l} from {url}: {e}"))
                    .to_string()
            }),
            _ => None,
        };
        hops.push(Hop { url, response });
        match next {
            Some(n) => url = n,
            None => return (hops, None),
        }
    }
    panic!("more than 10 redirects: {:?}", urls(&hops));
}

fn urls(hops: &[Hop]) -> Vec<&str> {
    hops.iter().map(|h| h.url.as_str()).collect()
}

/// The page a [`browse`] ended on.
fn last(hops: &[Hop]) -> &Response {
    &hops.last().expect("at least one hop").response
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Waits up to 10 s for `done`, asking every 100 ms; whether it came.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// Apache 2.4 + mod_auth_openidc

const APACHE_SECRET: &str = "apache-secret-3b9d0f6c2a8e4b1d7c5a9e0f";

/// certgate's `[[oidc.clients]]` for Apache at `app` (`http://127.0.0.1:PORT`), as in the README.
fn apache_client(app: &str) -> String {
    format!(
        r#"[oidc]
[[oidc.clients]]
id = "apache"
secret = "{APACHE_SECRET}"
redirect_uris = ["{app}/protected/redirect_uri"]
post_logout_redirect_uris = ["{app}/signed-out.html"]
backchannel_logout_uri = "{app}/protected/redirect_uri?logout=backchannel"
scopes = ["openid", "profile", "email", "groups"]
"#
    )
}

/// Apache's site: mod_auth_openidc with certgate's discovery, `/protected` for anyone certgate
/// signs in (its redirect URI is inside it, with `Require valid-user`), `/admins` only for
/// members of `admins` (a `Require claim`), `whoami` in both.
fn apache_site(s: &Setup, app: &str, whoami: &Path) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        r#"OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCCABundlePath {ca}
OIDCClientID apache
OIDCClientSecret {APACHE_SECRET}
OIDCRedirectURI {app}/protected/redirect_uri
OIDCCryptoPassphrase test-passphrase-{nanos}
OIDCScope "openid profile email groups"
OIDCPKCEMethod S256
OIDCRemoteUserClaim preferred_username
ScriptAlias /protected/whoami {whoami}
ScriptAlias /admins/whoami {whoami}
<Location /protected>
  AuthType openid-connect
  Require valid-user
</Location>
<Location /admins>
  AuthType openid-connect
  Require claim groups:admins
</Location>
"#,
        issuer = s.cg.mtls(""),
        ca = s.pki.ca_pem.display(),
        whoami = whoami.display(),
    )
}

/// Whether Apache sends a request with only `jar` (no certificate) to certgate to sign in.
fn apache_sends_to_certgate(s: &Setup, apache: &Apache, jar: &Path) -> bool {
    let r = s.curl().jar(jar).get(&apache.url("/protected/whoami"));
    r.status == 302
        && r.header("location")
            .is_some_and(|l| l.starts_with(&s.cg.mtls("/oidc/authorize?")))
}

/// The back-channel logout POSTs Apache got, with their statuses.
fn apache_backchannel_posts(apache: &Apache) -> Vec<String> {
    apache
        .access_log()
        .lines()
        .filter(|l| l.contains("\"POST /protected/redirect_uri?logout=backchannel "))
        .map(str::to_string)
        .collect()
}

/// alice signs in to Apache with her certificate: `/protected/whoami` through certgate and
/// back, ending on the script with `REMOTE_USER=alice`.
fn apache_sign_in(s: &Setup, apache: &Apache, jar: &Path) {
    let hops = browse(s, jar, &apache.url("/protected/whoami"), true);
    let page = last(&hops);
    assert_eq!(page.status, 200, "{:?}: {page:?}", urls(&hops));
    assert!(
        page.body.contains("REMOTE_USER=alice\n"),
        "{page:?}\n{}",
        apache.error_log()
    );
    let visited = urls(&hops);
    assert!(
        visited[1].starts_with(&s.cg.mtls("/oidc/authorize?"))
            && visited[1].contains("&code_challenge_method=S256"),
        "{visited:?}"
    );
    assert!(
        visited[2].starts_with(&apache.url("/protected/redirect_uri?code=")),
        "{visited:?}"
    );
}

#[test]
fn apache_mod_auth_openidc_signs_alice_in_and_hears_every_logout() {
    if !require("curl") || !apache::require() {
        return;
    }
    let port = free_port();
    let app = format!("http://127.0.0.1:{port}");
    let s = setup(LOOPBACK, &apache_client(&app));
    let whoami = Apache::root(s.dir.path()).join("whoami");
    let apache = Apache::start(s.dir.path(), port, &apache_site(&s, &app, &whoami));
    let jar = s.dir.path().join("apache-cookies.txt");

    // Signed in: Apache names alice and passes her claims to the app.
    apache_sign_in(&s, &apache, &jar);
    let page = s.curl().jar(&jar).get(&apache.url("/protected/whoami"));
    assert_eq!(
        page.status, 200,
        "Apache's own session, no certificate: {page:?}"
    );
    assert!(page.body.contains("email=alice@example.test\n"), "{page:?}");
    assert!(page.body.contains("groups=admins,family\n"), "{page:?}");
    // The `Require claim groups:admins` location lets her in on the same session.
    let admins = s.curl().jar(&jar).get(&apache.url("/admins/whoami"));
    assert_eq!(admins.status, 200, "{admins:?}");
    assert!(admins.body.contains("REMOTE_USER=alice\n"), "{admins:?}");
    // Someone without the session is sent to certgate.
    let stranger = s.dir.path().join("stranger-cookies.txt");
    assert!(apache_sends_to_certgate(&s, &apache, &stranger));
    assert!(!apache_sends_to_certgate(&s, &apache, &jar));

    // certgate revokes alice: the back-channel logout reaches mod_auth_openidc, which ends
    // her Apache session: the same cookie is sent to certgate again.
    let (code, out) = run(
        s.dir.path(),
        &["revoke", "--config", "certgate.toml", "--user", "alice"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        eventually(|| apache_sends_to_certgate(&s, &apache, &jar)),
        "Apache still lets alice in after certgate revoked her; its access log:\n{}",
        apache.access_log()
    );
    let posts = apache_backchannel_posts(&apache);
    assert_eq!(posts.len(), 1, "{}", apache.access_log());
    assert!(posts[0].ends_with(" 200"), "{posts:?}");

    // RP-initiated logout: she signs in again (her certificate is still good), then uses
    // mod_auth_openidc's logout URL, which sends her to certgate's end_session endpoint with
    // the ID token as hint; certgate ends its session and sends her back to Apache's page.
    apache_sign_in(&s, &apache, &jar);
    let verify = s.curl().jar(&jar).get(&s.cg.mtls("/verify"));
    assert_eq!(verify.status, 200, "certgate's session cookie: {verify:?}");
    let signed_out = format!("{app}/signed-out.html");
    let hops = browse(
        &s,
        &jar,
        &apache.url(&format!(
            "/protected/redirect_uri?logout={}",
            enc(&signed_out)
        )),
        false,
    );
    let visited = urls(&hops);
    assert_eq!(visited.len(), 3, "{visited:?}");
    assert!(
        visited[1].starts_with(&s.cg.mtls("/oidc/logout?"))
            && visited[1].contains("id_token_hint="),
        "{visited:?}"
    );
    assert_eq!(visited[2], signed_out, "{visited:?}");
    assert_eq!(last(&hops).status, 200, "{:?}", last(&hops));
    assert!(last(&hops).body.contains("signed out of Apache"));
    // Both sessions are over: Apache's and certgate's (the cookie no longer passes /verify).
    assert!(apache_sends_to_certgate(&s, &apache, &jar));
    let verify = s.curl().jar(&jar).get(&s.cg.mtls("/verify"));
    assert_eq!(
        verify.status, 401,
        "certgate's session outlived the logout: {verify:?}"
    );
    // certgate also told Apache by back channel (the session was already gone there): one
    // more POST, answered 200, so nothing is retried.
    assert!(
        eventually(|| apache_backchannel_posts(&apache).len() == 2),
        "{}",
        apache.access_log()
    );
    let posts = apache_backchannel_posts(&apache);
    assert!(posts[1].ends_with(" 200"), "{posts:?}");
}

/// Why the README says to keep RS256 (or ES256) for Apache: mod_auth_openidc 2.4.12 (its cjose)
/// cannot parse an EdDSA ID token from certgate, so nobody is signed in.
#[test]
fn apache_mod_auth_openidc_refuses_eddsa_id_tokens() {
    if !require("curl") || !apache::require() {
        return;
    }
    let port = free_port();
    let app = format!("http://127.0.0.1:{port}");
    let client = format!(
        "{}id_token_signed_response_alg = \"EdDSA\"\n",
        apache_client(&app)
    );
    let s = setup(LOOPBACK, &client);
    let whoami = Apache::root(s.dir.path()).join("whoami");
    let apache = Apache::start(s.dir.path(), port, &apache_site(&s, &app, &whoami));
    let jar = s.dir.path().join("apache-cookies.txt");
    let hops = browse(&s, &jar, &apache.url("/protected/whoami"), true);
    let visited = urls(&hops);
    // certgate issued the code; mod_auth_openidc refused what it got for it.
    assert!(
        visited.len() == 3 && visited[2].starts_with(&apache.url("/protected/redirect_uri?code=")),
        "{visited:?}"
    );
    // Its error page (answered 200), and why in its log: cjose cannot import the JWS.
    let page = last(&hops);
    assert!(
        page.body.contains("Error in handling response type") && !page.body.contains("REMOTE_USER"),
        "{page:?}"
    );
    assert!(
        apache
            .error_log()
            .contains("oidc_proto_parse_idtoken: oidc_jwt_parse failed"),
        "{}",
        apache.error_log()
    );
    // Nobody is signed in: the next request goes to certgate again.
    assert!(apache_sends_to_certgate(&s, &apache, &jar));
}

// ---------------------------------------------------------------------------------------------
// Matrix Synapse

const SYNAPSE_SECRET: &str = "synapse-secret-8c1e5a7f3d9b2c4e6a0f1b3d";
/// Where the Matrix client (Element) wants the login token: nothing serves it here, the
/// scripted browser stops there and reads `loginToken`.
const ELEMENT: &str = "https://element.example.test/";

/// certgate's `[[oidc.clients]]` for Synapse at `base` (`http://127.0.0.1:PORT`), as in the
/// README.
fn synapse_client(base: &str) -> String {
    format!(
        r#"[oidc]
[[oidc.clients]]
id = "synapse"
secret = "{SYNAPSE_SECRET}"
redirect_uris = ["{base}/_synapse/client/oidc/callback"]
backchannel_logout_uri = "{base}/_synapse/client/oidc/backchannel_logout"
scopes = ["openid", "profile", "email"]
"#
    )
}

/// `homeserver.yaml`'s provider for certgate (`issuer`), as in the README.
fn synapse_provider(issuer: &str) -> String {
    format!(
        r#"oidc_providers:
  - idp_id: certgate
    idp_name: "Client certificate"
    issuer: "{issuer}"
    client_id: "synapse"
    client_secret: "{SYNAPSE_SECRET}"
    scopes: ["openid", "profile", "email"]
    backchannel_logout_enabled: true
    user_mapping_provider:
      config:
        localpart_template: "{{{{ user.preferred_username }}}}"
        display_name_template: "{{{{ user.name }}}}"
sso:
  client_whitelist: ["{ELEMENT}"]
"#
    )
}

fn json_of(r: &Response) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

/// `GET /_matrix/client/v3/account/whoami` with `token`.
fn synapse_whoami(s: &Setup, synapse: &Synapse, token: &str) -> Response {
    s.curl()
        .header(&format!("Authorization: Bearer {token}"))
        .get(&synapse.url("/_matrix/client/v3/account/whoami"))
}

#[test]
fn synapse_signs_alice_in_and_certgate_revocation_ends_her_matrix_token() {
    if !require("curl") || !synapse::require() {
        return;
    }
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let s = setup(LOOPBACK, &synapse_client(&base));
    let synapse = Synapse::start(
        s.dir.path(),
        port,
        &synapse_provider(&s.cg.mtls("")),
        &s.pki.ca_pem,
    );

    // Synapse offers certgate as its single sign-on provider.
    let flows = json_of(&s.curl().get(&synapse.url("/_matrix/client/v3/login")));
    let sso = flows["flows"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["type"] == "m.login.sso"))
        .unwrap_or_else(|| panic!("no m.login.sso in {flows}"));
    assert_eq!(sso["identity_providers"][0]["id"], "oidc-certgate", "{sso}");

    // The Matrix client sends the browser to Synapse's SSO redirect; Synapse to certgate;
    // certgate (alice's certificate) back to Synapse's callback; Synapse to the client with a
    // login token.
    let jar = s.dir.path().join("synapse-cookies.txt");
    let start = synapse.url(&format!(
        "/_matrix/client/v3/login/sso/redirect/oidc-certgate?redirectUrl={}",
        enc(ELEMENT)
    ));
    let (hops, landed) = browse_until(&s, &jar, &start, true, Some(ELEMENT));
    let visited = urls(&hops);
    let landed = landed.unwrap_or_else(|| {
        panic!(
            "Synapse did not send the browser back to {ELEMENT}: {visited:?}, last {:?}\n{}",
            last(&hops),
            synapse.log()
        )
    });
    assert!(
        visited[1].starts_with(&s.cg.mtls("/oidc/authorize?"))
            && visited[1].contains("&code_challenge_method=S256"),
        "{visited:?}"
    );
    assert!(
        visited[2].starts_with(&synapse.url("/_synapse/client/oidc/callback?code=")),
        "{visited:?}"
    );
    let login_token = url::Url::parse(&landed)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "loginToken")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no loginToken in {landed}"));

    // The client trades the login token for a Matrix access token: alice's.
    let login = s.curl().header("Content-Type: application/json").post(
        &synapse.url("/_matrix/client/v3/login"),
        &serde_json::json!({"type": "m.login.token", "token": login_token}).to_string(),
    );
    assert_eq!(login.status, 200, "{login:?}");
    let login = json_of(&login);
    let user_id = format!("@alice:{}", synapse::SERVER_NAME);
    assert_eq!(login["user_id"], user_id.as_str(), "{login}");
    let token = login["access_token"].as_str().unwrap().to_string();
    let me = synapse_whoami(&s, &synapse, &token);
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(json_of(&me)["user_id"], user_id.as_str(), "{me:?}");
    // The display name came from certgate's `name` claim.
    let profile = s
        .curl()
        .get(&synapse.url(&format!("/_matrix/client/v3/profile/{}", enc(&user_id))));
    assert_eq!(
        json_of(&profile)["displayname"],
        "Alice Liddell",
        "{profile:?}"
    );

    // certgate revokes alice: its back-channel logout token (sid) makes Synapse log out the
    // device that sign-in made, and the Matrix access token is refused.
    let (code, out) = run(
        s.dir.path(),
        &["revoke", "--config", "certgate.toml", "--user", "alice"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        eventually(|| synapse_whoami(&s, &synapse, &token).status == 401),
        "Synapse still accepts alice's token after certgate revoked her; its log:\n{}",
        synapse.log()
    );
    let refused = synapse_whoami(&s, &synapse, &token);
    assert_eq!(
        json_of(&refused)["errcode"],
        "M_UNKNOWN_TOKEN",
        "{refused:?}"
    );
    // Synapse took the logout token: 200, so certgate does not send it again.
    assert!(
        synapse
            .log()
            .contains(" 200 \"POST /_synapse/client/oidc/backchannel_logout HTTP/1.1\""),
        "{}",
        synapse.log()
    );
}

// ---------------------------------------------------------------------------------------------
// JupyterHub + oauthenticator's GenericOAuthenticator

const JUPYTERHUB_SECRET: &str = "jupyterhub-secret-4e2a9c7b1f5d3e8a0c6b";

/// certgate's `[[oidc.clients]]` for JupyterHub at `hub` (`http://127.0.0.1:PORT`), as in the
/// README: no back-channel URI (JupyterHub has no such endpoint).
fn jupyterhub_client(hub: &str) -> String {
    format!(
        r#"[oidc]
[[oidc.clients]]
id = "jupyterhub"
secret = "{JUPYTERHUB_SECRET}"
token_endpoint_auth_method = "client_secret_post"
redirect_uris = ["{hub}/hub/oauth_callback"]
post_logout_redirect_uris = ["{hub}/hub/login"]
scopes = ["openid", "profile", "email", "offline_access"]
"#
    )
}

/// `jupyterhub_config.py`'s authenticator for certgate (`issuer`) and the hub at `hub`, as in
/// the README but for `auth_refresh_age` (1 s here, so the test sees a refresh soon).
fn jupyterhub_authenticator(issuer: &str, hub: &str, ca: &Path) -> String {
    format!(
        r#"c.JupyterHub.authenticator_class = "generic-oauth"
c.GenericOAuthenticator.client_id = "jupyterhub"
c.GenericOAuthenticator.client_secret = "{JUPYTERHUB_SECRET}"
c.GenericOAuthenticator.oauth_callback_url = "{hub}/hub/oauth_callback"
c.GenericOAuthenticator.authorize_url = "{issuer}/oidc/authorize"
c.GenericOAuthenticator.token_url = "{issuer}/oidc/token"
c.GenericOAuthenticator.userdata_url = "{issuer}/oidc/userinfo"
c.GenericOAuthenticator.logout_redirect_url = "{issuer}/oidc/logout?client_id=jupyterhub&post_logout_redirect_uri={after}"
c.GenericOAuthenticator.scope = ["openid", "profile", "email", "offline_access"]
c.GenericOAuthenticator.username_claim = "preferred_username"
c.GenericOAuthenticator.allowed_users = {{"alice"}}
c.GenericOAuthenticator.enable_auth_state = True
c.GenericOAuthenticator.auth_refresh_age = 1
c.GenericOAuthenticator.http_request_kwargs = {{"ca_certs": "{ca}"}}
"#,
        after = enc(&format!("{hub}/hub/login")),
        ca = ca.display(),
    )
}

#[test]
fn jupyterhub_signs_alice_in_and_notices_certgate_revocation() {
    if !require("curl") || !jupyterhub::require() {
        return;
    }
    let port = free_port();
    let hub_url = format!("http://127.0.0.1:{port}");
    let s = setup(LOOPBACK, &jupyterhub_client(&hub_url));
    let hub = JupyterHub::start(
        s.dir.path(),
        port,
        &jupyterhub_authenticator(&s.cg.mtls(""), &hub_url, &s.pki.ca_pem),
    );
    let jar = s.dir.path().join("jupyterhub-cookies.txt");

    // alice, holding her certificate, presses "Sign in with OAuth 2.0": JupyterHub sends her
    // to certgate and back, and shows her its home page.
    let sign_in = |jar: &Path| {
        let hops = browse(&s, jar, &hub.url("/hub/oauth_login"), true);
        let visited = urls(&hops);
        let page = last(&hops);
        assert_eq!(page.status, 200, "{visited:?}: {page:?}\n{}", hub.log());
        assert!(
            visited[1].starts_with(&s.cg.mtls("/oidc/authorize?"))
                && visited[1].contains("&code_challenge_method=S256"),
            "{visited:?}"
        );
        assert!(
            visited[2].starts_with(&hub.url("/hub/oauth_callback?code=")),
            "{visited:?}"
        );
        assert_eq!(visited.last(), Some(&hub.url("/hub/home").as_str()));
        assert!(page.body.contains(r#"user: "alice","#), "{}", page.body);
    };
    let home = |jar: &Path| s.curl().jar(jar).get(&hub.url("/hub/home"));
    let signed_in = |r: &Response| r.status == 200 && r.body.contains(r#"user: "alice","#);
    let sent_to_login = |r: &Response| {
        r.status == 302
            && r.header("location")
                .is_some_and(|l| l.starts_with("/hub/login"))
    };
    let refreshes = || hub.log().matches("Refreshing auth for alice").count();
    sign_in(&jar);

    // JupyterHub checks her sign-in with certgate (userinfo with the access token) once it is
    // older than auth_refresh_age: certgate answers, and she stays signed in.
    let before = refreshes();
    assert!(
        eventually(|| {
            let page = home(&jar);
            assert!(signed_in(&page), "{page:?}\n{}", hub.log());
            refreshes() > before
        }),
        "JupyterHub never refreshed alice's sign-in; its log:\n{}",
        hub.log()
    );

    // certgate revokes alice: at the next refresh certgate refuses the access token (userinfo)
    // and the refresh token, and JupyterHub sends her to its login page.
    let (code, out) = run(
        s.dir.path(),
        &["revoke", "--config", "certgate.toml", "--user", "alice"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        eventually(|| sent_to_login(&home(&jar))),
        "JupyterHub still lets alice in after certgate revoked her; its log:\n{}",
        hub.log()
    );
    assert!(
        hub.log().contains(
            "Error using refresh_token for alice: HTTP 400: Bad Request. Requiring fresh login."
        ),
        "{}",
        hub.log()
    );

    // Logout: she signs in again, then JupyterHub's logout sends her to certgate's
    // /oidc/logout with client_id alone, which asks "Sign out?"; her "Sign out" (posted from
    // certgate's page) ends the certgate session and sends her back to JupyterHub's login.
    sign_in(&jar);
    assert_eq!(s.curl().jar(&jar).get(&s.cg.mtls("/verify")).status, 200);
    let hops = browse(&s, &jar, &hub.url("/hub/logout"), false);
    let visited = urls(&hops);
    assert_eq!(visited.len(), 2, "{visited:?}");
    // JupyterHub clears its login cookie (an expired, empty one: a browser drops it; curl's
    // cookie jar keeps some of these, so the test reads the answer instead).
    let cleared = hops[0].response.header("set-cookie").unwrap_or_default();
    assert!(
        cleared
            .lines()
            .any(|c| c.starts_with(r#"jupyterhub-hub-login=""; expires="#)),
        "{cleared}"
    );
    assert!(
        visited[1].starts_with(&s.cg.mtls("/oidc/logout?client_id=jupyterhub&")),
        "{visited:?}"
    );
    let confirm = last(&hops);
    assert_eq!(confirm.status, 200, "{confirm:?}");
    assert!(confirm.body.contains("Sign out?"), "{}", confirm.body);
    let origin = s.cg.mtls("");
    let signed_out = s
        .curl()
        .jar(&jar)
        .header(&format!("Origin: {origin}"))
        .post(visited[1], "confirm=1");
    assert!([302, 303].contains(&signed_out.status), "{signed_out:?}");
    assert_eq!(
        signed_out.header("location"),
        Some(hub.url("/hub/login").as_str()),
        "{signed_out:?}"
    );
    assert_eq!(s.curl().jar(&jar).get(&s.cg.mtls("/verify")).status, 401);
}
