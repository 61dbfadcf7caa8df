//! Test harness: real processes (certgate, nginx, Home Assistant) on loopback ports picked at
//! run time, certificates made at test time, curl as the client. Processes are killed on drop,
//! and their logs are printed when a test fails.

pub mod apache;
pub mod backchannel;
pub mod caddy;
pub mod certgate;
pub mod chromium;
pub mod curl;
pub mod home_assistant;
pub mod jupyterhub;
pub mod nginx;
pub mod pki;
pub mod redis;
pub mod rp;
pub mod synapse;
pub mod traefik;
pub mod upstream;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// A free loopback port (bound, read back, released), never the same one twice in this test
/// process: tests run in parallel, and two of them must not race for one released port.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free loopback port");
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Whether an external tool is here. Locally a missing tool skips the test; under `CI=true`
/// it fails it, so CI never passes by skipping.
pub fn require(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    found || missing(tool)
}

/// What a test does when `what` (a tool, or an install such as Home Assistant's venv) is not
/// here: locally it says SKIP and returns false; under `CI=true` it panics.
pub fn missing(what: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is required under CI=true: run scripts/install-test-deps.sh");
    }
    eprintln!("SKIP: {what} not installed (scripts/install-test-deps.sh installs it)");
    false
}

/// Waits until something accepts connections on the port.
pub fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("{what} did not listen on port {port} within 20 s; its log:\n{log}");
}

/// Waits up to `limit` until `url` answers 200 (an app's health endpoint), failing at once
/// when `child` exits first; `log` is what the app printed, for the failure message.
pub fn wait_healthy(
    what: &str,
    child: &mut std::process::Child,
    url: &str,
    scratch: &Path,
    limit: Duration,
    log: &dyn Fn() -> String,
) {
    let began = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{what} exited ({status}) before it answered; its output:\n{}",
                log()
            );
        }
        if let Ok(r) = curl::Curl::new(scratch).try_get(url) {
            if r.status == 200 {
                return;
            }
        }
        assert!(
            began.elapsed() < limit,
            "{what} did not answer {url} within {} s; its output:\n{}",
            limit.as_secs(),
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Prints a process log if the current test is failing.
pub fn dump_log_if_panicking(what: &str, log: &Path) {
    if std::thread::panicking() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        eprintln!(
            "----- {what} log ({}) -----\n{text}\n----- end of {what} log -----",
            log.display()
        );
    }
}

/// A blocking socket whose reads and writes are retried when interrupted. Linux never
/// restarts a socket call that has a timeout: it fails with EINTR when a signal arrives or
/// when the process is stopped and resumed (signal(7)), which a busy CI machine does.
pub struct Restarting<S>(pub S);

impl<S: std::io::Read> std::io::Read for Restarting<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                done => return done,
            }
        }
    }
}

impl<S: std::io::Write> std::io::Write for Restarting<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                done => return done,
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        loop {
            match self.0.flush() {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                done => return done,
            }
        }
    }
}
