//! A real Matrix Synapse (PyPI `matrix-synapse` with its `oidc` extra, from the venv that
//! `scripts/install-test-deps.sh` makes under `target/test-tools/synapse-VERSION`, pinned by
//! `synapse.txt` beside this file): a homeserver with its own directory (SQLite database,
//! media store, a signing key made here), the client API on a free loopback port, no
//! federation and nothing sent anywhere (`trusted_key_servers: []`, `report_stats: false`).
//! It answers about a second after start; killed on drop, its output printed if the test failed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;

use super::{dump_log_if_panicking, missing};

/// The release the venv holds.
pub const VERSION: &str = "1.163.2";
/// The Matrix server name: user IDs are `@name:localhost`.
pub const SERVER_NAME: &str = "localhost";

/// How long Synapse may take to answer: the first start after an install compiles and reads
/// every module.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The venv `scripts/install-test-deps.sh` installs Synapse into.
pub fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-tools")
        .join(format!("synapse-{VERSION}"))
}

/// Whether Synapse is installed (the install step leaves `.installed` last). Like
/// [`super::require`]: locally a test skips without it, under `CI=true` it fails.
pub fn require() -> bool {
    let venv = venv();
    (venv.join(".installed").is_file() && venv.join("bin/python").is_file())
        || missing(&format!("Matrix Synapse {VERSION} ({})", venv.display()))
}

pub struct Synapse {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    out: PathBuf,
}

impl Synapse {
    /// `homeserver.yaml` for `port` in `dir`, with `extra` (YAML, top level: `oidc_providers`
    /// and the like) appended.
    pub fn config(dir: &Path, port: u16, extra: &str) -> String {
        let d = dir.display();
        format!(
            r#"# Written by tests/it/harness/synapse.rs
server_name: "{SERVER_NAME}"
public_baseurl: "http://127.0.0.1:{port}/"
pid_file: "{d}/homeserver.pid"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "{d}/homeserver.db"
media_store_path: "{d}/media_store"
signing_key_path: "{d}/signing.key"
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
macaroon_secret_key: "test-macaroon-{port}-{nanos}"
form_secret: "test-form-{port}-{nanos}"
{extra}
"#,
            nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
        )
    }

    /// Starts Synapse on `127.0.0.1:port` with [`Self::config`] in `dir/synapse`, trusting
    /// `ca` (a PEM bundle, through `SSL_CERT_FILE`) for the https servers it calls, and waits
    /// until its client API answers.
    pub fn start(dir: &Path, port: u16, extra: &str, ca: &Path) -> Self {
        let dir = dir.join("synapse");
        std::fs::create_dir_all(&dir).unwrap();
        // A signing key (`ed25519 <key id> <seed>`), as `--generate-keys` would write it.
        let mut seed = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut seed)
            .unwrap();
        std::fs::write(
            dir.join("signing.key"),
            format!(
                "ed25519 a_test {}\n",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(seed)
            ),
        )
        .unwrap();
        let conf = dir.join("homeserver.yaml");
        std::fs::write(&conf, Self::config(&dir, port, extra)).unwrap();
        let out = dir.join("synapse.log");
        let child = Command::new(venv().join("bin/python"))
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&conf)
            .current_dir(&dir)
            .env("SSL_CERT_FILE", ca)
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&out).unwrap(),
            ))
            .spawn()
            .expect("synapse starts");
        let mut me = Self {
            child,
            port,
            dir,
            out,
        };
        me.wait_until_answering();
        me
    }

    fn wait_until_answering(&mut self) {
        let url = self.url("/health");
        let (out, dir) = (self.out.clone(), self.dir.clone());
        super::wait_healthy(
            "Synapse",
            &mut self.child,
            &url,
            &dir,
            START_TIMEOUT,
            &|| std::fs::read_to_string(&out).unwrap_or_default(),
        );
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What it printed (its log goes to stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        dump_log_if_panicking("synapse", &self.out);
    }
}
