//! Running certgate for years: the numbers on `/metrics`, the audit lines, SIGHUP reloads and
//! SIGTERM drains, against a real certgate process and curl.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::direct::{cookie_value, setup, setup_env, LOOPBACK};
use crate::harness::certgate::Certgate;
use crate::harness::curl::Curl;
use crate::harness::pki::Pki;
use crate::harness::require;

const JSON_LOGS: &[(&str, &str)] = &[("CERTGATE_LOG_FORMAT", "json")];

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// login, a refused login, token, two allows, a deny, no credentials, logout, a revoked
/// cookie: each leaves exactly its counter and its audit line, and no token reaches the log.
#[test]
fn metrics_and_audit_lines_follow_a_known_sequence() {
    if !require("curl") {
        return;
    }
    let rules = "[[rules]]\npath = \"/private/**\"\nusers = [\"bob\"]\naction = \"allow\"\n\
                 [[rules]]\npath = \"/private/**\"\naction = \"deny\"\n";
    let s = setup_env(LOOPBACK, rules, JSON_LOGS);
    let check = |credential: Option<&str>, path: &str| {
        let mut c = s
            .curl()
            .header(&format!("X-Original-URL: https://app.example.test{path}"));
        if let Some(h) = credential {
            c = c.header(h);
        }
        c.get(&s.cg.http("/verify")).status
    };

    let login = s.as_alice().get(&s.cg.mtls("/auth"));
    assert_eq!(login.status, 200, "{login:?}");
    let cookie = cookie_value(&login, "__Host-certgate");
    let cookie_header = format!("Cookie: __Host-certgate={cookie}");
    assert_eq!(s.curl().get(&s.cg.mtls("/auth")).status, 401);
    let bearer = s.bearer();
    let bearer_header = format!("Authorization: Bearer {bearer}");
    assert_eq!(check(Some(&cookie_header), "/home"), 200);
    assert_eq!(check(Some(&bearer_header), "/home"), 200);
    assert_eq!(check(Some(&bearer_header), "/private/x?code=s3cret"), 403);
    assert_eq!(check(None, "/home"), 401);
    let out = s
        .curl()
        .header(&cookie_header)
        .header("Sec-Fetch-Site: same-origin")
        .post(&s.cg.mtls("/logout"), "");
    assert_eq!(out.status, 200, "{out:?}");
    assert_eq!(check(Some(&cookie_header), "/home"), 401);

    for (series, want) in [
        ("certgate_logins_total{result=\"ok\"}", 1.0),
        ("certgate_logins_total{result=\"no_certificate\"}", 1.0),
        ("certgate_tokens_minted_total", 1.0),
        (
            "certgate_decisions_total{reason=\"session\",result=\"allow\"}",
            1.0,
        ),
        (
            "certgate_decisions_total{reason=\"bearer\",result=\"allow\"}",
            1.0,
        ),
        (
            "certgate_decisions_total{reason=\"forbidden\",result=\"deny\"}",
            1.0,
        ),
        (
            "certgate_decisions_total{reason=\"no_credentials\",result=\"unauthenticated\"}",
            1.0,
        ),
        (
            "certgate_decisions_total{reason=\"revoked\",result=\"unauthenticated\"}",
            1.0,
        ),
        ("certgate_revocations_total{kind=\"session\"}", 1.0),
        ("certgate_check_duration_seconds_count", 5.0),
    ] {
        assert_eq!(s.cg.metric(series), Some(want), "{series}");
    }

    let events = s.cg.audit_events();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["fields"]["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["login", "login_refused", "token", "deny", "revoke"],
        "{events:#?}"
    );
    let field = |i: usize, name: &str| events[i]["fields"][name].as_str().unwrap_or("").to_string();
    let serial = certgate::cert::ClientCert::parse(&s.alice.issued.cert_der)
        .unwrap()
        .serial
        .to_string();
    for i in [0, 2, 3] {
        assert_eq!(field(i, "user"), "alice", "{:#?}", events[i]);
        assert_eq!(field(i, "serial"), serial, "{:#?}", events[i]);
        assert_eq!(field(i, "client"), "127.0.0.1", "{:#?}", events[i]);
    }
    assert!(field(1, "reason").contains("no client certificate"));
    assert_eq!(field(3, "url"), "app.example.test/private/x");
    assert!(field(3, "reason").contains("rule"), "{:#?}", events[3]);
    assert_eq!(field(4, "kind"), "session");
    assert_eq!(
        field(4, "what"),
        field(0, "jti"),
        "the logout names the session"
    );
    let logs = s.cg.logs();
    for secret in [&cookie, &bearer] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a token reached the log");
    }
    assert!(!logs.contains("s3cret"), "a query string reached the log");
}

