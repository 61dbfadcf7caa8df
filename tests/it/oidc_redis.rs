//! The OpenID Connect provider on replicas sharing a real redis-server (issue 17): a code made
//! on one replica is redeemed on another exactly once, a reused refresh token revokes its family
//! on every replica, and a revocation on one ends the grant on all within a second, with one
//! back-channel logout token for the app. The first tests drive the store itself (the same
//! guarantees as the database's, which `src/oidc/grants.rs` tests); the last drives two
//! certgate processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use certgate::oidc::device::{Devices, Poll, Request};
use certgate::oidc::grants::hash;
use certgate::oidc::{backchannel::Queue, Grants, NewGrant, Redeemed, Refreshed, Store};

use crate::harness::backchannel::Receiver;
use crate::harness::certgate::{run, Certgate};
use crate::harness::curl::{Curl, Response};
use crate::harness::pki::Pki;
use crate::harness::redis::Redis;
use crate::harness::require;
use crate::replicas::{copy_dir, ready_within, within};

fn redis() -> Option<(tempfile::TempDir, Redis)> {
    if !require("redis-server") || !require("redis-cli") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    Some((dir, redis))
}

/// A store on its own connections, as each replica has.
fn store(redis: &Redis) -> Store {
    Store::Redis(Arc::new(
        certgate::oidc::redis::Shared::new(&redis.url()).unwrap(),
    ))
}

fn alice() -> NewGrant {
    NewGrant {
        client_id: "app".into(),
        user: "alice".into(),
        sid: Some("s1".into()),
        cert_serial: Some("0a".into()),
        scopes: "openid profile".into(),
        nonce: Some("n".into()),
        auth_time: 100,
        created_ms: 100_000,
    }
}

