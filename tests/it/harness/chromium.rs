//! Headless Chromium (Debian `chromium`) driven over the DevTools protocol, with a client
//! certificate in its own NSS database (`pk12util`, from `libnss3-tools`). The certificate is
//! chosen without a prompt by the `AutoSelectCertificateForUrls` policy that
//! `scripts/install-test-deps.sh` installs for `https://[*.]example.com:*` only.
//!
//! A small client over the WebSocket is all the tests need: navigate, read the page, click,
//! and take screenshots. The pages themselves need no JavaScript; the driver uses it to look.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use super::{dump_log_if_panicking, Restarting};

pub const POLICY: &str = "/etc/chromium/policies/managed/certgate-tests.json";

pub struct Chromium {
    child: Child,
    ws: WebSocket<Restarting<TcpStream>>,
    session: String,
    next_id: u64,
    log: PathBuf,
    _home: tempfile::TempDir,
}

/// A client identity for the browser: a PKCS#12 file and its password.
pub struct Identity<'a> {
    pub p12: &'a Path,
    pub password: &'a str,
}

impl Chromium {
    /// Starts a fresh browser profile, trusting `ca` for servers and holding `identity`.
    /// Host names under `example.com` resolve to 127.0.0.1.
    pub fn start(ca: &Path, identity: Option<Identity<'_>>) -> Self {
        let home = tempfile::tempdir().unwrap();
        let nssdb = home.path().join(".pki/nssdb");
        std::fs::create_dir_all(&nssdb).unwrap();
        let db = format!("sql:{}", nssdb.display());
        run("certutil", &["-N", "-d", &db, "--empty-password"]);
        run(
            "certutil",
            &[
                "-A",
                "-n",
                "test-ca",
                "-t",
                "C,,",
                "-i",
                &ca.display().to_string(),
                "-d",
                &db,
            ],
        );
        if let Some(id) = identity {
            let p12 = id.p12.display().to_string();
            run("pk12util", &["-i", &p12, "-d", &db, "-W", id.password]);
        }
        let profile = home.path().join("profile");
        let log = home.path().join("chromium.log");
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--remote-debugging-port=0",
                "--window-size=1000,900",
                "--host-resolver-rules=MAP *.example.com 127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("chromium starts");
        // Chromium writes its DevTools port and browser path here once it listens.
        let active = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&active) {
                let mut lines = text.lines();
                if let (Some(p), Some(path)) = (lines.next(), lines.next()) {
                    break (p.parse::<u16>().unwrap(), path.to_string());
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (ws, _) =
            tungstenite::client::client(format!("ws://127.0.0.1:{port}{path}"), Restarting(stream))
                .unwrap();
        let mut me = Self {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            log,
            _home: home,
        };
        let target = me.call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().unwrap().to_string();
        let attached = me.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        me.session = attached["sessionId"].as_str().unwrap().to_string();
        me.call("Page.enable", json!({}));
        me
    }

    /// One DevTools command; its result (events in between are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params) {
            Ok(v) => v,
            Err(e) => panic!("{method}: {e}"),
        }
    }

    /// [`Self::call`], with the protocol's error as a value (e.g. a page mid-navigation).
    pub fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        if let Err(e) = self.ws.send(Message::text(msg.to_string())) {
            panic!("{method}: sending to DevTools: {e}");
        }
        loop {
            let reply = match self.ws.read() {
                Ok(reply) => reply,
                Err(e) => panic!("{method}: reading DevTools reply: {e}"),
            };
            let Message::Text(text) = reply else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == json!(id) {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    /// Opens `url` and waits until the page (after any redirects) has loaded.
    pub fn goto(&mut self, url: &str) {
        let r = self.call("Page.navigate", json!({"url": url}));
        assert!(r.get("errorText").is_none(), "navigating to {url}: {r}");
        self.wait_loaded(None);
    }

    /// Waits until the document is complete (and, if given, no longer at `away_from`).
    pub fn wait_loaded(&mut self, away_from: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Mid-redirect the page can vanish under the question ("Inspected target
            // navigated or closed"): ask again.
            let state = self
                .try_call(
                    "Runtime.evaluate",
                    json!({"expression": "document.readyState + ' ' + location.href", "returnByValue": true}),
                )
                .map(|r| r["result"]["value"].clone())
                .unwrap_or_default();
            let state = state.as_str().unwrap_or("").to_string();
            let moved = away_from.is_none_or(|from| !state.ends_with(from));
            if state.starts_with("complete ") && moved {
                return;
            }
            assert!(Instant::now() < deadline, "page never loaded: {state}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    pub fn url(&mut self) -> String {
        self.eval("location.href")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn text(&mut self) -> String {
        self.eval("document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Clicks the element matching `selector` and waits for the page it leads to.
    pub fn click(&mut self, selector: &str) {
        let before = self.url();
        // A mark on the old document: gone once the next one has replaced it (the URL may
        // stay the same when a form posts to itself).
        let found = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; window.__certgateOld = true; e.click(); return true; }})()"
        ));
        assert_eq!(found, json!(true), "no {selector} on {before}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let still_old = |b: &mut Self| {
            b.try_call(
                "Runtime.evaluate",
                json!({"expression": "window.__certgateOld === true", "returnByValue": true}),
            )
            .map_or(true, |r| r["result"]["value"] == json!(true))
        };
        while still_old(self) {
            assert!(
                Instant::now() < deadline,
                "clicking {selector} on {before} led nowhere"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.wait_loaded(None);
    }

    /// Sends these headers with every request from now on (what a proxy would add).
    pub fn extra_headers(&mut self, headers: Value) {
        self.call("Network.enable", json!({}));
        self.call("Network.setExtraHTTPHeaders", json!({"headers": headers}));
    }

    /// Light or dark, as the page's `prefers-color-scheme` sees it.
    pub fn color_scheme(&mut self, scheme: &str) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        );
    }

    /// A phone-sized viewport (390×844 CSS pixels, as an iPhone 14), or back to the window.
    pub fn phone(&mut self, on: bool) {
        if on {
            self.call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
            );
        } else {
            self.call("Emulation.clearDeviceMetricsOverride", json!({}));
        }
    }

    /// Saves a PNG of the page under `target/screenshots/` and returns its path.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        dump_log_if_panicking("chromium", &self.log);
    }
}

fn run(tool: &str, args: &[&str]) {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