/// SIGHUP applies a new client CA bundle, users and rules; a broken file keeps everything in
/// force, logs why and raises the failure metric.
#[test]
fn sighup_reloads_users_and_client_ca_and_a_broken_file_keeps_the_old_state() {
    if !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let one = Pki::new(dir.path(), "CA One");
    let two = Pki::new(dir.path(), "CA Two");
    let alice = one.user("alice");
    let bob = two.user("bob");
    let both = dir.path().join("both.pem");
    std::fs::write(&both, format!("{}{}", one.ca.cert_pem, two.ca.cert_pem)).unwrap();
    let config = |bundle: &std::path::Path, users: &[&str]| {
        let mut text = format!(
            "public_url = \"https://auth.example.test\"\ndata_dir = \"data\"\n[client_ca]\nbundle = \"{}\"\n[access]\nallow_unmatched = true\n",
            bundle.display()
        );
        for u in users {
            text.push_str(&format!("[[users]]\nname = \"{u}\"\n"));
            // Two CAs: each user is bound to the one that issues them.
            if bundle == both {
                let ca = if *u == "alice" { "CA One" } else { "CA Two" };
                text.push_str(&format!("ca = \"{ca}\"\n"));
            }
        }
        text
    };
    let cg = Certgate::start(dir.path(), &config(&one.ca_pem, &["alice"]), false);
    let status = |pem: &str| {
        Curl::new(dir.path())
            .header(&format!(
                "X-SSL-Client-Cert: {}",
                percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC)
            ))
            .header("X-Original-URL: https://app.example.test/")
            .get(&cg.http("/verify"))
            .status
    };
    let (a, b) = (&alice.issued.cert_pem, &bob.issued.cert_pem);
    assert_eq!((status(a), status(b)), (200, 401));
    assert_eq!(
        cg.metric("certgate_config_last_reload_successful"),
        Some(1.0)
    );

    cg.reload_with(&config(&dir.path().join("missing.pem"), &["alice", "bob"]));
    wait_until("the failed reload", Duration::from_secs(10), || {
        cg.metric("certgate_config_reloads_total{result=\"failed\"}") == Some(1.0)
    });
    assert_eq!(
        cg.metric("certgate_config_last_reload_successful"),
        Some(0.0)
    );
    assert!(cg.logs().contains("client_ca.bundle"), "{}", cg.logs());
    assert_eq!((status(a), status(b)), (200, 401), "the old state serves");

    cg.reload_with(&config(&both, &["alice", "bob"]));
    wait_until("the good reload", Duration::from_secs(10), || {
        cg.metric("certgate_config_reloads_total{result=\"ok\"}") == Some(1.0)
    });
    assert_eq!(
        cg.metric("certgate_config_last_reload_successful"),
        Some(1.0)
    );
    assert_eq!(
        (status(a), status(b)),
        (200, 200),
        "new CA and user in force"
    );

    cg.reload_with(&config(&both, &["bob"]));
    wait_until("alice removed", Duration::from_secs(10), || {
        status(a) == 403
    });
    assert_eq!(status(b), 200);
}

/// SIGTERM while requests are half sent: every one of them still gets its whole answer, and
/// the process then exits cleanly.
#[test]
fn sigterm_lets_requests_in_flight_finish() {
    if !require("curl") {
        return;
    }
    let mut s = setup_env(LOOPBACK, "", &[]);
    let body = "rd=https%3A%2F%2Flocalhost%2Fbye";
    let (first, rest) = body.split_at(5);
    let mut conns: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", s.cg.http_port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            write!(
                c,
                "POST /logout HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}",
                body.len()
            )
            .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    s.cg.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        s.cg.wait_exit(Duration::from_millis(1)).is_none(),
        "certgate exited with requests in flight:\n{}",
        s.cg.logs()
    );
    for c in &mut conns {
        c.write_all(rest.as_bytes()).unwrap();
    }
    for c in &mut conns {
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 303"),
            "a request in flight was cut: {answer:?}"
        );
        assert!(
            answer.contains("location: https://localhost/bye"),
            "{answer}"
        );
    }
    let status = s.cg.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "certgate did not exit cleanly after SIGTERM: {status:?}\n{}",
        s.cg.logs()
    );
}

