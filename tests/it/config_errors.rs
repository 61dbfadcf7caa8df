//! `certgate check-config` and `serve` on bad configuration: every problem, one per line,
//! `key: problem (hint)`, exit 2.

use std::process::Command;

use crate::harness::certgate::binary;
use crate::harness::pki::Pki;

fn check(dir: &std::path::Path, toml: &str, env: &[(&str, &str)]) -> (i32, String) {
    let path = dir.join("bad.toml");
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn check_config_reports_every_problem_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = check(
        dir.path(),
        r#"
public_url = "auth.example.com"
lisen = "oops"
[listen]
http = "localhost"
htp = "127.0.0.1:1"
workers = 0
[session]
ttl = "forever"
[token]
default_ttl = "40d"
max_ttl = "2y"
[identity]
username_from = "cn_or_something"
[[users]]
groups = ["x"]
[[users]]
name = "bob"
groups = ["a,b"]
[headers]
user = "X-User"
name = "x-user"
email = "Cache-Control"
"#,
        &[],
    );
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    for want in [
        "lisen: unknown key",
        "listen.htp: unknown key",
        "public_url: `auth.example.com`",
        "listen.http: `localhost` is not an IP address and port",
        "listen.workers: 0 is not a number of threads from 1 to 256",
        "client_ca.bundle: missing",
        "session.ttl: `forever` is not a duration",
        "token.default_ttl, token.max_ttl: default_ttl is longer than max_ttl",
        "identity.username_from: `cn_or_something`",
        "users[0].name: missing",
        "users[1].groups: `a,b` is not a usable group name",
        "token.max_ttl: `2y` is longer than a year",
        "headers.user, headers.name: both name the header `x-user`",
        "headers.email: `cache-control` is a header certgate's answers or HTTP itself already use",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing `{want}` in:\n{err}"
        );
    }
    assert!(
        lines.iter().all(|l| l.contains(": ") && l.ends_with(')')),
        "every line is `key: problem (hint)`:\n{err}"
    );
}

#[test]
fn files_are_checked_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Files CA");
    let alice = pki.user("alice");
    let (code, err) = check(
        dir.path(),
        &format!(
            "public_url = \"https://auth.example.com\"\n[listen]\nmtls = \"127.0.0.1:1\"\n[tls]\ncert = \"{}\"\nkey = \"/nonexistent/server.key\"\n[client_ca]\nbundle = \"{}\"\n",
            alice.cert.display(),
            alice.cert.display()
        ),
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("tls.key: cannot read a private key from /nonexistent/server.key"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "client_ca.bundle: {}: certificate #1",
            alice.cert.display()
        )),
        "{err}"
    );
    assert!(err.contains("is not a CA certificate"), "{err}");

    let missing = Command::new(binary())
        .args(["check-config", "--config", "/nonexistent/certgate.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/certgate.toml")
    );
}

#[test]
fn environment_overrides_apply_and_serve_refuses_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Env CA");
    let toml = format!(
        "public_url = \"nope\"\n[client_ca]\nbundle = \"{}\"\n",
        pki.ca_pem.display()
    );
    let (code, err) = check(dir.path(), &toml, &[]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = check(
        dir.path(),
        &toml,
        &[("CERTGATE__PUBLIC_URL", "https://auth.example.com")],
    );
    assert_eq!(code, 0, "{err}");
    let (code, err) = check(
        dir.path(),
        &toml,
        &[
            ("CERTGATE__PUBLIC_URL", "https://auth.example.com"),
            ("CERTGATE__SESSION__TTL", "soon"),
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("session.ttl: `soon`"), "{err}");

    let serve = Command::new(binary())
        .args(["serve", "--config"])
        .arg(dir.path().join("bad.toml"))
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&serve.stderr).contains("public_url"));
}

/// The shipped example is valid once the files it names exist.
#[test]
fn the_example_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Example CA");
    std::fs::copy(&pki.ca_pem, dir.path().join("client-ca.pem")).unwrap();
    let example = include_str!("../../config/certgate.example.toml");
    let (code, err) = check(dir.path(), example, &[]);
    assert_eq!(code, 0, "{err}");
}

