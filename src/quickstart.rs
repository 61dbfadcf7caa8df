//! `certgate serve` without a config file: a demo CA, a `localhost` server certificate and a
//! client certificate for `alice` in `certgate-data/`, created once and reused afterwards,
//! plus an embedded config that goes through the same validation as any file.

use std::fs;
use std::path::{Path, PathBuf};

use crate::ca::{export_p12, Ca, CaError, P12Kind};
use crate::jwt::keys::{create_private_dir, write_private};

#[derive(Debug, thiserror::Error)]
pub enum QuickstartError {
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error(transparent)]
    Ca(#[from] CaError),
}

/// The demo files, as absolute paths for printed commands.
#[derive(Debug)]
pub struct Demo {
    pub data_dir: PathBuf,
    pub ca_pem: PathBuf,
    pub alice_pem: PathBuf,
    pub alice_key: PathBuf,
    pub alice_p12: PathBuf,
    pub p12_password: String,
}

/// Creates (or reuses) the demo files and returns them with the embedded config text.
///
/// # Errors
/// When a file cannot be read or written, naming it.
pub fn prepare(
    data_dir: &Path,
    mtls_port: u16,
    now: i64,
) -> Result<(Demo, String), QuickstartError> {
    create_private_dir(data_dir).map_err(|e| io(data_dir, e))?;
    let data_dir = fs::canonicalize(data_dir).map_err(|e| io(data_dir, e))?;
    let ca = demo_ca(&data_dir, now)?;
    server_cert(&ca, &data_dir, now)?;
    let demo_dir = data_dir.join("demo");
    create_private_dir(&demo_dir).map_err(|e| io(&demo_dir, e))?;
    let demo = Demo {
        ca_pem: data_dir.join("ca.pem"),
        alice_pem: demo_dir.join("alice.pem"),
        alice_key: demo_dir.join("alice.key"),
        alice_p12: demo_dir.join("alice.p12"),
        p12_password: String::new(),
        data_dir,
    };
    let demo = Demo {
        p12_password: alice(&ca, &demo, &demo_dir.join("alice.p12.password"), now)?,
        ..demo
    };
    let config = config(&demo.data_dir, mtls_port);
    Ok((demo, config))
}

fn io(path: &Path, e: std::io::Error) -> QuickstartError {
    QuickstartError::File {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

/// The CA, made on the first start.
fn demo_ca(data_dir: &Path, now: i64) -> Result<Ca, QuickstartError> {
    let p = |name: &str| data_dir.join(name);
    match (read(&p("ca.pem"))?, read(&p("ca.key"))?) {
        (Some(cert), Some(key)) => Ok(Ca::load(&cert, &key)?),
        (None, None) => {
            let ca = Ca::generate("certgate quickstart CA", now)?;
            replace(&p("ca.key"), &ca.key_pem, true)?;
            replace(&p("ca.pem"), &ca.cert_pem, false)?;
            Ok(ca)
        }
        _ => Err(QuickstartError::File {
            path: p("ca.key"),
            problem: "ca.pem and ca.key must both exist or both be absent; move the demo folder away to start afresh".into(),
        }),
    }
}

/// The mTLS listener's certificate for localhost, made when missing.
fn server_cert(ca: &Ca, data_dir: &Path, now: i64) -> Result<(), QuickstartError> {
    let (pem, key) = (data_dir.join("server.pem"), data_dir.join("server.key"));
    if read(&pem)?.is_none() || read(&key)?.is_none() {
        let server = ca.issue_server(&["localhost", "127.0.0.1", "::1"], 397, now)?;
        replace(&key, &server.key_pem, true)?;
        replace(&pem, &server.cert_pem, false)?;
    }
    Ok(())
}

/// alice's certificate, key and PKCS#12 (made when any is missing); returns its password.
fn alice(ca: &Ca, demo: &Demo, pw_file: &Path, now: i64) -> Result<String, QuickstartError> {
    if let Some(pw) = read(pw_file)? {
        if demo.alice_p12.exists() && demo.alice_pem.exists() && demo.alice_key.exists() {
            return Ok(pw.trim().to_string());
        }
    }
    let alice = ca.issue_client("alice", 365, now)?;
    let password = crate::jwt::random_id().ok_or_else(|| QuickstartError::File {
        path: pw_file.to_path_buf(),
        problem: "the system random number generator failed".into(),
    })?;
    let p12 = export_p12(
        "alice",
        &alice.key_der,
        &alice.cert_der,
        &ca.cert_der,
        &password,
        P12Kind::Modern,
    )?;
    replace(&demo.alice_key, &alice.key_pem, true)?;
    replace(&demo.alice_pem, &alice.cert_pem, false)?;
    replace_bytes(&demo.alice_p12, &p12, true)?;
    replace(pw_file, &password, true)?;
    Ok(password)
}

/// The embedded configuration; it goes through the same validation as a file.
fn config(data_dir: &Path, mtls_port: u16) -> String {
    format!(
        r#"# certgate quickstart (embedded defaults; see config/certgate.example.toml)
public_url = "https://localhost:{mtls_port}"
data_dir = "{dir}"

[listen]
http = "127.0.0.1:9180"
mtls = "127.0.0.1:{mtls_port}"
metrics = "127.0.0.1:9190"  # Prometheus, for this machine only; "" turns it off

[tls]
cert = "server.pem"
key = "server.key"

[client_ca]
bundle = "ca.pem"

[proxy]
trusted = []            # certgate terminates mTLS itself here; no proxy may forward certificates

[identity]
allow_unlisted = true   # every certificate of the demo CA may sign in

[session]
allowed_redirect_hosts = ["localhost", "127.0.0.1"]

[access]
allow_unmatched = true  # no [[rules]] here: every signed-in user may pass the check
"#,
        dir = data_dir
            .display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\""),
    )
}

fn read(path: &Path) -> Result<Option<String>, QuickstartError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(QuickstartError::File {
            path: path.to_path_buf(),
            problem: e.to_string(),
        }),
    }
}

