//! A real Home Assistant (PyPI `homeassistant` 2024.3.3 on Python 3.11, from the venv that
//! `scripts/install-test-deps.sh` makes under `target/test-tools/`), onboarded by its own API.
//!
//! Each [`HomeAssistant`] has its own configuration directory in a tempdir, a free loopback
//! port, and the trimmed integration set of `home_assistant.components` (no `default_config:`,
//! which pip-installs at start and needs the network). It runs with `--skip-pip`, so nothing is
//! installed at run time and nothing leaves the machine. It answers about 1 s after start and
//! takes about 150 MB; the process group is killed (SIGKILL: a SIGTERM shutdown takes 2.5 s and
//! the directory is thrown away anyway) on drop, and its log is printed if the test failed.
//!
//! Its `http:` block is the one a Home Assistant behind a proxy on the same machine has:
//! `use_x_forwarded_for` with `trusted_proxies: [127.0.0.1, ::1]`, and `ip_ban_enabled` with
//! `login_attempts_threshold: 3`. So a request from 127.0.0.1 carrying `X-Forwarded-For` counts
//! as coming from that address, and **every 401 a test provokes from 127.0.0.1 without that
//! header counts toward banning 127.0.0.1** (Home Assistant answers 403 to a banned address
//! until its `ip_bans.yaml` is edited and it restarts). Only a successful login flow or
//! WebSocket authentication from the same address resets the count; a good bearer token does
//! not. A failed login from an address also makes Home Assistant look up its name
//! (`gethostbyaddr`) through the system resolver.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use super::curl::{Curl, Response};
use super::{dump_log_if_panicking, free_port, missing, Restarting};

/// The release most tests run (`target/test-tools/ha-VERSION`): the newest for Python 3.11.
pub const VERSION: &str = "2024.3.3";
/// The newest release that runs here (pyenv's Python 3.13.0); the certgate integration's tests
/// run on both, since the auth internals it uses may differ.
pub const NEWER: &str = "2025.4.4";
/// The integrations configured, one a line; `scripts/install-test-deps.sh` installs their
/// requirements from the same file.
pub const COMPONENTS: &str = include_str!("home_assistant.components");
/// The owner made by onboarding.
pub const OWNER: &str = "owner";
pub const OWNER_PASSWORD: &str = "owner-password-1";
pub const OWNER_NAME: &str = "Test Owner";

/// How long Home Assistant may take to answer: the first start after an install reads every
/// module from disk.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The venv `scripts/install-test-deps.sh` installs Home Assistant into.
pub fn venv_of(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-tools")
        .join(format!("ha-{version}"))
}

/// Whether Home Assistant is installed (the install step leaves `.installed` last). Like
/// [`super::require`]: locally a test skips without it, under `CI=true` it fails.
pub fn require() -> bool {
    require_version(VERSION)
}

/// [`require`] for `version`.
pub fn require_version(version: &str) -> bool {
    let venv = venv_of(version);
    (venv.join(".installed").is_file() && venv.join("bin/hass").is_file())
        || missing(&format!("Home Assistant {version} ({})", venv.display()))
}

/// `configuration.yaml` for `port`: every integration in [`COMPONENTS`], `http:` filled in.
pub fn configuration_yaml(port: u16) -> String {
    let mut yaml = String::from("# Written by tests/it/harness/home_assistant.rs\n");
    for component in COMPONENTS
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
    {
        if component == "http" {
            yaml.push_str(&format!(
                "http:\n  server_host: 127.0.0.1\n  server_port: {port}\n  \
                 use_x_forwarded_for: true\n  trusted_proxies:\n    - 127.0.0.1\n    - \"::1\"\n  \
                 ip_ban_enabled: true\n  login_attempts_threshold: 3\n"
            ));
        } else {
            yaml.push_str(&format!("{component}:\n"));
        }
    }
    yaml
}

pub struct HomeAssistant {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    out: PathBuf,
    client_id: String,
    access_token: String,
    refresh_token: String,
}

