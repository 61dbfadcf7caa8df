//! curl as the HTTP client: the same tool the README tells people to use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Lower-case names; repeated headers joined with "\n".
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Builder for one curl call.
pub struct Curl {
    args: Vec<String>,
    scratch: PathBuf,
}

impl Curl {
    pub fn new(scratch: &Path) -> Self {
        Self {
            args: vec!["-sS".into(), "--max-time".into(), "20".into()],
            scratch: scratch.to_path_buf(),
        }
    }

    pub fn arg(mut self, a: impl AsRef<str>) -> Self {
        self.args.push(a.as_ref().to_string());
        self
    }

    pub fn header(self, h: &str) -> Self {
        self.arg("-H").arg(h)
    }

    pub fn cacert(self, path: &Path) -> Self {
        self.arg("--cacert").arg(path.display().to_string())
    }

    pub fn cert(self, cert: &Path, key: &Path) -> Self {
        self.arg("--cert")
            .arg(cert.display().to_string())
            .arg("--key")
            .arg(key.display().to_string())
    }

    pub fn resolve(self, host: &str, port: u16) -> Self {
        self.arg("--resolve")
            .arg(format!("{host}:{port}:127.0.0.1"))
    }

    pub fn jar(self, jar: &Path) -> Self {
        let j = jar.display().to_string();
        self.arg("-b").arg(&j).arg("-c").arg(&j)
    }

    pub fn get(self, url: &str) -> Response {
        self.run(url).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Curl::get`], but a connection failure is an `Err` (for readiness polling).
    pub fn try_get(self, url: &str) -> Result<Response, String> {
        self.run(url)
    }

    pub fn post(self, url: &str, form: &str) -> Response {
        self.try_post(url, form).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Curl::post`], but a connection failure is an `Err` (a server killed mid-request).
    pub fn try_post(self, url: &str, form: &str) -> Result<Response, String> {
        self.arg("--data").arg(form).run(url)
    }

    fn run(self, url: &str) -> Result<Response, String> {
        let id = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let head = self.scratch.join(format!("curl-{id}.head"));
        let body = self.scratch.join(format!("curl-{id}.body"));
        let out = Command::new("curl")
            .args(&self.args)
            .arg("-D")
            .arg(&head)
            .arg("-o")
            .arg(&body)
            .arg("-w")
            .arg("%{http_code}")
            .arg(url)
            .output()
            .expect("curl runs");
        let status: u16 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        if status == 0 {
            return Err(format!(
                "curl {:?} {url} failed: {}",
                self.args,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let head_text = std::fs::read_to_string(&head).unwrap_or_default();
        // With -L there are several header blocks; the last one is the final answer.
        let last = head_text
            .trim_end()
            .rsplit("\r\n\r\n")
            .next()
            .unwrap_or_default();
        let mut headers: HashMap<String, String> = HashMap::new();
        for line in last.lines().skip(1) {
            if let Some((k, v)) = line.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim().to_string();
                headers
                    .entry(k)
                    .and_modify(|e| {
                        e.push('\n');
                        e.push_str(&v);
                    })
                    .or_insert(v);
            }
        }
        let body_text = std::fs::read_to_string(&body).unwrap_or_default();
        let _ = std::fs::remove_file(head);
        let _ = std::fs::remove_file(body);
        Ok(Response {
            status,
            headers,
            body: body_text,
        })
    }
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