fn replace(path: &Path, text: &str, private: bool) -> Result<(), QuickstartError> {
    replace_bytes(path, text.as_bytes(), private)
}

/// Writes a file (0600 when it holds a secret), replacing a stale one.
fn replace_bytes(path: &Path, bytes: &[u8], private: bool) -> Result<(), QuickstartError> {
    let fail = |e: std::io::Error| QuickstartError::File {
        path: path.to_path_buf(),
        problem: e.to_string(),
    };
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    if private {
        write_private(path, bytes).map_err(fail)
    } else {
        fs::write(path, bytes).map_err(fail)
    }
}

/// The text printed at start: where things are, and curl commands that work as printed.
pub fn banner(demo: &Demo, listen: &crate::config::Listen, mtls_url: &str) -> String {
    let http = listen.http;
    let (metrics_line, metrics_step) = metrics_lines(listen);
    let ca = demo.ca_pem.display();
    let cert = format!(
        "--cert {} --key {}",
        demo.alice_pem.display(),
        demo.alice_key.display()
    );
    format!(
        r#"
certgate quickstart: demo data in {dir} (reused on the next start)

  forward-auth check (plain HTTP):            http://{http}/verify
  certificate login (certgate's own mTLS):    {mtls_url}/auth
{metrics_line}  demo user alice:  {alice_pem}
                    {alice_p12}  (for browsers and phones; password: {pw})

Try it from another terminal:

  # 1. sign in with alice's certificate: a session cookie, saved to certgate-cookies.txt
  curl -sSi --cacert {ca} {cert} -c certgate-cookies.txt {mtls_url}/auth

  # 2. trade the certificate for a bearer token (for scripts and WebSocket clients)
  TOKEN=$(curl -sS --cacert {ca} {cert} -X POST {mtls_url}/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

  # 3. the forward-auth check with that token: 200 and Remote-User: alice
  curl -sSi -H "Authorization: Bearer $TOKEN" http://{http}/verify

  # 4. without credentials: 401
  curl -sSi http://{http}/verify

  # 5. with the session cookie from step 1: 200
  curl -sSi --cacert {ca} -b certgate-cookies.txt {mtls_url}/verify
{metrics_step}"#,
        dir = demo.data_dir.display(),
        alice_pem = demo.alice_pem.display(),
        alice_p12 = demo.alice_p12.display(),
        pw = demo.p12_password,
    )
}

/// The metrics listener's line and try-it step, or nothing when it is off.
fn metrics_lines(listen: &crate::config::Listen) -> (String, String) {
    match listen.metrics {
        Some(addr) => (
            format!("  metrics (Prometheus, operator only):        http://{addr}/metrics\n"),
            format!(
                "\n  # 6. the operator's metrics (never through the proxy: a listener of its own)\n  curl -sS http://{addr}/metrics\n"
            ),
        ),
        None => (String::new(), String::new()),
    }
}
