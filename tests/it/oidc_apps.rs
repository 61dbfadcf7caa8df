//! Real apps that people sign in to, with certgate as their OpenID Connect provider (issue 17):
//! Apache 2.4 with mod_auth_openidc (Debian packages) and Matrix Synapse (PyPI, in its own
//! venv), each started on a free loopback port with the settings the README shows, and signed
//! in to by a scripted browser: curl holding alice's client certificate and a cookie jar,
//! following every redirect by hand (`shared/notes/relying-parties.md`: the same as Chromium).
//! Then certgate ends the sign-in (`certgate revoke --user`, or the app's own logout) and the
//! app must have been told: its next request is no longer signed in.
//!
//! The exact settings here are the README's sections "Apache with mod_auth_openidc" and
//! "Matrix Synapse": change one, change the other.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::direct::{setup, Setup, LOOPBACK};
use crate::harness::apache::{self, Apache};
use crate::harness::certgate::run;
use crate::harness::curl::Response;
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
    let mut hops: Vec<Hop> = Vec::new();
    let mut url = url.to_string();
    for _ in 0..10 {
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
            None => return hops,
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
        visited[1].starts_with(&s.cg.mtls("/oidc/authorize?")),
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
