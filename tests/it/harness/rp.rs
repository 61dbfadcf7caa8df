//! Real OpenID Connect relying-party libraries that nobody here wrote, driven step by step: npm
//! `openid-client` 6 (run by the machine's Node.js) and PyPI `authlib` (in its own venv), both
//! installed by `scripts/install-test-deps.sh` under `target/test-tools/`. The drivers are
//! `tests/it/rp/openid_client.mjs` and `tests/it/rp/authlib_client.py`.
//!
//! A login is two driver steps with the person in between: `start` does discovery and prints
//! the authorization URL with what `finish` needs (PKCE verifier, state, nonce); the test GETs
//! that URL with curl holding the person's client certificate and hands the `Location` it got
//! to `finish`, which exchanges the code and prints what the library validated and fetched.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::missing;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Library {
    /// npm `openid-client` 6.
    OpenidClient,
    /// PyPI `authlib` with its `requests` client and `authlib.jose`.
    Authlib,
}

fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools")
}

fn driver_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/rp")
}

/// The npm prefix holding `openid-client` (`target/test-tools/node`).
pub fn node_prefix() -> PathBuf {
    tools().join("node")
}

/// The venv holding `authlib` and `requests` (`target/test-tools/authlib`).
pub fn authlib_venv() -> PathBuf {
    tools().join("authlib")
}

impl Library {
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenidClient => "openid-client",
            Self::Authlib => "authlib",
        }
    }

    /// Whether the library and what runs it are installed (the install step writes
    /// `.installed` last). Like [`super::require`]: locally a test skips without them, under
    /// `CI=true` it fails.
    pub fn require(self) -> bool {
        match self {
            Self::OpenidClient => {
                let prefix = node_prefix();
                if !super::require("node") {
                    return false;
                }
                (prefix.join(".installed").is_file()
                    && prefix
                        .join("node_modules/openid-client/package.json")
                        .is_file())
                    || missing(&format!("npm openid-client ({})", prefix.display()))
            }
            Self::Authlib => {
                let venv = authlib_venv();
                (venv.join(".installed").is_file() && venv.join("bin/python").is_file())
                    || missing(&format!("PyPI authlib ({})", venv.display()))
            }
        }
    }

    fn command(self) -> Command {
        match self {
            Self::OpenidClient => {
                let mut c = Command::new("node");
                c.arg(driver_dir().join("openid_client.mjs"));
                c
            }
            Self::Authlib => {
                let mut c = Command::new(authlib_venv().join("bin/python"));
                c.arg(driver_dir().join("authlib_client.py"));
                c
            }
        }
    }
}

/// A driver step that the library refused, or that failed: its JSON `error` (the library's
/// error name, code and message, and the provider's `error` where there was one), its exit
/// status and what it wrote to stderr.
#[derive(Debug)]
pub struct Refusal {
    pub error: Value,
    pub status: Option<i32>,
    pub stderr: String,
}

impl Refusal {
    /// Every string in the error (the library's messages and those of their causes), joined
    /// with " | ", to search for what the library said.
    pub fn text(&self) -> String {
        fn strings(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) => out.push(s.clone()),
                Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
                Value::Object(o) => o.values().for_each(|v| strings(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        strings(&self.error, &mut out);
        out.join(" | ")
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refused (exit {:?}): {:#}\nstderr:\n{}",
            self.status, self.error, self.stderr
        )
    }
}

/// One relying party: a library, a client registered at the provider, and the CA that signed
/// the provider's server certificate (trusted through `NODE_EXTRA_CA_CERTS` /
/// `REQUESTS_CA_BUNDLE`, and nothing else).
pub struct RelyingParty {
    pub library: Library,
    /// `issuer`, `client_id`, `client_secret` (absent: public client), `auth_method`,
    /// `redirect_uri`, `scope`, as the drivers read them.
    pub client: Value,
    pub ca: PathBuf,
}

/// What `start` printed: the authorization URL and what `finish` needs.
#[derive(Debug, Clone)]
pub struct Started {
    pub authorization_url: String,
    pub code_verifier: String,
    pub state: String,
    pub nonce: String,
}

impl RelyingParty {
    pub fn new(library: Library, client: Value, ca: &Path) -> Self {
        Self {
            library,
            client,
            ca: ca.to_path_buf(),
        }
    }

    /// Runs `step` with the client's settings plus `extra`: the JSON it printed, or the refusal.
    pub fn step(&self, step: &str, extra: &Value) -> Result<Value, Refusal> {
        let mut input = self.client.clone();
        input["modules"] = json!(node_prefix().display().to_string());
        for (k, v) in extra.as_object().expect("extra is an object") {
            input[k] = v.clone();
        }
        let out = self
            .library
            .command()
            .arg(step)
            .arg(input.to_string())
            .env("NODE_EXTRA_CA_CERTS", &self.ca)
            .env("REQUESTS_CA_BUNDLE", &self.ca)
            .env_remove("SSL_CERT_FILE")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .output()
            .unwrap_or_else(|e| panic!("{} {step} does not run: {e}", self.library.name()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let printed: Value = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                panic!(
                    "{} {step} printed no JSON (exit {:?}); stdout:\n{stdout}\nstderr:\n{stderr}",
                    self.library.name(),
                    out.status.code()
                )
            });
        if out.status.success() {
            Ok(printed)
        } else {
            Err(Refusal {
                error: printed.get("error").cloned().unwrap_or(printed),
                status: out.status.code(),
                stderr,
            })
        }
    }

    /// `start`: discovery, PKCE S256, state and nonce; panics if the library refuses.
    pub fn start(&self) -> Started {
        let v = self.step("start", &json!({})).unwrap_or_else(|r| {
            panic!("{} start {r}", self.library.name());
        });
        let field = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("start printed no {k}: {v}"))
                .to_string()
        };
        Started {
            authorization_url: field("authorization_url"),
            code_verifier: field("code_verifier"),
            state: field("state"),
            nonce: field("nonce"),
        }
    }

    /// `finish` with the callback URL (the provider's redirect) and what `start` gave.
    pub fn finish(&self, started: &Started, callback_url: &str) -> Result<Value, Refusal> {
        self.step(
            "finish",
            &json!({
                "callback_url": callback_url,
                "code_verifier": started.code_verifier,
                "state": started.state,
                "nonce": started.nonce,
            }),
        )
    }
}
