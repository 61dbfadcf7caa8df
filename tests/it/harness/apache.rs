//! A real Apache 2.4 (Debian `apache2`) with mod_auth_openidc (Debian
//! `libapache2-mod-auth-openidc`), in the foreground with a config of its own: one process
//! (`-X`, prefork), no keep-alive (so a browser's idle connection never holds the one process
//! while certgate's back-channel POST waits), its logs and pid in the test's directory. Killed on
//! drop; its error log is printed when the test failed.
//!
//! `whoami` (a CGI shell script written beside the config) prints what Apache hands an app:
//! `REMOTE_USER` and the `OIDC_CLAIM_*` variables mod_auth_openidc sets.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{dump_log_if_panicking, missing, wait_for_port};

pub const BINARY: &str = "/usr/sbin/apache2";
pub const MODULES: &str = "/usr/lib/apache2/modules";

/// Whether Apache and mod_auth_openidc are installed. Like [`super::require`]: locally a test
/// skips without them, under `CI=true` it fails.
pub fn require() -> bool {
    if !Path::new(BINARY).is_file() {
        return missing("apache2 (Debian package apache2)");
    }
    Path::new(MODULES).join("mod_auth_openidc.so").is_file()
        || missing("mod_auth_openidc (Debian package libapache2-mod-auth-openidc)")
}

pub struct Apache {
    child: Child,
    pub port: u16,
    pub error_log: PathBuf,
    pub access_log: PathBuf,
}

/// The `whoami` CGI script.
const WHOAMI: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
echo \"REMOTE_USER=$REMOTE_USER\"\necho \"email=$OIDC_CLAIM_email\"\n\
echo \"groups=$OIDC_CLAIM_groups\"\necho \"sid=$OIDC_CLAIM_sid\"\n";

impl Apache {
    /// The server root under `dir`, with `whoami` and `htdocs/signed-out.html` in place (the
    /// document root is `htdocs`), before [`Self::start`]: a site's config names `whoami`.
    pub fn root(dir: &Path) -> PathBuf {
        let root = dir.join("apache");
        std::fs::create_dir_all(root.join("htdocs")).unwrap();
        std::fs::write(
            root.join("htdocs/signed-out.html"),
            "signed out of Apache\n",
        )
        .unwrap();
        let whoami = root.join("whoami");
        std::fs::write(&whoami, WHOAMI).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&whoami, std::fs::Permissions::from_mode(0o755)).unwrap();
        root
    }

    /// Starts Apache on `127.0.0.1:port` with `site` (server-context directives: the
    /// mod_auth_openidc settings and the locations), after `apache2 -t` accepted the config.
    pub fn start(dir: &Path, port: u16, site: &str) -> Self {
        let root = Self::root(dir);
        let r = root.display();
        let error_log = root.join("error.log");
        let access_log = root.join("access.log");
        let conf = root.join("httpd.conf");
        let modules = [
            ("mpm_prefork_module", "mod_mpm_prefork.so"),
            ("authn_core_module", "mod_authn_core.so"),
            ("authz_core_module", "mod_authz_core.so"),
            ("authz_user_module", "mod_authz_user.so"),
            ("alias_module", "mod_alias.so"),
            ("cgi_module", "mod_cgi.so"),
            ("auth_openidc_module", "mod_auth_openidc.so"),
        ]
        .iter()
        .map(|(name, file)| format!("LoadModule {name} {MODULES}/{file}\n"))
        .collect::<String>();
        std::fs::write(
            &conf,
            format!(
                "ServerRoot {r}\nListen 127.0.0.1:{port}\nServerName 127.0.0.1:{port}\n\
                 PidFile {r}/httpd.pid\nErrorLog {r}/error.log\nLogLevel warn auth_openidc:info\n\
                 {modules}CustomLog {r}/access.log \"%h %u \\\"%r\\\" %>s\"\nKeepAlive Off\n\
                 DocumentRoot {r}/htdocs\n{site}\n"
            ),
        )
        .unwrap();
        let test = Command::new(BINARY)
            .arg("-t")
            .arg("-f")
            .arg(&conf)
            .output()
            .expect("apache2 runs");
        assert!(
            test.status.success(),
            "apache2 -t refused the config:\n{}\n{}",
            String::from_utf8_lossy(&test.stderr),
            std::fs::read_to_string(&conf).unwrap_or_default()
        );
        let child = Command::new(BINARY)
            .arg("-X")
            .arg("-f")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(root.join("stderr.log")).unwrap(),
            ))
            .spawn()
            .expect("apache2 starts");
        wait_for_port(port, "apache2", &error_log);
        Self {
            child,
            port,
            error_log,
            access_log,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The access log so far: `client user "request line" status`, one request a line.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(&self.access_log).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(&self.error_log).unwrap_or_default()
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        dump_log_if_panicking("apache2", &self.error_log);
    }
}