impl HomeAssistant {
    /// Starts Home Assistant, waits until it answers, and onboards it by API: the owner
    /// ([`OWNER`]), a token pair for [`Self::client_id`], then the remaining steps.
    pub fn start() -> Self {
        Self::start_with(free_port(), "")
    }

    /// [`Self::start`] on `port`, with `extra` added to `configuration.yaml` and this
    /// repository's integration (`integrations/home-assistant/custom_components/certgate`)
    /// copied into its configuration directory, as an operator installs it.
    pub fn start_with(port: u16, extra: &str) -> Self {
        Self::start_version(VERSION, port, extra)
    }

    /// [`Self::start_with`] for the release `version` (its venv from [`venv_of`]).
    pub fn start_version(version: &str, port: u16, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("configuration.yaml"),
            format!("{}{extra}", configuration_yaml(port)),
        )
        .unwrap();
        if !extra.is_empty() {
            let from = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("integrations/home-assistant/custom_components/certgate");
            let to = config.join("custom_components/certgate");
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(&from).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_file() {
                    std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
                }
            }
        }
        let out = dir.path().join("hass.out");
        let log = std::fs::File::create(&out).unwrap();
        let began = Instant::now();
        let child = Command::new(venv_of(version).join("bin/hass"))
            .arg("-c")
            .arg(&config)
            .arg("--skip-pip")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("hass starts");
        let mut me = Self {
            child: Some(child),
            port,
            client_id: format!("http://127.0.0.1:{port}/"),
            dir,
            out,
            access_token: String::new(),
            refresh_token: String::new(),
        };
        me.wait_until_answering(began);
        let answered = began.elapsed();
        me.onboard();
        eprintln!(
            "home-assistant {version}: answered {} ms after start, onboarded at {} ms",
            answered.as_millis(),
            began.elapsed().as_millis()
        );
        me
    }

    fn wait_until_answering(&mut self, began: Instant) {
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "Home Assistant exited ({status}) before it answered; its output:\n{}",
                    self.log()
                );
            }
            let log = self.log();
            if log.contains("Activating recovery mode") {
                panic!(
                    "Home Assistant started in recovery mode (a requirement missing from the \
                     venv? run scripts/install-test-deps.sh); its output:\n{log}"
                );
            }
            // Onboarding's status answers without a token once the integrations are set up.
            if let Ok(r) = self.curl().try_get(&self.url_of("/api/onboarding")) {
                if r.status == 200 {
                    return;
                }
            }
            if began.elapsed() > START_TIMEOUT {
                panic!(
                    "Home Assistant did not answer on port {} within {} s; its output:\n{log}",
                    self.port,
                    START_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn onboard(&mut self) {
        let user = self.post_json(
            "/api/onboarding/users",
            None,
            &json!({
                "client_id": self.client_id,
                "name": OWNER_NAME,
                "username": OWNER,
                "password": OWNER_PASSWORD,
                "language": "en",
            }),
        );
        assert_eq!(user.status, 200, "onboarding the owner: {user:?}");
        let code = json_of(&user)["auth_code"].as_str().unwrap().to_string();
        let tokens = self.curl().post(
            &self.url_of("/auth/token"),
            &form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &self.client_id),
            ]),
        );
        assert_eq!(tokens.status, 200, "the owner's first tokens: {tokens:?}");
        let tokens = json_of(&tokens);
        self.access_token = tokens["access_token"].as_str().unwrap().to_string();
        self.refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

        let bearer = self.access_token.clone();
        // 2024.3 records core_config done, then starts the config flows of the integrations it
        // offers new users (google_translate, met, radio_browser, shopping_list). Their
        // libraries are not installed, so it answers 500 and logs an error; that is what keeps
        // them from reaching the network (met.no, radio-browser.info) in tests.
        let core = self.post_json("/api/onboarding/core_config", Some(&bearer), &json!({}));
        assert!(
            core.status == 200 || core.status == 500,
            "onboarding core_config: {core:?}"
        );
        let analytics = self.post_json("/api/onboarding/analytics", Some(&bearer), &json!({}));
        assert_eq!(analytics.status, 200, "onboarding analytics: {analytics:?}");
        let integration = self.post_json(
            "/api/onboarding/integration",
            Some(&bearer),
            &json!({
                "client_id": self.client_id,
                "redirect_uri": format!("{}?auth_callback=1", self.client_id),
            }),
        );
        assert_eq!(
            integration.status, 200,
            "onboarding integration: {integration:?}"
        );

        let steps = self.curl().get(&self.url_of("/api/onboarding"));
        let steps = json_of(&steps);
        let steps = steps.as_array().unwrap();
        assert!(
            steps.iter().all(|s| s["done"] == json!(true)),
            "onboarding left steps undone: {steps:?}"
        );
    }

    /// `http://127.0.0.1:PORT`, where Home Assistant listens (no proxy in between).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The owner's access token (valid 30 minutes) from onboarding.
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The owner's refresh token from onboarding, for [`Self::client_id`].
    pub fn refresh_token(&self) -> &str {
        &self.refresh_token
    }

    /// The OAuth client id the tokens were issued to: `http://127.0.0.1:PORT/` (IndieAuth: a
    /// client id is a URL, and a redirect URI must be on its host).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Its configuration directory (`configuration.yaml`, `.storage/`, `ip_bans.yaml`).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// What it printed: the same lines as `home-assistant.log` in [`Self::config_dir`], plus
    /// anything printed before logging was set up (a crash at import).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// `ip_bans.yaml`, which Home Assistant writes at the first ban.
    pub fn ip_bans(&self) -> Option<String> {
        std::fs::read_to_string(self.config_dir().join("ip_bans.yaml")).ok()
    }

    /// A curl builder whose scratch files go to this instance's tempdir.
    pub fn curl(&self) -> Curl {
        Curl::new(self.dir.path())
    }

    /// POSTs `body` as JSON to `path`, with a bearer token if given.
    pub fn post_json(&self, path: &str, bearer: Option<&str>, body: &Value) -> Response {
        let mut curl = self.curl().header("Content-Type: application/json");
        if let Some(token) = bearer {
            curl = curl.header(&format!("Authorization: Bearer {token}"));
        }
        curl.post(&self.url_of(path), &body.to_string())
    }

    /// `POST /auth/token` with `grant_type=refresh_token`: the new access token, or the answer.
    pub fn refresh(&self, refresh_token: &str) -> Result<String, Response> {
        let r = self.curl().post(
            &self.url_of("/auth/token"),
            &form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", &self.client_id),
            ]),
        );
        match r.status {
            200 => Ok(json_of(&r)["access_token"].as_str().unwrap().to_string()),
            _ => Err(r),
        }
    }

    /// A login with Home Assistant's own provider, as its login page does it: starts a flow
    /// (`POST /auth/login_flow`) and sends the credentials to it, each request with `headers`
    /// (e.g. `X-Forwarded-For: …`: the flow is bound to the client address). The last answer:
    /// the start's when it was refused (403 once the address is banned), otherwise the step's,
    /// whose JSON `type` is `create_entry` (with the code in `result`) or `form` (with
    /// `errors.base == "invalid_auth"`, which counted toward a ban).
    pub fn login(&self, username: &str, password: &str, headers: &[&str]) -> Response {
        let with_headers = || headers.iter().fold(self.curl(), |curl, h| curl.header(h));
        self.login_through(&with_headers, &self.url(), username, password)
    }

    /// [`Self::login`] through a proxy: each request from a fresh `curl()` to `base`.
    pub fn login_through(
        &self,
        curl: &dyn Fn() -> Curl,
        base: &str,
        username: &str,
        password: &str,
    ) -> Response {
        let with_headers = |c: Curl| c.header("Content-Type: application/json");
        let start = with_headers(curl()).post(
            &format!("{base}/auth/login_flow"),
            &json!({
                "client_id": self.client_id,
                "handler": ["homeassistant", null],
                "redirect_uri": format!("{}?auth_callback=1", self.client_id),
            })
            .to_string(),
        );
        if start.status != 200 {
            return start;
        }
        let flow_id = json_of(&start)["flow_id"].as_str().unwrap().to_string();
        with_headers(curl()).post(
            &format!("{base}/auth/login_flow/{flow_id}"),
            &json!({"client_id": self.client_id, "username": username, "password": password})
                .to_string(),
        )
    }

    /// Opens `/api/websocket` and authenticates with `token` (see [`HaSocket::connect`]).
    pub fn websocket(&self, token: &str) -> HaSocket {
        HaSocket::connect(self.port, token)
    }

    /// Whether `/api/websocket` answers `auth_ok` to `token` (`false`: `auth_invalid`).
    pub fn websocket_auth(&self, token: &str) -> bool {
        self.websocket(token).auth_ok
    }
}

