//! The embedded database (`data_dir/certgate.db`, issue 22) with real processes: the CLI and two
//! servers writing revocations at once, none lost and every one refused by both within a
//! second; a server killed with SIGKILL mid-stream keeps every revocation it acknowledged; and
//! `certgate backup` taken while revocations are written holds every one acknowledged before it
//! started, and a server restored from it refuses them.
//!
//! The servers after the first are started without an mTLS listener (so `public_url`, the
//! tokens' issuer, stays the same across restarts); admin calls and token requests go to the
//! plain listener with alice's certificate forwarded by a trusted proxy (loopback), as nginx
//! sends it.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use certgate::db::rusqlite::{Connection, OpenFlags};

use crate::direct::{setup, Setup, LOOPBACK};
use crate::harness::certgate::{run, Certgate};
use crate::harness::curl::{Curl, Response};
use crate::harness::pki::CertFiles;
use crate::harness::require;
use crate::lockout::forwarded;
use crate::replicas::{copy_dir, ready_within, within};
use crate::revocation::{jti, second_certgate};

const SECOND: Duration = Duration::from_secs(1);

/// alice (in `admins`, as [`setup`] lists her) may revoke.
const ADMINS: &str = "[admin]\ngroups = [\"admins\"]";

/// What no user may ever read: SQLite's contention errors reaching an answer or a log.
fn assert_no_lock_errors(what: &str, text: &str) {
    let lower = text.to_ascii_lowercase();
    for bad in ["database is locked", "busy"] {
        assert!(!lower.contains(bad), "{what} says `{bad}`:\n{text}");
    }
}

/// A fresh bearer token of `who` from `cg`'s `/token` (plain listener, forwarded certificate).
fn bearer(cg: &Certgate, scratch: &Path, who: &CertFiles) -> String {
    let r = Curl::new(scratch)
        .header(&forwarded(who))
        .post(&cg.http("/token"), "");
    assert_eq!(r.status, 200, "{r:?}");
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    json["access_token"].as_str().unwrap().to_string()
}

/// `POST /admin/revoke jti=…` on `cg`'s plain listener as alice (an API client: her
/// certificate, forwarded; no cookie, no Origin). `Err` when no answer came.
fn admin_revoke(
    cg: &Certgate,
    scratch: &Path,
    alice: &CertFiles,
    id: &str,
) -> Result<Response, String> {
    Curl::new(scratch)
        .header(&forwarded(alice))
        .try_post(&cg.http("/admin/revoke"), &format!("jti={id}"))
}

/// `/verify` on `cg` with each bearer token, in one curl run (`--next`, one connection): the
/// statuses in order (0 where no answer came).
fn verify_each(cg: &Certgate, tokens: &[String]) -> Vec<u16> {
    let mut cmd = Command::new("curl");
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            cmd.arg("--next");
        }
        cmd.args([
            "-s",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}\\n",
        ])
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .args(["-H", "X-Original-URL: https://app.example.test/"])
        .arg(cg.http("/verify"));
    }
    let out = cmd.output().unwrap();
    let codes: Vec<u16> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap_or(0))
        .collect();
    assert_eq!(codes.len(), tokens.len(), "{out:?}");
    codes
}

/// The token ids of the `jti` revocations in a certgate database, read as another process
/// reads it (read-only, while a server may be writing), once SQLite finds the file whole.
fn revoked_jtis(db: &Path) -> HashSet<String> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "{}", db.display());
    let mut stmt = conn.prepare("SELECT entry FROM revocations").unwrap();
    let entries: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    entries
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(e).unwrap())
        .filter(|e| e["kind"] == "jti")
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every id of `ids` missing from `present`.
fn missing<'a>(
    ids: impl IntoIterator<Item = &'a String>,
    present: &HashSet<String>,
) -> Vec<String> {
    ids.into_iter()
        .filter(|id| !present.contains(*id))
        .cloned()
        .collect()
}

/// A small seeded generator (xorshift64*): the seed is printed, and `CERTGATE_TEST_SEED`
/// gives it back to repeat a run.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let seed = std::env::var("CERTGATE_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("seed {seed} (CERTGATE_TEST_SEED={seed} repeats this run)");
        Self(seed | 1)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        low + self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % (high - low + 1)
    }
}

