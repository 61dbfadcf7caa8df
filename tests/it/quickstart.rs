//! The README's run command: `certgate serve` with no config, and its printed curl commands.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::harness::certgate::Certgate;
use crate::harness::require;

/// The printed commands, run exactly as printed (one bash, in the same directory).
#[test]
fn quickstart_prints_curl_commands_that_work_as_printed() {
    if !require("curl") || !require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let first = Certgate::quickstart(dir.path());
    let banner = first.stdout();
    let commands: Vec<&str> = banner
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl ") || l.starts_with("TOKEN="))
        .collect();
    assert_eq!(commands.len(), 6, "banner:\n{banner}");
    assert!(
        banner.contains(&format!(
            "metrics (Prometheus, operator only):        http://127.0.0.1:{}/metrics",
            first.metrics_port
        )),
        "banner:\n{banner}"
    );
    let mut script = String::from("set -u\n");
    for (i, c) in commands.iter().enumerate() {
        script.push_str(&format!("echo '=== step {}'\n{c}\n", i + 1));
    }
    script.push_str("echo '=== token'\necho \"${TOKEN:0:20}\"\n");
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let step = |n: &str| {
        text.split(&format!("=== {n}\n"))
            .nth(1)
            .unwrap_or("")
            .split("=== ")
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let s1 = step("step 1");
    assert!(s1.starts_with("http/1.1 200"), "step 1:\n{s1}");
    assert!(s1.contains("set-cookie: __host-certgate="), "step 1:\n{s1}");
    assert!(step("token").starts_with("eyj"), "no token: {text}");
    let s3 = step("step 3");
    assert!(
        s3.starts_with("http/1.1 200") && s3.contains("remote-user: alice"),
        "step 3:\n{s3}"
    );
    assert!(
        step("step 4").starts_with("http/1.1 401"),
        "step 4:\n{}",
        step("step 4")
    );
    let s5 = step("step 5");
    assert!(
        s5.starts_with("http/1.1 200") && s5.contains("remote-user: alice"),
        "step 5:\n{s5}"
    );
    // The metrics listener answers the operator; the forward-auth listener has no /metrics.
    let s6 = step("step 6");
    assert!(
        s6.contains("certgate_decisions_total{reason=\"bearer\",result=\"allow\"} 1"),
        "step 6:\n{s6}"
    );
    let on_http = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(first.http("/metrics"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&on_http.stdout), "404");

    // Key material is private; the PKCS#12 opens with the printed password.
    let data = dir.path().join("certgate-data");
    let keys = std::fs::read_dir(data.join("keys"))
        .unwrap()
        .flatten()
        .map(|e| e.path());
    for path in [
        data.join("ca.key"),
        data.join("server.key"),
        data.join("demo/alice.key"),
        data.join("demo/alice.p12"),
    ]
    .into_iter()
    .chain(keys)
    {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let password = banner
        .split("password: ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();
    let info = Command::new("openssl")
        .args(["pkcs12", "-info", "-noout", "-in"])
        .arg(data.join("demo/alice.p12"))
        .arg("-passin")
        .arg(format!("pass:{password}"))
        .output()
        .unwrap();
    assert!(
        info.status.success(),
        "openssl pkcs12: {}",
        String::from_utf8_lossy(&info.stderr)
    );

    // A second start reuses everything.
    let ca_before = std::fs::read(data.join("ca.pem")).unwrap();
    drop(first);
    let second = Certgate::quickstart(dir.path());
    assert_eq!(std::fs::read(data.join("ca.pem")).unwrap(), ca_before);
    assert!(second.stdout().contains(&format!("password: {password})")));
}