/// The shipped systemd unit passes `systemd-analyze verify`, and its ExecStartPre and
/// ExecStart lines, with only the paths changed, start a certgate that serves and reloads.
#[test]
fn the_shipped_systemd_unit_verifies_and_its_commands_run() {
    if !require("systemd-analyze") || !require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Unit CA");
    let port = crate::harness::free_port();
    let metrics = crate::harness::free_port();
    let config = dir.path().join("certgate.toml");
    let state = dir.path().join("state");
    std::fs::write(
        &config,
        format!(
            "public_url = \"https://auth.example.test\"\ndata_dir = \"{}\"\n[listen]\nhttp = \"127.0.0.1:{port}\"\nmetrics = \"127.0.0.1:{metrics}\"\n[client_ca]\nbundle = \"{}\"\n",
            state.display(),
            pki.ca_pem.display()
        ),
    )
    .unwrap();
    let unit = include_str!("../../config/systemd/certgate.service")
        .replace(
            "/usr/local/bin/certgate",
            crate::harness::certgate::binary(),
        )
        .replace("/etc/certgate/certgate.toml", &config.display().to_string())
        .replace("/var/lib/certgate", &state.display().to_string());
    let path = dir.path().join("certgate.service");
    std::fs::write(&path, &unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |key: &str| -> Vec<String> {
        let l = unit
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in the unit"));
        l.split_whitespace().map(String::from).collect()
    };
    let pre = line("ExecStartPre=");
    assert!(Command::new(&pre[0])
        .args(&pre[1..])
        .status()
        .unwrap()
        .success());
    let start = line("ExecStart=");
    let log = dir.path().join("unit.log");
    let mut child = Command::new(&start[0])
        .args(&start[1..])
        .env("CERTGATE_LOG_FORMAT", "json")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    crate::harness::wait_for_port(port, "certgate (systemd unit)", &log);
    let health = Curl::new(dir.path()).get(&format!("http://127.0.0.1:{port}/healthz"));
    assert_eq!(health.status, 200);
    assert!(
        state.join("keys").is_dir(),
        "--data-dir from the unit is used"
    );
    // ExecReload is `kill -HUP $MAINPID`.
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    wait_until("the reload", Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("configuration reloaded")
    });
    let _ = child.kill();
    let _ = child.wait();
}

/// "Log out everywhere" ends the cookie it was sent with, another browser's cookie and a
/// bearer token, all issued before; signing in again right away works; a SIGHUP reload keeps
/// every revocation.
#[test]
fn log_out_everywhere_ends_every_session_and_token_and_survives_a_reload() {
    if !require("curl") {
        return;
    }
    let s = setup_env(LOOPBACK, "", &[]);
    let verify = |h: &str| {
        s.curl()
            .header(h)
            .header("X-Original-URL: https://app.example.test/")
            .get(&s.cg.http("/verify"))
            .status
    };
    let phone = format!("Cookie: __Host-certgate={}", s.session_cookie());
    let laptop = format!("Cookie: __Host-certgate={}", s.session_cookie());
    let script = format!("Authorization: Bearer {}", s.bearer());
    assert_eq!(
        (verify(&phone), verify(&laptop), verify(&script)),
        (200, 200, 200)
    );
    let out = s
        .curl()
        .header(&phone)
        .header("Sec-Fetch-Site: same-origin")
        .post(&s.cg.mtls("/logout"), "everywhere=1");
    assert_eq!(out.status, 200, "{out:?}");
    assert!(out.body.contains("every device"), "{}", out.body);
    assert_eq!(
        (verify(&phone), verify(&laptop), verify(&script)),
        (401, 401, 401)
    );
    assert_eq!(
        s.cg.metric("certgate_revocations_total{kind=\"user\"}"),
        Some(1.0)
    );
    // Signing in again in the same second is not caught by the cut-off.
    let again = format!("Cookie: __Host-certgate={}", s.session_cookie());
    assert_eq!(verify(&again), 200);

    s.cg.signal("HUP");
    wait_until("the reload", Duration::from_secs(10), || {
        s.cg.metric("certgate_config_reloads_total{result=\"ok\"}") == Some(1.0)
    });
    assert_eq!(
        (verify(&phone), verify(&script), verify(&again)),
        (401, 401, 200)
    );
}

/// A log written to a file (journald, docker, a redirect) is plain text: no colour codes.
#[test]
fn logs_to_a_file_carry_no_terminal_colour_codes() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, "");
    assert_eq!(s.as_alice().get(&s.cg.mtls("/auth")).status, 200);
    let logs = s.cg.logs();
    assert!(logs.contains("INFO"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "escape sequences in the log: {logs:?}"
    );
}