/// Issue 22, check 1: two servers on one data directory; 20 `certgate revoke` processes started
/// at once, while admin API calls revoke on both servers. Every command and call succeeds, no
/// "database is locked" reaches anyone, and within a second of the last acknowledgement both
/// servers refuse every revoked token; the database holds them all.
#[test]
fn twenty_cli_revocations_at_once_with_admin_calls_on_two_servers_are_all_refused_by_both_within_a_second(
) {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, ADMINS);
    let b = second_certgate(&s);
    let dir = s.dir.path();
    let config = dir.join("certgate.toml");
    const CLI: usize = 20;
    const ADMIN_THREADS: usize = 4; // two per server
    const PER_THREAD: usize = 5;
    let total = CLI + ADMIN_THREADS * PER_THREAD;
    let tokens: Vec<String> = (0..=total).map(|_| bearer(&s.cg, dir, &s.alice)).collect();
    let (control, revoked) = tokens.split_last().unwrap();
    let jtis: Vec<String> = revoked.iter().map(|t| jti(t)).collect();
    for cg in [&s.cg, &b] {
        assert!(
            verify_each(cg, &tokens).iter().all(|&c| c == 200),
            "every token works on both servers before"
        );
    }

    // Everyone starts together; each records when its revocation was acknowledged.
    let (cli_jtis, admin_jtis) = jtis.split_at(CLI);
    let start = Barrier::new(CLI + ADMIN_THREADS);
    let (cli, admin) = std::thread::scope(|scope| {
        let cli: Vec<_> = cli_jtis
            .iter()
            .map(|id| {
                let (start, config) = (&start, &config);
                scope.spawn(move || {
                    start.wait();
                    let (code, out) = run(
                        dir,
                        &[
                            "revoke",
                            "--jti",
                            id,
                            "--config",
                            &config.display().to_string(),
                        ],
                    );
                    (Instant::now(), code, out)
                })
            })
            .collect();
        let admin: Vec<_> = admin_jtis
            .chunks(PER_THREAD)
            .enumerate()
            .map(|(i, ids)| {
                let (start, s, cg) = (&start, &s, if i % 2 == 0 { &s.cg } else { &b });
                scope.spawn(move || {
                    start.wait();
                    ids.iter()
                        .map(|id| {
                            let r = admin_revoke(cg, dir, &s.alice, id);
                            (Instant::now(), r)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        (
            cli.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>(),
            admin
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect::<Vec<_>>(),
        )
    });

    let mut last_ack = None::<Instant>;
    for (at, code, out) in &cli {
        assert_eq!(*code, 0, "certgate revoke failed:\n{out}");
        assert_no_lock_errors("certgate revoke", out);
        last_ack = last_ack.max(Some(*at));
    }
    for (at, r) in &admin {
        let r = r.as_ref().unwrap_or_else(|e| panic!("no answer: {e}"));
        assert!((200..300).contains(&r.status), "{r:?}");
        assert_no_lock_errors("/admin/revoke", &r.body);
        last_ack = last_ack.max(Some(*at));
    }
    let last_ack = last_ack.unwrap();
    // The servers learn of the last CLI revocations by following the table, not from writes
    // of their own, when those come after the last admin call (printed below).
    let last_cli = cli.iter().map(|c| c.0).max().unwrap();
    let last_admin = admin.iter().map(|a| a.0).max().unwrap();

    // Refused by both within a second of the last acknowledgement (a token once refused stays
    // refused, so each pass checks only those still let in).
    let mut pending: Vec<(&Certgate, Vec<String>)> =
        vec![(&s.cg, revoked.to_vec()), (&b, revoked.to_vec())];
    within(
        SECOND.saturating_sub(last_ack.elapsed()),
        "every revocation refused by both servers",
        || {
            for (cg, left) in &mut pending {
                let codes = verify_each(cg, left);
                let mut codes = codes.into_iter();
                left.retain(|_| codes.next() != Some(401));
            }
            pending.iter().all(|(_, left)| left.is_empty())
        },
    );
    eprintln!(
        "{total} revocations ({CLI} CLI, {} admin) refused by both servers {:?} after the last acknowledgement; the last CLI one came {:?} after the last admin call",
        admin.len(),
        last_ack.elapsed(),
        last_cli.saturating_duration_since(last_admin)
    );
    for cg in [&s.cg, &b] {
        assert_eq!(
            verify_each(cg, std::slice::from_ref(control)),
            [200],
            "only those"
        );
        assert_no_lock_errors("a server log", &cg.logs());
    }
    let stored = revoked_jtis(&dir.join("data/certgate.db"));
    assert_eq!(missing(&jtis, &stored), Vec::<String>::new(), "lost");
}

/// Issue 22, check 2: a stream of `/admin/revoke` calls while the server is killed with
/// SIGKILL at a random moment, three times: after each restart on the same data directory,
/// every revocation acknowledged with a 2xx is in the database and in force.
#[test]
fn every_revocation_acknowledged_before_a_sigkill_is_in_force_after_the_restart() {
    if !require("curl") {
        return;
    }
    let mut s: Setup = setup(LOOPBACK, ADMINS);
    let dir = s.dir.path().to_path_buf();
    let db = dir.join("data/certgate.db");
    let body = s.body();
    let mut rng = Rng::seeded();
    let control = bearer(&s.cg, &dir, &s.alice);
    // Tokens whose revocation was acknowledged (checked at /verify), and every acknowledged id.
    let mut acked_tokens: Vec<String> = Vec::new();
    let mut acked: Vec<String> = Vec::new();
    for cycle in 0..3 {
        let real: Vec<String> = (0..4).map(|_| bearer(&s.cg, &dir, &s.alice)).collect();
        let (first_ack, acked_once) = std::sync::mpsc::channel();
        let killed = AtomicBool::new(false);
        let delay = Duration::from_millis(rng.between(50, 500));
        let this = std::thread::scope(|scope| {
            let (s, dir, real, killed) = (&s, &dir, &real, &killed);
            let writer = scope.spawn(move || {
                // Every other call revokes a real token (while they last), the rest made-up ids.
                let mut mine: Vec<(String, Option<String>)> = Vec::new();
                let mut real = real.iter();
                let mut i = 0;
                loop {
                    let token = if i % 2 == 0 { real.next() } else { None };
                    let id = token.map_or_else(|| format!("crash-{cycle}-{i}"), |t| jti(t));
                    match admin_revoke(&s.cg, dir, &s.alice, &id) {
                        Ok(r) if r.status == 200 => {
                            mine.push((id, token.cloned()));
                            let _ = first_ack.send(());
                        }
                        Ok(r) => panic!("call {i} answered {r:?}"),
                        Err(e) => {
                            assert!(
                                killed.load(Ordering::SeqCst),
                                "call {i} before the kill: {e}"
                            );
                            return mine;
                        }
                    }
                    i += 1;
                }
            });
            acked_once
                .recv_timeout(Duration::from_secs(10))
                .expect("no revocation acknowledged within 10 s");
            std::thread::sleep(delay);
            killed.store(true, Ordering::SeqCst);
            s.cg.signal("KILL");
            writer.join().unwrap()
        });
        assert!(
            s.cg.wait_exit(Duration::from_secs(5)).is_some(),
            "SIGKILL did not end it"
        );
        eprintln!(
            "cycle {cycle}: killed {delay:?} after the first acknowledgement, {} acknowledged",
            this.len()
        );
        for (id, token) in this {
            acked.push(id);
            acked_tokens.extend(token);
        }

        // The same config and data directory, as a supervisor restarts it.
        s.cg = Certgate::start(&dir, &body, false);
        ready_within(&s.cg, Duration::from_secs(10));
        let stored = revoked_jtis(&db);
        assert_eq!(
            missing(&acked, &stored),
            Vec::<String>::new(),
            "acknowledged, then lost in the crash (cycle {cycle})"
        );
        let codes = verify_each(&s.cg, &acked_tokens);
        assert!(
            codes.iter().all(|&c| c == 401),
            "acknowledged revocations let in after the restart: {codes:?}"
        );
        assert_eq!(verify_each(&s.cg, std::slice::from_ref(&control)), [200]);
    }
    assert!(!acked_tokens.is_empty());
}

/// Issue 22, check 5: `certgate backup` while the admin API and `certgate revoke` write
/// revocations: it succeeds, the copy opens and holds every revocation acknowledged before it
/// started, it never overwrites a file, and a server restored from it refuses those tokens.
#[test]
fn a_backup_taken_while_revocations_are_written_holds_every_one_acknowledged_before_it_started() {
    if !require("curl") {
        return;
    }
    let s = setup(LOOPBACK, ADMINS);
    let dir = s.dir.path();
    let config = dir.join("certgate.toml").display().to_string();
    let control = bearer(&s.cg, dir, &s.alice);
    let real: Vec<String> = (0..4).map(|_| bearer(&s.cg, dir, &s.alice)).collect();
    let (by_api, by_cli) = real.split_at(2);
    let acks: Mutex<Vec<(String, Instant)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let file = dir.join("backup.db");
    let file_arg = file.display().to_string();

    let (started, finished, backup) = std::thread::scope(|scope| {
        let (acks, stop, s) = (&acks, &stop, &s);
        let api = scope.spawn(move || {
            let ids = by_api
                .iter()
                .map(|t| jti(t))
                .chain((0..).map(|i| format!("api-{i}")));
            for id in ids {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let r = admin_revoke(&s.cg, dir, &s.alice, &id).unwrap();
                assert_eq!(r.status, 200, "{r:?}");
                acks.lock().unwrap().push((id, Instant::now()));
            }
        });
        let cli = scope.spawn(|| {
            let ids = by_cli
                .iter()
                .map(|t| jti(t))
                .chain((0..).map(|i| format!("cli-{i}")));
            for id in ids {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let (code, out) = run(dir, &["revoke", "--jti", &id, "--config", &config]);
                assert_eq!(code, 0, "{out}");
                acks.lock().unwrap().push((id, Instant::now()));
            }
        });
        // Both writers under way (the real tokens' revocations acknowledged, and more), then
        // the backup, then a little more writing.
        let deadline = Instant::now() + Duration::from_secs(10);
        let going = loop {
            let acked: Vec<String> = acks.lock().unwrap().iter().map(|a| a.0.clone()).collect();
            if acked.len() >= 8 && real.iter().all(|t| acked.contains(&jti(t))) {
                break true;
            }
            if Instant::now() > deadline || api.is_finished() || cli.is_finished() {
                break false;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let started = Instant::now();
        let backup = going.then(|| run(dir, &["backup", &file_arg, "--config", &config]));
        let finished = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
        api.join().unwrap();
        cli.join().unwrap();
        (
            started,
            finished,
            backup.expect("the writers did not get going"),
        )
    });
    let (code, out) = backup;
    assert_eq!(code, 0, "certgate backup failed:\n{out}");
    let acks = acks.into_inner().unwrap();
    let before: Vec<String> = acks
        .iter()
        .filter(|(_, at)| *at < started)
        .map(|(id, _)| id.clone())
        .collect();
    let during = acks
        .iter()
        .filter(|(_, at)| *at >= started && *at <= finished)
        .count();
    eprintln!(
        "backup took {:?}: {} revocations acknowledged before it started, {during} while it ran, {} in all",
        finished - started,
        before.len(),
        acks.len()
    );
    for t in &real {
        assert!(
            before.contains(&jti(t)),
            "the real tokens were revoked first"
        );
    }
    assert!(
        acks.iter().any(|(_, at)| *at > started),
        "revocations went on being written during the backup"
    );

    // The copy opens, is whole, and holds every one acknowledged before the backup started.
    let copied = revoked_jtis(&file);
    assert_eq!(
        missing(&before, &copied),
        Vec::<String>::new(),
        "not in the backup"
    );

    // Never over an existing file: the message names it.
    let (code, out) = run(dir, &["backup", &file_arg, "--config", &config]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains(&file_arg), "{out}");

    // Restored: the backup as certgate.db in a new data directory, with the signing keys (the
    // README's restore), under a new server: the revoked tokens refused, the others let in.
    let restored = dir.join("restored");
    std::fs::create_dir_all(restored.join("data")).unwrap();
    std::fs::copy(&file, restored.join("data/certgate.db")).unwrap();
    copy_dir(&dir.join("data/keys"), &restored.join("data/keys"));
    let cg = Certgate::start(&restored, &s.body(), false);
    ready_within(&cg, Duration::from_secs(10));
    assert_eq!(verify_each(&cg, &real), [401; 4]);
    assert_eq!(verify_each(&cg, std::slice::from_ref(&control)), [200]);
}