impl Drop for HomeAssistant {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The group: hass and anything it started (it runs ffmpeg and the like on demand).
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        dump_log_if_panicking("home-assistant", &self.out);
    }
}

/// Home Assistant's WebSocket API after its authentication phase.
pub struct HaSocket {
    ws: WebSocket<Restarting<TcpStream>>,
    /// `auth_ok` came back (otherwise `auth_invalid`, and Home Assistant closes the socket).
    pub auth_ok: bool,
    /// The server's answer to the authentication message.
    pub auth_reply: Value,
    next_id: u64,
}

impl HaSocket {
    /// Connects to `ws://127.0.0.1:PORT/api/websocket`, reads `auth_required`, sends
    /// `{"type":"auth","access_token":TOKEN}` and reads the verdict.
    pub fn connect(port: u16, token: &str) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (ws, _) = tungstenite::client::client(
            format!("ws://127.0.0.1:{port}/api/websocket"),
            Restarting(stream),
        )
        .expect("WebSocket handshake with Home Assistant");
        let mut me = Self {
            ws,
            auth_ok: false,
            auth_reply: Value::Null,
            next_id: 0,
        };
        let hello = me.read();
        assert_eq!(hello["type"], "auth_required", "first message: {hello}");
        me.send(&json!({"type": "auth", "access_token": token}));
        me.auth_reply = me.read();
        me.auth_ok = match me.auth_reply["type"].as_str() {
            Some("auth_ok") => true,
            Some("auth_invalid") => false,
            _ => panic!("unexpected answer to auth: {}", me.auth_reply),
        };
        me
    }

    /// Sends one command (an `id` is added) and returns its `result` message.
    pub fn command(&mut self, mut message: Value) -> Value {
        assert!(self.auth_ok, "the socket is not authenticated");
        self.next_id += 1;
        message["id"] = json!(self.next_id);
        self.send(&message);
        loop {
            let reply = self.read();
            if reply["id"] == json!(self.next_id) {
                return reply;
            }
        }
    }

    /// How long until Home Assistant closes this socket (reading whatever comes before),
    /// or `None` if it is still open after the stream's read timeout (20 s).
    pub fn closed_after(&mut self) -> Option<Duration> {
        let began = Instant::now();
        loop {
            match self.ws.read() {
                Ok(Message::Close(_)) => return Some(began.elapsed()),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                Err(_) => return Some(began.elapsed()),
            }
        }
    }

    fn send(&mut self, message: &Value) {
        self.ws
            .send(Message::text(message.to_string()))
            .expect("send on Home Assistant's WebSocket");
    }

    /// The next JSON message (one a frame: this client does not ask for coalesced messages).
    fn read(&mut self) -> Value {
        loop {
            match self
                .ws
                .read()
                .expect("read from Home Assistant's WebSocket")
            {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Close(frame) => panic!("Home Assistant closed the WebSocket: {frame:?}"),
                _ => continue,
            }
        }
    }
}

pub fn json_of(r: &Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}
