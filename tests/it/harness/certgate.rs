//! A real certgate process, started from the test binary's sibling executable.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{dump_log_if_panicking, free_port, wait_for_port};

/// The head of a config for a certgate with its own mTLS listener on `localhost`: `public_url`
/// there, `data_dir`, the listener's server certificate and the client CA bundle. The
/// `[client_ca]` table is left open for more of its keys.
pub fn mtls_config(server: &super::pki::CertFiles, bundle: &Path) -> String {
    format!(
        "public_url = \"https://localhost:{{MTLS_PORT}}\"\ndata_dir = \"data\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n[client_ca]\nbundle = \"{}\"\n",
        server.cert.display(),
        server.key.display(),
        bundle.display()
    )
}

pub struct Certgate {
    child: Child,
    pub http_port: u16,
    pub mtls_port: Option<u16>,
    /// The operator's listener (`listen.metrics`): every certgate gets a free port of its own.
    pub metrics_port: u16,
    pub log: PathBuf,
    pub dir: PathBuf,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_certgate")
}

/// `certgate ARGS` run in `dir` without `CERTGATE_CONFIG` from the environment: its exit code
/// and what it printed (stdout, then stderr).
pub fn run<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S]) -> (i32, String) {
    let out = std::process::Command::new(binary())
        .args(args)
        .current_dir(dir)
        .env_remove("CERTGATE_CONFIG")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

impl Certgate {
    /// Starts `certgate serve --config` with a config whose `listen` section the harness fills in.
    /// `body` is the rest of the TOML file.
    pub fn start(dir: &Path, body: &str, with_mtls: bool) -> Self {
        Self::start_env(dir, body, with_mtls, &[])
    }

    /// [`Self::start`] with extra environment variables (e.g. `CERTGATE_LOG_FORMAT=json`).
    pub fn start_env(dir: &Path, body: &str, with_mtls: bool, env: &[(&str, &str)]) -> Self {
        Self::start_with(dir, body, with_mtls, env, "")
    }

    /// [`Self::start_env`] with more `[listen]` keys (`extra_listen`, TOML lines).
    pub fn start_with(
        dir: &Path,
        body: &str,
        with_mtls: bool,
        env: &[(&str, &str)],
        extra_listen: &str,
    ) -> Self {
        let ports = Ports {
            http: free_port(),
            mtls: with_mtls.then(free_port),
            metrics: free_port(),
        };
        let body = body.replace("{MTLS_PORT}", &ports.mtls.unwrap_or(0).to_string());
        let config = dir.join("certgate.toml");
        std::fs::write(
            &config,
            format!("{body}\n{}{extra_listen}\n", ports.listen()),
        )
        .unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Self::spawn(
            dir,
            &["serve", "--config", &config.display().to_string()],
            &env,
            ports,
        )
    }

    /// Starts the zero-config quickstart in `dir` on free ports.
    pub fn quickstart(dir: &Path) -> Self {
        let ports = Ports {
            http: free_port(),
            mtls: Some(free_port()),
            metrics: free_port(),
        };
        let at = |p: u16| format!("127.0.0.1:{p}");
        let env = [
            ("CERTGATE__LISTEN__HTTP".to_string(), at(ports.http)),
            (
                "CERTGATE__LISTEN__MTLS".to_string(),
                at(ports.mtls.unwrap()),
            ),
            ("CERTGATE__LISTEN__METRICS".to_string(), at(ports.metrics)),
        ];
        Self::spawn(dir, &["serve"], &env, ports)
    }

    fn spawn(dir: &Path, args: &[&str], env: &[(String, String)], ports: Ports) -> Self {
        let Ports {
            http: http_port,
            mtls: mtls_port,
            metrics: metrics_port,
        } = ports;
        let log = dir.join(format!("certgate-{http_port}.log"));
        let out = dir.join(format!("certgate-{http_port}.out"));
        let child = Command::new(binary())
            .args(args)
            .envs(env.iter().cloned())
            .env("RUST_LOG", "info,certgate=debug")
            .env("NO_COLOR", "1")
            .current_dir(dir)
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("certgate starts");
        let me = Self {
            child,
            http_port,
            mtls_port,
            metrics_port,
            log,
            dir: dir.to_path_buf(),
        };
        wait_for_port(http_port, "certgate", &me.log);
        if let Some(p) = mtls_port {
            wait_for_port(p, "certgate mTLS", &me.log);
        }
        wait_for_port(metrics_port, "certgate metrics", &me.log);
        me
    }

    /// Rewrites the config file in place (same listeners) and sends SIGHUP.
    pub fn reload_with(&self, body: &str) {
        let ports = Ports {
            http: self.http_port,
            mtls: self.mtls_port,
            metrics: self.metrics_port,
        };
        let body = body.replace("{MTLS_PORT}", &self.mtls_port.unwrap_or(0).to_string());
        std::fs::write(
            self.dir.join("certgate.toml"),
            format!("{body}\n{}", ports.listen()),
        )
        .unwrap();
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends a signal (`"TERM"`, `"HUP"`) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to end; its exit status, or `None` if it still runs.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Scrapes `/metrics` on the metrics listener and returns the value of one series
    /// (`name{labels}` as exposed).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", &self.metrics("/metrics")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// The audit events logged so far (needs `CERTGATE_LOG_FORMAT=json`), as JSON objects.
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "audit")
            .collect()
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// A URL on the operator's listener (`listen.metrics`).
    pub fn metrics(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.metrics_port)
    }

    pub fn mtls(&self, path: &str) -> String {
        format!(
            "https://localhost:{}{path}",
            self.mtls_port.expect("started with mTLS")
        )
    }

    /// What the process printed to stdout (the quickstart banner).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("certgate-{}.out", self.http_port)))
            .unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The loopback ports of one certgate's listeners.
#[derive(Clone, Copy)]
struct Ports {
    http: u16,
    mtls: Option<u16>,
    metrics: u16,
}

impl Ports {
    /// The `[listen]` section naming them.
    fn listen(self) -> String {
        let mut listen = format!(
            "[listen]\nhttp = \"127.0.0.1:{}\"\nmetrics = \"127.0.0.1:{}\"\n",
            self.http, self.metrics
        );
        if let Some(p) = self.mtls {
            listen.push_str(&format!("mtls = \"127.0.0.1:{p}\"\n"));
        }
        listen
    }
}

impl Drop for Certgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        dump_log_if_panicking("certgate", &self.log);
    }
}