#[test]
fn a_code_in_redis_is_redeemed_once_by_eight_replicas_and_its_replay_ends_the_grant() {
    let Some((_dir, redis)) = redis() else {
        return;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let g = Grants::new(store(&redis)).notifying(["app".to_string()], Duration::from_secs(3600));
    g.create(
        "g1",
        &alice(),
        &hash("code"),
        "https://app/cb",
        Some("ch"),
        now + 60,
    )
    .unwrap();
    let wins: Vec<Redeemed> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mine = Grants::new(store(&redis))
                        .notifying(["app".to_string()], Duration::from_secs(3600));
                    mine.redeem(&hash("code"), now).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let fresh: Vec<&Redeemed> = wins
        .iter()
        .filter(|r| matches!(r, Redeemed::Fresh { .. }))
        .collect();
    assert_eq!(fresh.len(), 1, "{wins:?}");
    let Redeemed::Fresh {
        grant,
        redirect_uri,
        challenge,
    } = fresh[0]
    else {
        unreachable!()
    };
    assert_eq!(
        (&grant.made, redirect_uri.as_str(), challenge.as_deref()),
        (&alice(), "https://app/cb", Some("ch"))
    );
    // The seven losers were replays: the grant is ended, and one logout token is queued.
    assert!(g.live().unwrap().is_empty());
    let queue = Queue::new(store(&redis));
    let queued = queue.claim(now * 1000 + 10, 10).unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(
        (
            queued[0].grant_id.as_str(),
            queued[0].sub.as_str(),
            queued[0].sid.as_deref()
        ),
        ("g1", "alice", Some("s1"))
    );
    assert_eq!(g.redeem(&hash("other"), now).unwrap(), Redeemed::Unknown);
}

#[test]
fn a_refresh_token_in_redis_rotates_and_its_reuse_on_another_replica_revokes_the_family() {
    let Some((_dir, redis)) = redis() else {
        return;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (a, b) = (Grants::new(store(&redis)), Grants::new(store(&redis)));
    a.create(
        "g1",
        &alice(),
        &hash("code"),
        "https://app/cb",
        None,
        now + 60,
    )
    .unwrap();
    assert!(matches!(
        a.redeem(&hash("code"), now).unwrap(),
        Redeemed::Fresh { .. }
    ));
    a.add_tokens(
        "g1",
        now,
        (&hash("at1"), now + 600),
        Some((&hash("rt1"), now + 9_000)),
        Some("thumb"),
    )
    .unwrap();
    let at1 = b.token(&hash("at1")).unwrap().unwrap();
    assert!(at1.usable(now) && at1.x5t.as_deref() == Some("thumb") && at1.issued == Some(now));
    assert!(b.access(&hash("at1"), now).unwrap().is_some());
    assert!(matches!(b.refresh(&hash("rt1"), now).unwrap(), Refreshed::Fresh(ref g) if !g.revoked));
    b.add_tokens(
        "g1",
        now,
        (&hash("at2"), now + 600),
        Some((&hash("rt2"), now + 9_000)),
        None,
    )
    .unwrap();
    assert!(b.token(&hash("rt1")).unwrap().unwrap().used);
    assert_eq!(a.refresh(&hash("rt1"), now).unwrap(), Refreshed::Reused);
    let Refreshed::Fresh(grant) = b.refresh(&hash("rt2"), now).unwrap() else {
        panic!("the newest token of the family is found, revoked");
    };
    assert!(grant.revoked);
    assert!(b.access(&hash("at2"), now).unwrap().unwrap().revoked);
    assert_eq!(
        a.refresh(&hash("at2"), now).unwrap(),
        Refreshed::Unknown,
        "an access token is no refresh token"
    );
    // One access token revoked on its own; an expired one is no access.
    a.create(
        "g2",
        &alice(),
        &hash("c2"),
        "https://app/cb",
        None,
        now + 60,
    )
    .unwrap();
    a.add_tokens("g2", now, (&hash("at3"), now + 600), None, None)
        .unwrap();
    a.add_tokens("g2", now, (&hash("at4"), now + 600), None, None)
        .unwrap();
    b.revoke_token(&hash("at3")).unwrap();
    assert!(a.access(&hash("at3"), now).unwrap().is_none());
    assert!(a.token(&hash("at3")).unwrap().unwrap().revoked);
    assert!(a.access(&hash("at4"), now).unwrap().is_some());
    assert!(a.access(&hash("at4"), now + 600).unwrap().is_none());
    assert_eq!(a.token(&hash("nothing")).unwrap(), None);
}

#[test]
fn a_grant_in_redis_ends_once_and_expires_with_what_can_use_it() {
    let Some((_dir, redis)) = redis() else {
        return;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let notified = |s| Grants::new(s).notifying(["app".to_string()], Duration::from_secs(1_000));
    let (a, b) = (notified(store(&redis)), notified(store(&redis)));
    let mut quiet = alice();
    quiet.client_id = "quiet".into();
    let mut signed_in = alice();
    signed_in.created_ms = now * 1000;
    // g1 signed in (a notified app), g2 a code never redeemed, g3 another app.
    a.create(
        "g1",
        &signed_in,
        &hash("c1"),
        "https://app/cb",
        None,
        now + 60,
    )
    .unwrap();
    a.create(
        "g2",
        &alice(),
        &hash("c2"),
        "https://app/cb",
        None,
        now + 60,
    )
    .unwrap();
    a.create("g3", &quiet, &hash("c3"), "https://app/cb", None, now + 60)
        .unwrap();
    a.add_tokens("g1", now, (&hash("at1"), now + 100), None, None)
        .unwrap();
    a.add_tokens("g3", now, (&hash("at3"), now + 100), None, None)
        .unwrap();
    assert_eq!(b.live().unwrap().len(), 3);
    assert!(a.revoke("g3", now * 1000).unwrap());
    assert!(!b.revoke("g3", now * 1000).unwrap(), "already ended");
    let queue = Queue::new(store(&redis));
    assert_eq!(queue.pending().unwrap(), 0, "quiet takes no logout token");

    let ttl = |key: &str| redis.cli(&["TTL", key]).trim().parse::<i64>().unwrap();
    // A code is remembered a minute past its expiry (a replay still ends its grant), and so is
    // its grant; a signed-in grant of a notified app for as long as keep.
    let c2 = ttl(&format!("certgate:oidc:code:{}", hash("c2")));
    assert!((110..=120).contains(&c2), "{c2}");
    let g1 = ttl("certgate:oidc:grant:g1");
    assert!(
        (990..=1_000).contains(&g1),
        "kept for its app's session: {g1}"
    );
    let g2 = ttl("certgate:oidc:grant:g2");
    assert!((110..=120).contains(&g2), "{g2}");
    assert_eq!(a.prune(now + 130).unwrap(), 2, "g2 and g3");
    let live: Vec<String> = b.live().unwrap().into_iter().map(|g| g.id).collect();
    assert_eq!(live, ["g1"]);
}

#[test]
fn a_device_request_in_redis_is_approved_once_and_polled_once() {
    let Some((_dir, redis)) = redis() else {
        return;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (a, b) = (Devices::new(store(&redis)), Devices::new(store(&redis)));
    let tv = Request {
        client_id: "tv".into(),
        scopes: "openid".into(),
    };
    a.create("h", "BCDF-GHJK", &tv, now + 600, 5).unwrap();
    assert!(
        b.create("h2", "BCDF-GHJK", &tv, now + 600, 5).is_err(),
        "a user code is never given twice"
    );
    // Each poll sooner than the interval adds 5 s to it (RFC 8628 §3.5), on any replica.
    assert_eq!(b.poll("h", "tv", now).unwrap(), Poll::Pending);
    assert_eq!(b.poll("h", "tv", now + 2).unwrap(), Poll::SlowDown);
    assert_eq!(a.poll("h", "tv", now + 9).unwrap(), Poll::SlowDown);
    assert_eq!(b.poll("h", "tv", now + 23).unwrap(), Poll::SlowDown);
    assert_eq!(a.poll("h", "tv", now + 43).unwrap(), Poll::Pending);
    assert_eq!(b.pending("BCDF-GHJK", now + 44).unwrap(), Some(tv.clone()));
    let mut made = alice();
    made.client_id = "tv".into();
    assert!(a
        .decide("BCDF-GHJK", Some(("g1", &made)), now + 44)
        .unwrap());
    assert!(
        !b.decide("BCDF-GHJK", None, now + 44).unwrap(),
        "decided already"
    );
    assert_eq!(b.pending("BCDF-GHJK", now + 45).unwrap(), None);
    let Poll::Approved(g) = b.poll("h", "tv", now + 40).unwrap() else {
        panic!("approved");
    };
    assert_eq!((g.id.as_str(), &g.made), ("g1", &made));
    assert_eq!(a.poll("h", "tv", now + 60).unwrap(), Poll::Spent);
    assert_eq!(a.poll("h", "other", now + 60).unwrap(), Poll::Unknown);
    a.create("h3", "BCDF-GHJL", &tv, now + 600, 5).unwrap();
    assert!(b.decide("BCDF-GHJL", None, now).unwrap());
    assert_eq!(a.poll("h3", "tv", now + 30).unwrap(), Poll::Denied);
    assert_eq!(a.poll("h3", "tv", now + 600).unwrap(), Poll::Expired);
}

#[test]
fn a_logout_delivery_in_redis_is_claimed_by_one_replica_and_retried_after_a_failure() {
    let Some((_dir, redis)) = redis() else {
        return;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let g = Grants::new(store(&redis)).notifying(["app".to_string()], Duration::from_secs(60));
    g.create(
        "g1",
        &alice(),
        &hash("c1"),
        "https://app/cb",
        None,
        now + 60,
    )
    .unwrap();
    let t = now * 1000;
    assert!(g.revoke("g1", t).unwrap());
    let (a, b) = (Queue::new(store(&redis)), Queue::new(store(&redis)));
    assert!(a.any_due(t).unwrap() && !a.any_due(t - 1).unwrap());
    let got = a.claim(t, 10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].attempts, got[0].created_ms), (0, t));
    assert!(b.claim(t + 1, 10).unwrap().is_empty(), "leased to a");
    assert!(!b.any_due(t + 1).unwrap());
    let retry = a.failed(&got[0], t + 5, "503").unwrap();
    assert_eq!(retry, certgate::oidc::backchannel::Retry::At(t + 1_005));
    assert!(b.claim(t + 1_004, 10).unwrap().is_empty());
    let again = b.claim(t + 1_005, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(b.pending().unwrap(), 1);
    b.done(again[0].id).unwrap();
    assert_eq!(a.pending().unwrap(), 0);
    assert!(a.claim(t + 500_000, 10).unwrap().is_empty());
}

const SECRET: &str = "grafana-secret-0123456789abcdef";
const CALLBACK: &str = "https://app.example.test/callback";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

#[test]
fn two_replicas_sharing_redis_share_codes_and_refresh_families_and_a_revocation_on_one_ends_the_sign_in_on_both(
) {
    if !require("curl") {
        return;
    }
    let Some((dir, redis)) = redis() else {
        return;
    };
    let rp = Receiver::start(&[]);
    let pki = Pki::new(dir.path(), "Family CA");
    let alice = pki.user("alice");
    let server = pki.server(&["localhost", "127.0.0.1", "auth.example.com"]);
    let body = format!(
        r#"{base}
[oidc]
[[oidc.clients]]
id = "grafana"
secret = "{SECRET}"
redirect_uris = ["{CALLBACK}"]
backchannel_logout_uri = "{rp}"
"#,
        base = crate::replicas::config(&pki.ca_pem, &server, &redis.url(), "10s"),
        rp = rp.url(),
    );
    let a_dir = dir.path().join("a");
    std::fs::create_dir_all(&a_dir).unwrap();
    let a = Certgate::start(&a_dir, &body, true);
    // B has A's keys (as an operator copies them to another host) and nothing else.
    let b_dir = dir.path().join("b");
    for keys in ["keys", "oidc-keys"] {
        copy_dir(
            &a_dir.join("data").join(keys),
            &b_dir.join("data").join(keys),
        );
    }
    let b = Certgate::start(&b_dir, &body, false);
    for cg in [&a, &b] {
        ready_within(cg, Duration::from_secs(5));
    }
    let curl = || Curl::new(dir.path()).cacert(&pki.ca_pem);
    let code = || {
        let r = curl().cert(&alice.cert, &alice.key).get(&format!(
            "{}?response_type=code&client_id=grafana&redirect_uri={}&scope={}&state=st",
            a.mtls("/oidc/authorize"),
            enc(CALLBACK),
            enc("openid profile offline_access")
        ));
        assert_eq!(r.status, 302, "{r:?}");
        let location = url::Url::parse(r.header("location").unwrap()).unwrap();
        let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1;
        code.into_owned()
    };
    let token = |cg: &Certgate, form: &str| {
        curl()
            .arg("-u")
            .arg(format!("grafana:{SECRET}"))
            .post(&cg.http("/oidc/token"), form)
    };
    let exchange = |cg: &Certgate, code: &str| {
        token(
            cg,
            &format!(
                "grant_type=authorization_code&code={}&redirect_uri={}",
                enc(code),
                enc(CALLBACK)
            ),
        )
    };
    let refresh = |cg: &Certgate, t: &serde_json::Value| {
        token(
            cg,
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                enc(t["refresh_token"].as_str().unwrap())
            ),
        )
    };
    let userinfo = |cg: &Certgate, t: &serde_json::Value| {
        curl()
            .header(&format!(
                "Authorization: Bearer {}",
                t["access_token"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no access token: {t}"))
            ))
            .get(&cg.http("/oidc/userinfo"))
            .status
    };

    // A code made on A is redeemed on B, once.
    let first = code();
    let on_b = exchange(&b, &first);
    assert_eq!(on_b.status, 200, "{on_b:?}");
    let signed_in = json(&on_b);
    assert_eq!(json(&exchange(&a, &first))["error"], "invalid_grant");
    // The replay ended that sign-in everywhere (RFC 6749 §4.1.2).
    assert_eq!(
        (userinfo(&a, &signed_in), userinfo(&b, &signed_in)),
        (401, 401)
    );

    // A refresh on A rotates; the old token reused on B ends the family on both.
    let family = json(&exchange(&a, &code()));
    let rotated = refresh(&a, &family);
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let rotated = json(&rotated);
    assert_eq!(userinfo(&b, &rotated), 200);
    assert_eq!(json(&refresh(&b, &family))["error"], "invalid_grant");
    assert_eq!(json(&refresh(&a, &rotated))["error"], "invalid_grant");
    assert_eq!(userinfo(&a, &rotated), 401);

    // A live sign-in, used on B; revoked through A; over on B within a second, and the app
    // told once (both replicas sweep, one queues).
    rp.wait_for(2, Duration::from_secs(2));
    let before = rp.posts().len();
    assert_eq!(before, 2, "the two ended grants' logout tokens");
    let live = json(&exchange(&a, &code()));
    assert_eq!(userinfo(&b, &live), 200);
    let live = json(&refresh(&b, &live));
    assert_eq!(userinfo(&a, &live), 200);
    let (status, out) = run(
        &a_dir,
        &["revoke", "--config", "certgate.toml", "--user", "alice"],
    );
    assert_eq!(status, 0, "{out}");
    let revoked = Instant::now();
    within(Duration::from_secs(1), "userinfo refused on B", || {
        userinfo(&b, &live) == 401
    });
    assert_eq!(json(&refresh(&b, &live))["error"], "invalid_grant");
    let posts = rp.wait_for(before + 1, Duration::from_secs(1));
    assert_eq!(
        posts.len(),
        before + 1,
        "no logout token within 1 s of the revocation"
    );
    assert!(posts[before].at.duration_since(revoked) <= Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(rp.posts().len(), before + 1, "one token, once");
    // Redis away: nothing is issued and no token is taken for live (503, the RFC's
    // temporarily_unavailable where it has one); back with Redis.
    let next = code();
    let mut redis = redis;
    redis.stop();
    let away = exchange(&b, &next);
    assert_eq!(away.status, 503, "{away:?}");
    assert_eq!(userinfo(&b, &rotated), 503);
    redis.restart();
    for cg in [&a, &b] {
        ready_within(cg, Duration::from_secs(5));
    }
    let back = exchange(&a, &next);
    assert_eq!(
        back.status, 200,
        "the code was not spent while Redis was away: {back:?}"
    );
    assert_eq!(userinfo(&b, &json(&back)), 200);
    for data in [a_dir.join("data"), b_dir.join("data")] {
        if data.join("certgate.db").exists() {
            let grants: i64 = certgate::db::Db::open(&data)
                .unwrap()
                .read(|c| c.query_row("SELECT count(*) FROM oidc_grants", [], |r| r.get(0)))
                .unwrap();
            assert_eq!(
                grants,
                0,
                "the grants are in Redis, not in {}",
                data.display()
            );
        }
    }
}