/// The `[listen]` keys for the metrics listener and for slow clients: each bad value names its
/// key and the fix, from the file or from the environment; a taken metrics port stops the
/// start with the key and the variable that moves it.
#[test]
fn listen_keys_are_checked_and_a_taken_metrics_port_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Listen CA");
    let toml = format!(
        "public_url = \"https://auth.example.com\"\ndata_dir = \"data\"\n[listen]\nhttp = \"127.0.0.1:{http}\"\nmetrics = \"localhost:9190\"\nmax_connections = 0\n[client_ca]\nbundle = \"{ca}\"\n",
        http = crate::harness::free_port(),
        ca = pki.ca_pem.display()
    );
    let (code, err) = check(
        dir.path(),
        &toml,
        &[
            ("CERTGATE__LISTEN__HEADER_TIMEOUT", "forever"),
            ("CERTGATE__LISTEN__TLS_HANDSHAKE_TIMEOUT", "1h"),
            ("CERTGATE__LISTEN__MTLS", "0.0.0.0:9180"),
            ("CERTGATE__LISTEN__HTTP", "127.0.0.1:9180"),
        ],
    );
    assert_eq!(code, 2, "{err}");
    for want in [
        "listen.metrics: `localhost:9190` is not an IP address and port (e.g. \"127.0.0.1:9180\" or \"[::1]:9180\", or \"\" to turn the metrics listener off)",
        "listen.max_connections: 0 is not a number of connections from",
        "listen.header_timeout: `forever` is not a duration",
        "listen.tls_handshake_timeout: `1h` is out of range (a duration from 1s to 5m",
        "listen.http, listen.mtls: both use port 9180 (give the mTLS listener a port of its own",
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(want)),
            "missing `{want}` in:\n{err}"
        );
    }
    // Fixed from the environment: off, or on another port.
    let (code, err) = check(
        dir.path(),
        &toml,
        &[
            ("CERTGATE__LISTEN__METRICS", ""),
            ("CERTGATE__LISTEN__MAX_CONNECTIONS", "64"),
        ],
    );
    assert_eq!(code, 0, "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(binary())
        .args(["serve", "--config"])
        .arg(dir.path().join("bad.toml"))
        .env("CERTGATE__LISTEN__METRICS", format!("127.0.0.1:{port}"))
        .env("CERTGATE__LISTEN__MAX_CONNECTIONS", "64")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "listen.metrics: cannot listen on 127.0.0.1:{port}"
        )) && stderr.contains("CERTGATE__LISTEN__METRICS"),
        "{stderr}"
    );
}

/// A sign-in host whose cookie cannot reach an app host it sends browsers back to is the
/// redirect loop (ERR_TOO_MANY_REDIRECTS): refused, naming both hosts and the fix, by
/// check-config and by serve; a cookie_domain covering both, or the single-host layout, passes.
#[test]
fn a_sign_in_host_whose_cookie_misses_the_app_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Loop CA");
    let config = |session: &str| {
        format!(
            "public_url = \"https://auth.example.com\"\ndata_dir = \"data\"\n[client_ca]\nbundle = \"{}\"\n[session]\n{session}\n",
            pki.ca_pem.display()
        )
    };
    for (hosts, names) in [
        ("[\"app.example.com\"]", "`app.example.com`"),
        ("[\"*.example.com\"]", "`*.example.com`"),
    ] {
        let toml = config(&format!("allowed_redirect_hosts = {hosts}"));
        let (code, err) = check(dir.path(), &toml, &[]);
        assert_eq!(code, 2, "{err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("session.cookie_domain, session.allowed_redirect_hosts: "))
            .unwrap_or_else(|| panic!("{err}"));
        for says in [
            "`auth.example.com`",
            names,
            "ERR_TOO_MANY_REDIRECTS",
            "set session.cookie_domain = \"example.com\" (a parent domain of both)",
            "single-host layout",
        ] {
            assert!(line.contains(says), "`{says}` missing: {line}");
        }
        let serve = Command::new(binary())
            .args(["serve", "--config"])
            .arg(dir.path().join("bad.toml"))
            .output()
            .unwrap();
        assert_eq!(serve.status.code(), Some(2), "{serve:?}");
        assert!(String::from_utf8_lossy(&serve.stderr).contains("ERR_TOO_MANY_REDIRECTS"));
    }
    // The fix from the message, or the override that sets it.
    let (code, err) = check(
        dir.path(),
        &config("cookie_domain = \"example.com\"\nallowed_redirect_hosts = [\"*.example.com\"]"),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (code, err) = check(
        dir.path(),
        &config("allowed_redirect_hosts = [\"app.example.com\"]"),
        &[("CERTGATE__SESSION__COOKIE_DOMAIN", "example.com")],
    );
    assert_eq!(code, 0, "{err}");
    // The single-host layout: certgate under the app host's /.certgate/.
    let single = format!(
        "public_url = \"https://app.example.com/.certgate\"\n[client_ca]\nbundle = \"{}\"\n[session]\nallowed_redirect_hosts = [\"app.example.com\"]\n",
        pki.ca_pem.display()
    );
    let (code, err) = check(dir.path(), &single, &[]);
    assert_eq!(code, 0, "{err}");
}
