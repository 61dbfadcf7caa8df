//! A real JupyterHub (PyPI `jupyterhub` with `oauthenticator`, from the venv that
//! `scripts/install-test-deps.sh` makes under `target/test-tools/jupyterhub-VERSION`, pinned by
//! `jupyterhub.txt` beside this file) and the proxy it starts in front of itself (npm
//! `configurable-http-proxy`, under `target/test-tools/chp`, run by the machine's Node.js):
//! three free loopback ports (the proxy, the hub, the proxy's API), its SQLite database and
//! cookie secret in the test's directory. No notebook server is ever started: `default_url`
//! is the hub's home page. On drop the proxy (a session of its own, so not in the hub's process
//! group: found by its pid file) and the hub's process group are killed; the output is printed
//! if the test failed.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{dump_log_if_panicking, free_port, missing};

/// The release the venv holds.
pub const VERSION: &str = "6.1.1";

/// How long JupyterHub may take to answer: the first start after an install compiles and reads
/// every module.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools")
}

/// The venv `scripts/install-test-deps.sh` installs JupyterHub into.
pub fn venv() -> PathBuf {
    tools().join(format!("jupyterhub-{VERSION}"))
}

/// configurable-http-proxy, as the install step leaves it.
pub fn proxy() -> PathBuf {
    tools().join("chp/node_modules/.bin/configurable-http-proxy")
}

/// Whether JupyterHub and its proxy are installed (each install step leaves `.installed`
/// last). Like [`super::require`]: locally a test skips without them, under `CI=true` it fails.
pub fn require() -> bool {
    if !super::require("node") {
        return false;
    }
    let venv = venv();
    if !(venv.join(".installed").is_file() && venv.join("bin/jupyterhub").is_file()) {
        return missing(&format!("JupyterHub {VERSION} ({})", venv.display()));
    }
    (tools().join("chp/.installed").is_file() && proxy().is_file())
        || missing(&format!(
            "npm configurable-http-proxy ({})",
            proxy().display()
        ))
}

pub struct JupyterHub {
    child: Option<Child>,
    /// The proxy's port: where people open JupyterHub.
    pub port: u16,
    dir: PathBuf,
    out: PathBuf,
}

impl JupyterHub {
    /// Starts JupyterHub (its proxy on `127.0.0.1:port`) with `jupyterhub_config.py` in
    /// `dir/jupyterhub`: the listeners, database and proxy set here, then `extra` (the
    /// authenticator's settings, Python). Waits until the hub answers through the proxy.
    pub fn start(dir: &Path, port: u16, extra: &str) -> Self {
        let dir = dir.join("jupyterhub");
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let config = format!(
            "# Written by tests/it/harness/jupyterhub.rs\n\
             c.JupyterHub.bind_url = \"http://127.0.0.1:{port}\"\n\
             c.JupyterHub.hub_bind_url = \"http://127.0.0.1:{hub}\"\n\
             c.ConfigurableHTTPProxy.api_url = \"http://127.0.0.1:{api}\"\n\
             c.ConfigurableHTTPProxy.command = [\"{proxy}\"]\n\
             c.ConfigurableHTTPProxy.pid_file = \"{d}/jupyterhub-proxy.pid\"\n\
             c.JupyterHub.db_url = \"sqlite:///{d}/jupyterhub.sqlite\"\n\
             c.JupyterHub.cookie_secret_file = \"{d}/jupyterhub_cookie_secret\"\n\
             c.JupyterHub.default_url = \"/hub/home\"\n\
             c.JupyterHub.log_level = \"DEBUG\"\n{extra}\n",
            hub = free_port(),
            api = free_port(),
            proxy = proxy().display(),
        );
        let conf = dir.join("jupyterhub_config.py");
        std::fs::write(&conf, config).unwrap();
        // The key that encrypts auth_state (the tokens) in the database: 32 random bytes, hex.
        let mut key = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut key)
            .unwrap();
        let key: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let out = dir.join("jupyterhub.log");
        let child = Command::new(venv().join("bin/jupyterhub"))
            .arg("-f")
            .arg(&conf)
            .current_dir(&dir)
            .env("JUPYTERHUB_CRYPT_KEY", key)
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .process_group(0)
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&out).unwrap(),
            ))
            .spawn()
            .expect("jupyterhub starts");
        let mut me = Self {
            child: Some(child),
            port,
            dir,
            out,
        };
        me.wait_until_answering();
        // What drop needs to stop the proxy (otherwise left running after the test).
        assert!(
            me.dir.join("jupyterhub-proxy.pid").is_file(),
            "JupyterHub wrote no proxy pid file; its output:\n{}",
            me.log()
        );
        me
    }

    fn wait_until_answering(&mut self) {
        let url = self.url("/hub/health");
        let (out, dir) = (self.out.clone(), self.dir.clone());
        super::wait_healthy(
            "JupyterHub",
            self.child.as_mut().unwrap(),
            &url,
            &dir,
            START_TIMEOUT,
            &|| std::fs::read_to_string(&out).unwrap_or_default(),
        );
    }

    /// `http://127.0.0.1:PORT{path}` (through the proxy).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What the hub and the proxy printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for JupyterHub {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The proxy first: the hub starts it in a session of its own and, killed, cannot
            // stop it. Its pid file is there once the hub has answered.
            if let Some(pid) = std::fs::read_to_string(self.dir.join("jupyterhub-proxy.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
            {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            // Then the hub's group (anything else it started).
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        dump_log_if_panicking("jupyterhub", &self.out);
    }
}
