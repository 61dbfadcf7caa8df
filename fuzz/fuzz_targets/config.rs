//! The configuration loader (`config::load`: TOML, environment overrides, validation) on
//! arbitrary text: never a panic, and a refused configuration names at least one problem.
//! Input: the TOML text, then optionally a NUL byte and `CERTGATE__…=value` lines.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use certgate::config::{load, Source};
use libfuzzer_sys::fuzz_target;

/// A directory holding `client-ca.pem` (a throw-away CA's certificate, no key), so that
/// `bundle = "client-ca.pem"` lets a configuration validate completely. Left behind in the
/// temporary directory (scripts/fuzz.sh points TMPDIR at one it removes).
fn base_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("certgate-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the base directory");
        let now = certgate::clock::Clock::now(&certgate::clock::SystemClock);
        let ca = certgate::ca::Ca::generate("certgate fuzz CA", now).expect("a throw-away CA");
        std::fs::write(dir.join("client-ca.pem"), ca.cert_pem).expect("write client-ca.pem");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (text, env) = input.split_once('\0').unwrap_or((input, ""));
    let vars = env.lines().filter_map(|line| {
        let (name, value) = line.split_once('=')?;
        Some((name.to_string(), value.to_string()))
    });
    let source = Source {
        text: text.to_string(),
        origin: "fuzz.toml".into(),
        base_dir: base_dir().clone(),
    };
    if let Err(problems) = load(&source, vars) {
        assert!(
            !problems.0.is_empty(),
            "refused without a problem: {text:?}"
        );
        let _ = problems.to_string();
    }
});
