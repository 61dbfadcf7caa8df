//! Replicas sharing revocations through a real redis-server: each keeps its own view, Redis
//! carries every change to the others within a second, a view too old to trust answers 503,
//! and a replica killed behind nginx never lets anyone in.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::direct::cookie_value;
use crate::harness::certgate::Certgate;
use crate::harness::curl::Curl;
use crate::harness::nginx::Nginx;
use crate::harness::pki::{CertFiles, Pki};
use crate::harness::redis::Redis;
use crate::harness::upstream::Upstream;
use crate::harness::{free_port, require};
use crate::revocation::{assert_fails_closed, jti, revoke_cli};

pub struct Replicas {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub alice: CertFiles,
    redis: Redis,
    body: String,
    /// Replica A, with an mTLS listener to sign in on.
    pub a: Certgate,
    pub b: Certgate,
}

pub fn config(ca: &Path, server: &CertFiles, redis: &str, max_staleness: &str) -> String {
    format!(
        r#"
public_url = "https://auth.example.com"
data_dir = "data"
[tls]
cert = "{cert}"
key = "{key}"
[client_ca]
bundle = "{ca}"
[proxy]
trusted = ["127.0.0.1/32"]
# No [session]: /auth sends browsers back to auth.example.com only. These tests carry the
# host-only cookie to the app hosts themselves; browsers would need session.cookie_domain.
[[users]]
name = "alice"
groups = ["admins"]
[[users]]
name = "bob"
[admin]
groups = ["admins"]
[access]
allow_unmatched = true
[store]
backend = "redis"
redis_url = "{redis}"
max_staleness = "{max_staleness}"
"#,
        cert = server.cert.display(),
        key = server.key.display(),
        ca = ca.display(),
    )
}

impl Replicas {
    pub fn start(max_staleness: &str) -> Option<Self> {
        Self::start_seeded(max_staleness, |_| {})
    }

    /// [`Self::start`] with `seed` run on Redis before any replica starts.
    pub fn start_seeded(max_staleness: &str, seed: impl FnOnce(&Redis)) -> Option<Self> {
        if !require("redis-server") || !require("redis-cli") || !require("curl") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path(), "Family CA");
        let alice = pki.user("alice");
        let server = pki.server(&["localhost", "127.0.0.1", "auth.example.com"]);
        let redis = Redis::start(dir.path());
        seed(&redis);
        let body = config(&pki.ca_pem, &server, &redis.url(), max_staleness);
        let a = Certgate::start(&replica_dir(dir.path(), "a"), &body, true);
        let mut me = Self {
            b: Certgate::start(&replica_dir(dir.path(), "b"), &body, false),
            dir,
            pki,
            alice,
            redis,
            body,
            a,
        };
        // B was started before A's keys could be copied: restart it with them.
        me.b = me.replica("b");
        // A seeded history of 200,000 entries takes seconds to read in a debug build.
        for cg in [&me.a, &me.b] {
            ready_within(cg, Duration::from_secs(30));
        }
        Some(me)
    }

    /// A replica with A's signing keys (as an operator copies `data_dir/keys`) and no other
    /// state: whatever it knows of revocations, it learnt from Redis.
    pub fn replica(&self, name: &str) -> Certgate {
        let dir = replica_dir(self.dir.path(), name);
        copy_dir(&self.a.dir.join("data/keys"), &dir.join("data/keys"));
        Certgate::start(&dir, &self.body, false)
    }

    pub fn curl(&self) -> Curl {
        Curl::new(self.dir.path()).cacert(&self.pki.ca_pem)
    }

    pub fn sign_in(&self) -> String {
        let r = self
            .curl()
            .cert(&self.alice.cert, &self.alice.key)
            .get(&self.a.mtls("/auth"));
        assert_eq!(r.status, 200, "{r:?}");
        format!(
            "Cookie: __Host-certgate={}",
            cookie_value(&r, "__Host-certgate")
        )
    }

    pub fn bearer(&self) -> String {
        let r = self
            .curl()
            .cert(&self.alice.cert, &self.alice.key)
            .post(&self.a.mtls("/token"), "");
        assert_eq!(r.status, 200, "{r:?}");
        let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        format!(
            "Authorization: Bearer {}",
            json["access_token"].as_str().unwrap()
        )
    }

    pub fn verify(&self, cg: &Certgate, credential: &str) -> u16 {
        self.curl()
            .header(credential)
            .header("X-Original-URL: https://app.example.com/")
            .get(&cg.http("/verify"))
            .status
    }
}

