//! A real nginx (Debian package) with its own prefix, pid and logs, in the foreground.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{dump_log_if_panicking, wait_for_port};

pub struct Nginx {
    child: Child,
    pub error_log: PathBuf,
}

impl Nginx {
    /// Starts nginx with `server_blocks` (http-context text, e.g. the shipped config rendered
    /// for this test); `port` is the one its servers listen on (see [`free_port`]).
    pub fn start(dir: &Path, port: u16, server_blocks: &str) -> Self {
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("tmp")).unwrap();
        let error_log = prefix.join("error.log");
        let include = prefix.join("sites.conf");
        std::fs::write(&include, server_blocks).unwrap();
        let p = prefix.display();
        let main = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\n\
             error_log {p}/error.log info;\nevents {{ worker_connections 512; }}\n\
             http {{\n  access_log {p}/access.log;\n  client_body_temp_path {p}/tmp/body;\n\
               proxy_temp_path {p}/tmp/proxy;\n  fastcgi_temp_path {p}/tmp/fastcgi;\n\
               uwsgi_temp_path {p}/tmp/uwsgi;\n  scgi_temp_path {p}/tmp/scgi;\n\
               include {include};\n}}\n",
            include = include.display()
        );
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, main).unwrap();
        let test = Command::new("nginx")
            .arg("-t")
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .output()
            .expect("nginx runs");
        assert!(
            test.status.success(),
            "nginx -t rejected the config:\n{}\n{}",
            String::from_utf8_lossy(&test.stderr),
            std::fs::read_to_string(&include).unwrap_or_default()
        );
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(prefix.join("stderr.log")).unwrap(),
            ))
            .spawn()
            .expect("nginx starts");
        wait_for_port(port, "nginx", &error_log);
        Self { child, error_log }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        dump_log_if_panicking("nginx", &self.error_log);
    }
}