fn replica_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies the files of `from` into a new `to` (as an operator copies `data_dir/keys`).
pub fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn ready(cg: &Certgate) -> u16 {
    Curl::new(&cg.dir)
        .try_get(&cg.http("/readyz"))
        .map_or(0, |r| r.status)
}

pub fn ready_within(cg: &Certgate, limit: Duration) {
    let deadline = Instant::now() + limit;
    while ready(cg) != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready within {limit:?}:\n{}",
            cg.logs()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Polls until `done`; fails when a check that *started* after `limit` still says no (a
/// check's own time, slow on a loaded machine, does not count).
pub fn within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let started = Instant::now();
        if done() {
            return;
        }
        assert!(started < deadline, "{what} took longer than {limit:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn replicas_share_revocations_through_redis_and_keep_them_across_a_redis_restart() {
    let Some(mut r) = Replicas::start("10s") else {
        return;
    };
    let cookie = r.sign_in();
    let bearer = r.bearer();
    assert_eq!(
        (r.verify(&r.b, &cookie), r.verify(&r.b, &bearer)),
        (200, 200),
        "B verifies what A signed"
    );

    // A session ended on A (POST /logout) is refused by B within a second.
    let out = r
        .curl()
        .cert(&r.alice.cert, &r.alice.key)
        .header(&cookie)
        .header("Sec-Fetch-Site: same-origin")
        .post(&r.a.mtls("/logout"), "");
    assert_eq!(out.status, 200, "{out:?}");
    within(SECOND, "B refusing A's log-out", || {
        r.verify(&r.b, &cookie) == 401
    });
    assert_eq!(r.verify(&r.b, &bearer), 200, "only that session");

    // A revoked certificate serial ends its live cookie and its bearer tokens, on both.
    let cookie2 = r.sign_in();
    assert_eq!(r.verify(&r.b, &cookie2), 200);
    let serial = certgate::cert::ClientCert::parse(&r.alice.issued.cert_der)
        .unwrap()
        .serial
        .to_string();
    let said = revoke_cli(&r.a.dir.join("certgate.toml"), &["--serial", &serial]);
    assert!(said.contains("Redis"), "the CLI says where it went: {said}");
    // Without the config, the CLI would write a database no replica reads: it refuses.
    let out = std::process::Command::new(crate::harness::certgate::binary())
        .args(["revoke", "--user", "bob", "--data-dir"])
        .arg(r.a.dir.join("data"))
        .env_remove("CERTGATE_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("keeps revocations in Redis"),
        "{out:?}"
    );
    within(SECOND, "the serial on both replicas", || {
        [&r.a, &r.b]
            .iter()
            .all(|cg| r.verify(cg, &cookie2) == 401 && r.verify(cg, &bearer) == 401)
    });

    // Redis restarts: the replicas reconnect by themselves, and a new replica learns every
    // revocation from what Redis kept.
    r.redis.restart();
    let c = r.replica("c");
    for cg in [&r.a, &r.b, &c] {
        ready_within(cg, Duration::from_secs(3));
    }
    for credential in [&cookie, &cookie2, &bearer] {
        for cg in [&r.a, &r.b, &c] {
            assert_eq!(r.verify(cg, credential), 401, "{credential}");
        }
    }
    // And changes flow again after the restart.
    let r2 = r.curl().get(&c.http("/healthz"));
    assert_eq!(r2.status, 200);
    let phone = r.pki.user("alice");
    let signed_in = r
        .curl()
        .cert(&phone.cert, &phone.key)
        .get(&r.a.mtls("/auth"));
    assert_eq!(signed_in.status, 200, "{signed_in:?}");
    let cookie3 = format!(
        "Cookie: __Host-certgate={}",
        cookie_value(&signed_in, "__Host-certgate")
    );
    assert_eq!(r.verify(&c, &cookie3), 200);
    let serial = certgate::cert::ClientCert::parse(&phone.issued.cert_der)
        .unwrap()
        .serial
        .to_string();
    revoke_cli(&r.a.dir.join("certgate.toml"), &["--device", &serial]);
    within(SECOND, "a revocation after the Redis restart", || {
        [&r.a, &r.b, &c]
            .iter()
            .all(|cg| r.verify(cg, &cookie3) == 401)
    });
}

#[test]
fn redis_down_answers_503_once_max_staleness_passes_and_service_returns_within_2_s() {
    let Some(mut r) = Replicas::start("1s") else {
        return;
    };
    let good = r.sign_in();
    let revoked = r.bearer();
    let jti = jti(revoked.rsplit(' ').next().unwrap());
    let out = r
        .curl()
        .cert(&r.alice.cert, &r.alice.key)
        .post(&r.a.mtls("/admin/revoke"), &format!("jti={jti}"));
    assert_eq!(out.status, 200, "{out:?}");
    within(SECOND, "the jti on B", || r.verify(&r.b, &revoked) == 401);
    assert_eq!(r.verify(&r.b, &good), 200);

    r.redis.stop();
    let stopped = Instant::now();
    // From now on the revoked token is never let in; the good one turns 503 once the view is
    // older than max_staleness (1 s), with no cookie cleared and no redirect.
    loop {
        assert_ne!(r.verify(&r.b, &revoked), 200, "a revoked token let in");
        if r.verify(&r.b, &good) == 503 {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(3),
            "never 503:\n{}",
            r.b.logs()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_fails_closed(&r.b, r.curl(), &good);
    assert_eq!(r.verify(&r.b, &revoked), 503);
    // A revocation asked for while Redis is away is refused loudly, not pretended.
    let out = r
        .curl()
        .cert(&r.alice.cert, &r.alice.key)
        .post(&r.a.mtls("/admin/revoke"), "user=bob");
    assert_eq!(out.status, 503, "{out:?}");

    // A replica started while Redis is away knows nothing yet: not ready, and 503, never 200.
    let c = r.replica("c");
    assert_eq!(ready(&c), 503);
    assert_eq!(r.verify(&c, &good), 503);
    assert_eq!(r.verify(&c, &revoked), 503);

    // Redis back: normal service within two seconds, without a restart.
    r.redis.restart();
    let back = Instant::now();
    within(Duration::from_secs(2), "service back", || {
        [&r.a, &r.b, &c].iter().all(|cg| r.verify(cg, &good) == 200)
    });
    assert_eq!(r.verify(&c, &revoked), 401);

    // An entry no replica can read (a newer certgate's, say) is not skipped: checks answer 503
    // until it is dealt with, then service returns by itself.
    let id = r.redis.cli(&[
        "XADD",
        "certgate:revocations",
        "*",
        "e",
        r#"{"kind":"from_the_future","id":"x"}"#,
    ]);
    within(Duration::from_secs(3), "503 on an unreadable entry", || {
        r.verify(&r.b, &good) == 503
    });
    assert_ne!(r.verify(&r.b, &revoked), 200);
    assert!(r
        .b
        .logs()
        .contains("not a revocation this certgate can read"));
    r.redis.cli(&["XDEL", "certgate:revocations", &id]);
    within(
        Duration::from_secs(2),
        "service back after the entry went",
        || r.verify(&r.b, &good) == 200,
    );
    assert_eq!(r.verify(&r.b, &revoked), 401);
    eprintln!("service back {:?} after Redis", back.elapsed());
    assert_eq!(r.verify(&r.b, &revoked), 401);
    assert_eq!(ready(&r.b), 200);
}

/// nginx with both replicas as `/verify` upstreams, under a steady stream of requests with a
/// good cookie, a revoked one and none; replica B is killed mid-way.
#[test]
fn a_replica_killed_under_load_through_nginx_never_lets_anyone_in_wrongly() {
    if !require("nginx") {
        return;
    }
    let Some(r) = Replicas::start("10s") else {
        return;
    };
    let port = free_port();
    let upstream = Upstream::start();
    let tls = r.pki.server(&["auth.example.com", "app.example.com"]);
    let (cert, key) = (
        tls.cert.display().to_string(),
        tls.key.display().to_string(),
    );
    let shipped = include_str!("../../config/proxies/nginx.conf");
    let mut conf = shipped.to_string();
    for (from, to) in [
        (
            "server 127.0.0.1:9180;".to_string(),
            format!(
                "server 127.0.0.1:{};\n    server 127.0.0.1:{};",
                r.a.http_port, r.b.http_port
            ),
        ),
        (
            "listen 443 ssl".into(),
            format!("listen 127.0.0.1:{port} ssl"),
        ),
        (
            "127.0.0.1:8123".into(),
            format!("127.0.0.1:{}", upstream.port),
        ),
        ("/etc/nginx/tls/auth.example.com.pem".into(), cert.clone()),
        ("/etc/nginx/tls/auth.example.com.key".into(), key.clone()),
        ("/etc/nginx/tls/app.example.com.pem".into(), cert),
        ("/etc/nginx/tls/app.example.com.key".into(), key),
        (
            "/etc/certgate/client-ca.pem".into(),
            r.pki.ca_pem.display().to_string(),
        ),
    ] {
        assert!(
            conf.contains(&from),
            "the shipped nginx.conf lacks `{from}`"
        );
        conf = conf.replace(&from, &to);
    }
    let _nginx = Nginx::start(r.dir.path(), port, &conf);

    let good = r.sign_in();
    let revoked = r.sign_in();
    let out = r
        .curl()
        .cert(&r.alice.cert, &r.alice.key)
        .header(&revoked)
        .header("Sec-Fetch-Site: same-origin")
        .post(&r.a.mtls("/logout"), "");
    assert_eq!(out.status, 200);
    within(SECOND, "the log-out on B", || {
        r.verify(&r.b, &revoked) == 401
    });

    let app = format!("https://app.example.com:{port}/");
    let ca = r.pki.ca_pem.clone();
    let stop = Arc::new(AtomicBool::new(false));
    // Each worker: one curl keeping its connection for a batch of requests.
    let workers: Vec<_> = [Some(good.clone()), Some(revoked.clone()), None, Some(good)]
        .into_iter()
        .map(|credential| {
            let args = vec![
                "--cacert".to_string(),
                ca.display().to_string(),
                "--resolve".into(),
                format!("app.example.com:{port}:127.0.0.1"),
            ];
            load_worker(app.clone(), args, credential, Arc::clone(&stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    drop(r.b); // SIGKILL, mid-load
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);

    let mut good_ok = 0;
    let mut good_failed = 0;
    for w in workers {
        let (credential, codes) = w.join().unwrap();
        assert!(codes.len() > 20, "the load ran: {codes:?}");
        match credential {
            Some(c) if c == revoked => {
                assert!(
                    codes.iter().all(|&c| c != 200),
                    "a revoked cookie let in: {codes:?}"
                )
            }
            None => assert!(
                codes.iter().all(|&c| c != 200),
                "no cookie let in: {codes:?}"
            ),
            Some(_) => {
                good_ok += codes.iter().filter(|&&c| c == 200).count();
                good_failed += codes.iter().filter(|&&c| c != 200).count();
            }
        }
    }
    eprintln!("good cookie through nginx: {good_ok} allowed, {good_failed} failed");
    assert!(good_ok > 40, "{good_ok}");
    // At most the requests in flight when B died: one per worker.
    assert!(good_failed <= 4, "{good_failed} failures");
}

/// Months of history: 200,000 revocations written long ago (stream ids of 2020), all expired
/// but 1,000, then a few of today's.
fn old_history(redis: &Redis, live_until: i64) {
    let mut resp = Vec::new();
    for i in 0..200_000u32 {
        let entry = if i % 200 == 0 {
            format!(r#"{{"kind":"jti","id":"live-{i}","until":{live_until}}}"#)
        } else {
            format!(r#"{{"kind":"jti","id":"old-{i}","until":1600000100}}"#)
        };
        let id = format!("1600000000000-{i}");
        let args = ["XADD", "certgate:revocations", &id, "e", &entry];
        resp.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            resp.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    let mut pipe = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &redis.port.to_string(), "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut pipe.stdin.take().unwrap(), &resp).unwrap();
    let out = pipe.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("errors: 0, replies: 200000"), "{said}");
}

fn used_memory(redis: &Redis) -> u64 {
    redis
        .cli(&["INFO", "memory"])
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn redis_stays_bounded_by_the_live_revocations_and_a_new_replica_catches_up_from_the_snapshot() {
    let live_until = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let mut before = 0;
    let Some(r) = Replicas::start_seeded("10s", |redis| {
        old_history(redis, live_until);
        before = used_memory(redis);
    }) else {
        return;
    };
    // The first replica to read the history compacts it: the snapshot keeps the 1,000 live
    // ids, the stream loses the expired history.
    let trimmed = Instant::now() + Duration::from_secs(5);
    // Left: the compaction's own mark (which a certgate from before the snapshot cannot read).
    while !only_the_mark_left(&r.redis) {
        assert!(
            Instant::now() < trimmed,
            "the stream is not trimmed; A:\n{}\nB:\n{}",
            r.a.logs(),
            r.b.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let snapshot = r.redis.cli(&["GET", "certgate:revocations:snapshot"]);
    let lines: Vec<&str> = snapshot.lines().collect();
    assert_eq!(
        lines[0], "1600000000000-199999",
        "the snapshot covers the whole history"
    );
    assert_eq!(lines.len(), 1 + 1_000, "the live ids only");
    assert!(
        lines[1..].iter().all(|l| l.contains("\"live-")),
        "{:?}",
        &lines[1..4]
    );
    let after = used_memory(&r.redis);
    eprintln!("Redis used_memory: {before} bytes with the history, {after} after compaction");
    assert!(after * 4 < before, "{after} of {before} bytes");

    // Today's revocations, then one more compaction (a replica starting), then a stream that
    // lost even those (as a Redis restored from a trimmed copy would): a new replica knows them
    // from the snapshot alone.
    let tokens: Vec<String> = (0..5).map(|_| r.bearer()).collect();
    let config = r.a.dir.join("certgate.toml");
    for t in &tokens {
        let id = crate::revocation::jti(t.trim_start_matches("Authorization: Bearer "));
        crate::revocation::revoke_cli(&config, &["--jti", &id]);
    }
    r.redis.cli(&["DEL", "certgate:revocations:compacting"]);
    let d = r.replica("d");
    ready_within(&d, Duration::from_secs(5));
    within(
        Duration::from_secs(5),
        "today's revocations in the snapshot",
        || {
            r.redis
                .cli(&["GET", "certgate:revocations:snapshot"])
                .lines()
                .count()
                == 1 + 1_000 + 5
        },
    );
    r.redis
        .cli(&["XTRIM", "certgate:revocations", "MAXLEN", "0"]);
    let c = r.replica("c");
    ready_within(&c, Duration::from_secs(5));
    for t in &tokens {
        assert_eq!(r.verify(&c, t), 401, "a revoked token on the new replica");
        assert_eq!(
            r.verify(&r.b, t),
            401,
            "a revoked token on a replica that followed"
        );
    }
    assert_eq!(
        r.verify(&c, &r.bearer()),
        200,
        "a live token on the new replica"
    );
}

#[test]
fn no_replica_compacts_while_a_certgate_that_reads_the_stream_alone_follows_it() {
    // An older certgate, as Redis sees it: a connection without certgate's name blocked in
    // XREAD on the stream (redis-cli stands in for it).
    let mut old = None;
    let Some(r) = Replicas::start_seeded("10s", |redis| {
        for i in 0..10 {
            let id = format!("1600000000000-{i}");
            redis.cli(&[
                "XADD",
                "certgate:revocations",
                &id,
                "e",
                r#"{"kind":"jti","id":"gone","until":1600000100}"#,
            ]);
        }
        old = Some(
            Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &redis.port.to_string()])
                .args([
                    "XREAD",
                    "BLOCK",
                    "0",
                    "STREAMS",
                    "certgate:revocations",
                    "$",
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let listed = Instant::now() + Duration::from_secs(5);
        while !redis.cli(&["CLIENT", "LIST"]).contains("cmd=xread") {
            assert!(Instant::now() < listed, "redis-cli never blocked");
            std::thread::sleep(Duration::from_millis(20));
        }
    }) else {
        return;
    };
    within(Duration::from_secs(5), "the refusal logged", || {
        r.a.logs()
            .contains("not compacting until every replica is upgraded")
            || r.b
                .logs()
                .contains("not compacting until every replica is upgraded")
    });
    assert_eq!(r.redis.cli(&["XLEN", "certgate:revocations"]), "10");
    assert_eq!(
        r.redis.cli(&["EXISTS", "certgate:revocations:snapshot"]),
        "0"
    );
    let mut old = old.unwrap();
    old.kill().unwrap();
    old.wait().unwrap();
    // Upgraded: the next whole read (a replica starting) compacts.
    let c = r.replica("c");
    ready_within(&c, Duration::from_secs(5));
    within(Duration::from_secs(5), "the stream trimmed", || {
        only_the_mark_left(&r.redis)
    });
}

/// The kids of a JWKS document at `url`.
fn kids(curl: Curl, url: &str) -> Vec<String> {
    let jwks: serde_json::Value = serde_json::from_str(&curl.get(url).body).unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    kids.sort();
    kids
}

/// Two replicas on "separate hosts" (nothing copied between their data directories) sharing
/// revocations and signing keys through Redis (`store.key_encryption_file`), with `[oidc]`.
struct Hosts {
    dir: tempfile::TempDir,
    pki: Pki,
    alice: CertFiles,
    redis: Redis,
    secret: PathBuf,
    body: String,
    a: Certgate,
    b: Certgate,
}

impl Hosts {
    fn start() -> Option<Self> {
        if !require("redis-server") || !require("redis-cli") || !require("curl") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path(), "Family CA");
        let alice = pki.user("alice");
        let server = pki.server(&["localhost", "127.0.0.1", "auth.example.com"]);
        let redis = Redis::start(dir.path());
        let secret = dir.path().join("key-encryption");
        std::fs::write(&secret, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n").unwrap();
        let body = format!(
            "{}key_encryption_file = \"{}\"\n[oidc]\n[[oidc.clients]]\nid = \"app\"\nsecret = \"app-secret-0123456789abcdef\"\nredirect_uris = [\"https://app.example.com/cb\"]\n",
            config(&pki.ca_pem, &server, &redis.url(), "10s"),
            secret.display()
        );
        let a = Certgate::start(&replica_dir(dir.path(), "a"), &body, true);
        ready_within(&a, Duration::from_secs(10));
        let b = Certgate::start(&replica_dir(dir.path(), "b"), &body, false);
        ready_within(&b, Duration::from_secs(10));
        Some(Self {
            dir,
            pki,
            alice,
            redis,
            secret,
            body,
            a,
            b,
        })
    }

    /// A bearer token from A (the certificate at /token), as an Authorization header.
    fn bearer(&self) -> String {
        let minted = Curl::new(self.dir.path())
            .cacert(&self.pki.ca_pem)
            .cert(&self.alice.cert, &self.alice.key)
            .post(&self.a.mtls("/token"), "");
        assert_eq!(minted.status, 200, "{minted:?}");
        let token: serde_json::Value = serde_json::from_str(&minted.body).unwrap();
        format!(
            "Authorization: Bearer {}",
            token["access_token"].as_str().unwrap()
        )
    }

    fn rotate(&self) {
        let rotated = Command::new(crate::harness::certgate::binary())
            .args([
                "keys",
                "rotate",
                "--config",
                "certgate.toml",
                "--publish-ahead",
                "1s",
            ])
            .current_dir(&self.a.dir)
            .output()
            .unwrap();
        assert!(rotated.status.success(), "{rotated:?}");
    }
}

#[test]
fn replicas_on_separate_hosts_share_signing_keys_through_redis_and_follow_a_rotation_within_a_second(
) {
    let Some(h) = Hosts::start() else {
        return;
    };
    let bearer = h.bearer();
    let Hosts {
        dir,
        pki,
        alice: _,
        redis,
        secret,
        body,
        a,
        b,
    } = h;
    let curl = || Curl::new(dir.path()).cacert(&pki.ca_pem);
    for path in ["/.well-known/jwks.json", "/oidc/jwks"] {
        assert_eq!(
            kids(curl(), &a.http(path)),
            kids(curl(), &b.http(path)),
            "{path}"
        );
    }
    assert!(
        !redis.cli(&["HGETALL", "certgate:keys"]).contains("BEGIN"),
        "the keys in Redis are sealed"
    );
    let verify = |cg: &Certgate| {
        curl()
            .header(&bearer)
            .header("X-Original-URL: https://app.example.com/")
            .get(&cg.http("/verify"))
            .status
    };
    assert_eq!(verify(&b), 200, "B verifies what A signed");

    // A rotation on A's host reaches B within a second: the next keys in both JWKS.
    let before = kids(curl(), &b.http("/.well-known/jwks.json"));
    let rotated = Command::new(crate::harness::certgate::binary())
        .args(["keys", "rotate", "--config", "certgate.toml"])
        .current_dir(&a.dir)
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{rotated:?}");
    let at = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(1);
    while kids(curl(), &b.http("/.well-known/jwks.json")).len() <= before.len() {
        assert!(
            Instant::now() < deadline,
            "B does not publish the next key: {:?} vs A {:?} (files A {:?} B {:?}); rotate said {}{}\nB:\n{}",
            kids(curl(), &b.http("/.well-known/jwks.json")),
            kids(curl(), &a.http("/.well-known/jwks.json")),
            std::fs::read_dir(a.dir.join("data/keys")).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>(),
            std::fs::read_dir(b.dir.join("data/keys")).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>(),
            String::from_utf8_lossy(&rotated.stdout),
            String::from_utf8_lossy(&rotated.stderr),
            b.logs()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    eprintln!(
        "B had the rotated keys {} ms after the rotation",
        at.elapsed().as_millis()
    );
    within(
        Duration::from_secs(1),
        "B publishes the next ID-token keys",
        || kids(curl(), &b.http("/oidc/jwks")) == kids(curl(), &a.http("/oidc/jwks")),
    );
    assert_eq!(
        kids(curl(), &a.http("/.well-known/jwks.json")),
        kids(curl(), &b.http("/.well-known/jwks.json"))
    );
    assert_eq!(verify(&b), 200, "the old key still verifies");

    // Redis loses everything: the replicas give it their keys back (the next replica to start
    // must not make new ones for everybody), and a new host takes them.
    let kids_a = kids(curl(), &a.http("/.well-known/jwks.json"));
    redis.cli(&["FLUSHALL"]);
    within(Duration::from_secs(2), "the keys published again", || {
        redis.cli(&["HLEN", "certgate:keys"]) != "0"
    });
    let d = Certgate::start(&replica_dir(dir.path(), "d"), &body, false);
    ready_within(&d, Duration::from_secs(10));
    assert_eq!(kids(curl(), &d.http("/.well-known/jwks.json")), kids_a);
    assert_eq!(kids(curl(), &b.http("/.well-known/jwks.json")), kids_a);

    // A third host with another secret does not start on keys it cannot open.
    let c_dir = replica_dir(dir.path(), "c");
    let wrong = dir.path().join("wrong-key");
    std::fs::write(&wrong, "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\n").unwrap();
    std::fs::write(
        c_dir.join("certgate.toml"),
        body.replace(&secret.display().to_string(), &wrong.display().to_string())
            + &format!("[listen]\nhttp = \"127.0.0.1:{}\"\n", free_port()),
    )
    .unwrap();
    let mut c = Command::new(crate::harness::certgate::binary())
        .args(["serve", "--config", "certgate.toml"])
        .current_dir(&c_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = c.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            c.kill().unwrap();
            panic!("certgate started on keys it cannot open");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut said).unwrap();
    assert!(!status.success());
    assert!(said.contains("store.key_encryption_file"), "{said}");
}

/// Checks on replica B under a steady load (a good bearer token, a revoked one, none) while
/// the keys are rotated twice and Redis restarts between: no wrong allow, and no failed check
/// at all (Redis is back long before the view is older than store.max_staleness).
#[test]
fn keys_rotated_and_redis_restarted_under_load_never_let_anyone_in_wrongly_nor_fail_a_check() {
    let Some(mut h) = Hosts::start() else {
        return;
    };
    let good = h.bearer();
    let revoked = h.bearer();
    let id = crate::revocation::jti(revoked.trim_start_matches("Authorization: Bearer "));
    crate::revocation::revoke_cli(&h.a.dir.join("certgate.toml"), &["--jti", &id]);
    let verify = h.b.http("/verify");
    within(SECOND, "the revocation on B", || {
        Curl::new(h.dir.path())
            .header(&revoked)
            .header("X-Original-URL: https://app.example.com/")
            .get(&verify)
            .status
            == 401
    });
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = [Some(good.clone()), Some(revoked), None]
        .into_iter()
        .map(|credential| {
            let args = vec![
                "-H".to_string(),
                "X-Original-URL: https://app.example.com/".into(),
            ];
            load_worker(verify.clone(), args, credential, Arc::clone(&stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    h.rotate();
    std::thread::sleep(Duration::from_millis(1_500));
    h.redis.restart();
    std::thread::sleep(Duration::from_millis(1_500));
    h.rotate();
    std::thread::sleep(Duration::from_millis(1_500));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let (credential, codes) = w.join().unwrap();
        let count = |code: u16| codes.iter().filter(|&&c| c == code).count();
        let which = match credential.as_deref() {
            Some(c) if c == good => "good",
            Some(_) => "revoked",
            None => "none",
        };
        eprintln!(
            "{which}: {} checks, {} allowed, {} refused (401), {} 503",
            codes.len(),
            count(200),
            count(401),
            count(503)
        );
        assert!(codes.len() > 20, "{which}: too few checks ran: {codes:?}");
        match which {
            "good" => assert_eq!(
                count(200),
                codes.len(),
                "the good token failed a check: {codes:?}"
            ),
            _ => assert_eq!(count(401), codes.len(), "{which}: {codes:?}"),
        }
    }
    // The good token, minted before both rotations, still verifies; a new one too.
    let fresh = h.bearer();
    for t in [&good, &fresh] {
        assert_eq!(
            Curl::new(h.dir.path())
                .header(t)
                .header("X-Original-URL: https://app.example.com/")
                .get(&verify)
                .status,
            200
        );
    }
}

/// A thread sending `url` requests with curl (`args` first, then the `credential` header if
/// any), 20 a connection, until `stop`: the credential and every status it got.
fn load_worker(
    url: String,
    args: Vec<String>,
    credential: Option<String>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(Option<String>, Vec<u16>)> {
    std::thread::spawn(move || {
        let mut codes = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let mut cmd = Command::new("curl");
            cmd.args(["-s", "-w", "%{http_code}\\n", "--max-time", "5"])
                .args(&args);
            if let Some(c) = &credential {
                cmd.args(["-H", c]);
            }
            for _ in 0..20 {
                cmd.args(["-o", "/dev/null", &url]);
            }
            let out = cmd.output().unwrap();
            codes.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(|l| l.trim().parse::<u16>().unwrap_or(0)),
            );
        }
        (credential, codes)
    })
}

/// Whether the stream holds nothing but one compaction mark (an entry without `e`, which a
/// certgate from before the snapshot fails to read).
fn only_the_mark_left(redis: &Redis) -> bool {
    let range = redis.cli(&["XRANGE", "certgate:revocations", "-", "+"]);
    redis.cli(&["XLEN", "certgate:revocations"]) == "1"
        && range.contains("snapshot")
        && !range.lines().any(|l| l.trim() == "e")
}
