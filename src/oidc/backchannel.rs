//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a grant ends, its app is
//! sent a logout token naming the user (`sub`) and the certgate session (`sid`).
//!
//! The tokens wait in a queue in the database (`oidc_logout_deliveries`), filled in the same
//! transaction that ends a grant, and are sent by a worker thread, never by a request thread.
//! A server takes (claims) a row by one atomic `UPDATE … RETURNING`, holding it for
//! [`LEASE_MS`]: two servers on one data directory never both send one token, and a server
//! that dies mid-send leaves its rows to the other once the lease runs out. A failed try
//! (anything but 200/204, or no connection) is retried after 1 s, doubling up to
//! [`MAX_BACKOFF_MS`], and given up (logged) [`GIVE_UP_MS`] after the first.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;
use serde::Serialize;

use super::settings::Client;
use super::store::{Store, StoreError};
use super::OidcKeys;

/// How long a server holds a claimed delivery before another may take it over.
pub const LEASE_MS: i64 = 60_000;
/// The longest wait between two tries.
pub const MAX_BACKOFF_MS: i64 = 5 * 60_000;
/// How long after it was queued a delivery is given up.
pub const GIVE_UP_MS: i64 = 60 * 60_000;
/// How long a logout token may be used (the app checks `exp`; each try signs a new one).
pub const TOKEN_TTL: i64 = 120;
/// The longest one POST may take, connecting included.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// The event that makes a JWT a logout token (§2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub client_id: String,
    pub grant_id: String,
    pub sub: String,
    pub sid: Option<String>,
    /// Tries that failed so far.
    pub attempts: i64,
    pub created_ms: i64,
}

/// What became of a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Tried again at this time (ms).
    At(i64),
    /// Too old: dropped.
    GaveUp,
}

/// The wait after the `attempts`-th failed try: 1 s, 2 s, 4 s, … up to [`MAX_BACKOFF_MS`].
pub fn backoff_ms(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    1000_i64
        .saturating_mul(1_i64 << doublings)
        .min(MAX_BACKOFF_MS)
}

/// Queues a logout token for the grant `grant_id` of `client_id`, in the transaction that ends
/// the grant.
///
/// # Errors
/// When the row cannot be written (the transaction then ends nothing).
pub fn enqueue_in(
    tx: &rusqlite::Transaction<'_>,
    client_id: &str,
    grant_id: &str,
    sub: &str,
    sid: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO oidc_logout_deliveries (client_id, grant_id, sub, sid, created_ms, due_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![client_id, grant_id, sub, sid, now_ms],
    )
    .map(drop)
}

/// The queue of logout tokens, in the database.
#[derive(Debug, Clone)]
pub struct Queue {
    store: Store,
}

impl Queue {
    pub fn new(store: impl Into<Store>) -> Self {
        Self {
            store: store.into(),
        }
    }

    /// Whether a delivery is due and free (a read: the claim's write lock is taken only then).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn any_due(&self, now_ms: i64) -> Result<bool, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.any_due(now_ms),
        };
        Ok(db.read(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM oidc_logout_deliveries
                 WHERE due_ms <= ?1 AND claimed_until_ms <= ?1)",
                [now_ms],
                |r| r.get(0),
            )
        })?)
    }

    /// Takes up to `limit` due deliveries for [`LEASE_MS`]: no other caller gets them meanwhile.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn claim(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.claim(now_ms, limit, LEASE_MS),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(db.write(|tx| {
            let mut claim = tx.prepare(
                "UPDATE oidc_logout_deliveries SET claimed_until_ms = ?1 + ?3
                 WHERE id IN (SELECT id FROM oidc_logout_deliveries
                     WHERE due_ms <= ?1 AND claimed_until_ms <= ?1 ORDER BY due_ms LIMIT ?2)
                 RETURNING id, client_id, grant_id, sub, sid, attempts, created_ms",
            )?;
            let rows = claim.query_map(params![now_ms, limit, LEASE_MS], |r| {
                Ok(Delivery {
                    id: r.get(0)?,
                    client_id: r.get(1)?,
                    grant_id: r.get(2)?,
                    sub: r.get(3)?,
                    sid: r.get(4)?,
                    attempts: r.get(5)?,
                    created_ms: r.get(6)?,
                })
            })?;
            rows.collect()
        })?)
    }

    /// Removes a delivery: sent, or no longer wanted.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn done(&self, id: i64) -> Result<(), StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.done(id),
        };
        Ok(db.write(|tx| {
            tx.execute("DELETE FROM oidc_logout_deliveries WHERE id = ?1", [id])
                .map(drop)
        })?)
    }

    /// Records a failed try: due again after [`backoff_ms`], or given up when it was queued
    /// [`GIVE_UP_MS`] ago.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn failed(&self, d: &Delivery, now_ms: i64, why: &str) -> Result<Retry, StoreError> {
        if now_ms.saturating_sub(d.created_ms) >= GIVE_UP_MS {
            self.done(d.id)?;
            return Ok(Retry::GaveUp);
        }
        let attempts = d.attempts.saturating_add(1);
        let due = now_ms.saturating_add(backoff_ms(attempts));
        match &self.store {
            Store::Redis(r) => r.failed(d.id, attempts, due, why)?,
            Store::Db(db) => db.write(|tx| {
                tx.execute(
                    "UPDATE oidc_logout_deliveries
                     SET attempts = ?2, due_ms = ?3, claimed_until_ms = 0, last_error = ?4 WHERE id = ?1",
                    params![d.id, attempts, due, why],
                )
                .map(drop)
            })?,
        }
        Ok(Retry::At(due))
    }

    /// How many deliveries wait (sent ones are gone).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn pending(&self) -> Result<i64, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.pending(),
        };
        Ok(db.read(|c| {
            c.query_row("SELECT COUNT(*) FROM oidc_logout_deliveries", [], |r| {
                r.get(0)
            })
        })?)
    }
}

/// The claims of a logout token (§2.4): no `nonce`, ever.
#[derive(Debug, Serialize)]
pub struct LogoutClaims<'a> {
    pub iss: &'a str,
    pub aud: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
    pub events: serde_json::Value,
}

/// A logout token for `d`, signed with the client's algorithm (RS256 unless it says otherwise:
/// several apps refuse EdDSA here), `typ: logout+jwt`.
///
/// # Errors
/// When the system random number generator or signing fails.
pub fn logout_token(
    keys: &OidcKeys,
    issuer: &str,
    client: &Client,
    d: &Delivery,
    now: i64,
) -> Result<String, String> {
    let claims = LogoutClaims {
        iss: issuer,
        aud: &client.id,
        iat: now,
        exp: now.saturating_add(TOKEN_TTL),
        jti: super::secret().ok_or("the system random number generator failed")?,
        sub: &d.sub,
        sid: d.sid.as_deref(),
        events: serde_json::json!({ EVENT: {} }),
    };
    keys.sign_typed(client.alg, "logout+jwt", &claims)
}

/// Sends logout tokens: an HTTP client that verifies https against the system's roots, follows
/// no redirect and gives up on a POST after [`POST_TIMEOUT`].
#[derive(Debug)]
pub struct Sender {
    agent: ureq::Agent,
}

impl Sender {
    /// A sender trusting the system's CA certificates (those it can read; none: https fails,
    /// http works).
    pub fn new() -> Self {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "a system CA certificate cannot be read: back-channel logout over https may fail");
        }
        let roots: Vec<ureq::tls::Certificate<'static>> = found
            .certs
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
            .build();
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(POST_TIMEOUT))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("certgate/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build();
        Self {
            agent: config.into(),
        }
    }

    /// POSTs `logout_token=…` to `uri`; 200 and 204 are success (§2.8).
    ///
    /// # Errors
    /// The status the app answered, or why it could not be reached.
    pub fn post(&self, uri: &str, token: &str) -> Result<(), String> {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("logout_token", token)
            .finish();
        let res = self
            .agent
            .post(uri)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Cache-Control", "no-cache, no-store")
            .send(body)
            .map_err(|e| e.to_string())?;
        match res.status().as_u16() {
            200 | 204 => Ok(()),
            other => Err(format!("it answered {other}")),
        }
    }
}

impl Default for Sender {
    fn default() -> Self {
        Self::new()
    }
}

/// How many deliveries one round sends at once (each on its own thread).
const BATCH: usize = 8;

/// What one round of [`deliver_due`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub delivered: u64,
    pub retry: u64,
    pub gave_up: u64,
    /// The app has no `backchannel_logout_uri` any more (a reload removed it).
    pub dropped: u64,
}

/// Sends the due logout tokens (up to [`BATCH`], in parallel) and records each outcome: sent,
/// due again later, given up, or dropped because the app no longer has a
/// `backchannel_logout_uri`.
///
/// # Errors
/// When the queue cannot be read or written.
pub fn deliver_due(
    provider: &super::Provider,
    sender: &Sender,
    now_ms: i64,
) -> Result<Tally, StoreError> {
    let queue = &provider.deliveries;
    let mut tally = Tally::default();
    if !queue.any_due(now_ms)? {
        return Ok(tally);
    }
    let claimed = queue.claim(now_ms, BATCH)?;
    let now = now_ms.div_euclid(1000);
    let outcomes: Vec<(Delivery, Option<Result<(), String>>)> = std::thread::scope(|s| {
        let handles: Vec<_> = claimed
            .into_iter()
            .map(|d| {
                s.spawn(move || {
                    let settings = &provider.settings;
                    let client = settings.client(&d.client_id);
                    let Some((client, uri)) =
                        client.and_then(|c| c.backchannel_logout_uri.as_deref().map(|u| (c, u)))
                    else {
                        return (d, None);
                    };
                    let sent = logout_token(&provider.keys, &settings.issuer, client, &d, now)
                        .and_then(|token| sender.post(uri, &token));
                    (d, Some(sent))
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    for (d, outcome) in outcomes {
        match outcome {
            None => {
                tracing::info!(client = %d.client_id, grant = %d.grant_id, "no back-channel logout URI for this client (any more): its logout token is dropped");
                queue.done(d.id)?;
                tally.dropped += 1;
            }
            Some(Ok(())) => {
                tracing::info!(target: "audit", event = "oidc_backchannel_logout", client = %d.client_id, user = %d.sub, grant = %d.grant_id, attempts = d.attempts + 1, "logout token delivered");
                queue.done(d.id)?;
                tally.delivered += 1;
            }
            Some(Err(why)) => match queue.failed(&d, now_ms, &why)? {
                Retry::At(due) => {
                    tally.retry += 1;
                    tracing::warn!(client = %d.client_id, user = %d.sub, attempts = d.attempts + 1, error = %why, retry_in_ms = due - now_ms, "back-channel logout failed; it is tried again");
                }
                Retry::GaveUp => {
                    tally.gave_up += 1;
                    tracing::error!(event = "oidc_backchannel_gave_up", client = %d.client_id, user = %d.sub, grant = %d.grant_id, attempts = d.attempts + 1, error = %why, "back-channel logout given up after an hour of tries: the app may still hold this sign-in");
                }
            },
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn queue() -> (tempfile::TempDir, Queue) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        db.write(|tx| enqueue_in(tx, "app", "g1", "alice", Some("s1"), 1_000))
            .unwrap();
        (dir, Queue::new(db))
    }

    #[test]
    fn backoff_doubles_from_one_second_and_is_capped() {
        let waits: Vec<i64> = (1..=10).map(backoff_ms).collect();
        assert_eq!(
            waits,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000]
        );
        assert_eq!(backoff_ms(1_000), MAX_BACKOFF_MS);
    }

    #[test]
    fn a_claimed_delivery_is_nobody_elses_until_its_lease_ends() {
        let (_d, q) = queue();
        assert!(q.any_due(1_000).unwrap());
        let got = q.claim(1_000, 10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].sub.as_str(), got[0].sid.as_deref(), got[0].attempts),
            ("alice", Some("s1"), 0)
        );
        assert!(q.claim(1_001, 10).unwrap().is_empty(), "claimed");
        assert!(!q.any_due(1_001).unwrap());
        // The claimer died: after the lease another takes it over.
        assert_eq!(q.claim(1_000 + LEASE_MS, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_failed_try_waits_longer_each_time_and_is_given_up_after_an_hour() {
        let (_d, q) = queue();
        let mut now = 1_000;
        for expected_wait in [1_000, 2_000, 4_000] {
            let d = q.claim(now, 10).unwrap().pop().unwrap();
            assert_eq!(
                q.failed(&d, now, "500").unwrap(),
                Retry::At(now + expected_wait)
            );
            assert!(q.claim(now + expected_wait - 1, 10).unwrap().is_empty());
            now += expected_wait;
        }
        let d = q.claim(now, 10).unwrap().pop().unwrap();
        assert_eq!(d.attempts, 3);
        assert_eq!(
            q.failed(&d, 1_000 + GIVE_UP_MS, "down").unwrap(),
            Retry::GaveUp
        );
        assert_eq!(q.pending().unwrap(), 0);
    }

    #[test]
    fn two_claimers_on_their_own_connections_never_share_a_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        db.write(|tx| {
            for i in 0..50 {
                enqueue_in(tx, "app", &format!("g{i}"), "alice", None, 0)?;
            }
            Ok(())
        })
        .unwrap();
        let got: Vec<i64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let q = Queue::new(Arc::new(Db::open(dir.path()).unwrap()));
                        let mut mine = Vec::new();
                        for _ in 0..20 {
                            mine.extend(q.claim(10, 3).unwrap().into_iter().map(|d| d.id));
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: std::collections::BTreeSet<i64> = got.iter().copied().collect();
        assert_eq!((got.len(), unique.len()), (50, 50));
    }

    /// A one-request HTTP server answering `status`; returns its URL and the request it got.
    fn answering(status: u16) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/bc", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then as much body as it announced.
            let complete = |seen: &[u8]| {
                let text = String::from_utf8_lossy(seen).to_ascii_lowercase();
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    return false;
                };
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                body.len() >= length
            };
            while !complete(&seen) {
                let n = stream.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            String::from_utf8_lossy(&seen).into_owned()
        });
        (url, handle)
    }

    #[test]
    fn the_sender_posts_a_form_and_takes_only_200_and_204_as_success() {
        let sender = Sender::new();
        for (status, ok) in [(200, true), (204, true), (302, false), (500, false)] {
            let (url, seen) = answering(status);
            assert_eq!(sender.post(&url, "a.b.c").is_ok(), ok, "{status}");
            let request = seen.join().unwrap();
            assert!(request.starts_with("POST /bc "), "{request}");
            assert!(
                request
                    .to_ascii_lowercase()
                    .contains("content-type: application/x-www-form-urlencoded"),
                "{request}"
            );
            assert!(request.ends_with("logout_token=a.b.c"), "{request}");
        }
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/bc", closed.local_addr().unwrap());
        drop(closed);
        assert!(sender.post(&url, "t").is_err(), "no connection");
    }

    #[test]
    fn a_logout_token_has_the_events_claim_and_no_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(crate::clock::FixedClock::at(100));
        let keys = OidcKeys::load_or_create(dir.path(), clock, 600).unwrap();
        let client = Client {
            id: "app".into(),
            secret: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: Some("http://app/bc".into()),
            alg: super::super::Alg::Rs256,
            auth_method: super::super::AuthMethod::None,
            scopes: std::collections::BTreeSet::new(),
            users: vec![],
            groups: vec![],
            tls_subject: None,
        };
        let d = Delivery {
            id: 1,
            client_id: "app".into(),
            grant_id: "g".into(),
            sub: "alice".into(),
            sid: Some("s1".into()),
            attempts: 0,
            created_ms: 0,
        };
        let jwt = logout_token(&keys, "https://idp", &client, &d, 100).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        let payload = jwt.split('.').nth(1).unwrap();
        use base64::Engine;
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["events"], serde_json::json!({ EVENT: {} }));
        assert_eq!(
            (
                claims["sub"].as_str(),
                claims["sid"].as_str(),
                claims["aud"].as_str()
            ),
            (Some("alice"), Some("s1"), Some("app"))
        );
        assert_eq!(claims["exp"], 100 + TOKEN_TTL);
        assert!(claims.get("nonce").is_none());
        // Signed with the client's own algorithm, whichever it is.
        for alg in super::super::Alg::ALL {
            let client = Client {
                alg,
                ..client.clone()
            };
            let jwt = logout_token(&keys, "https://idp", &client, &d, 100).unwrap();
            assert_eq!(
                jsonwebtoken::decode_header(&jwt).unwrap().alg,
                super::super::keys::jwt_alg(alg)
            );
        }
    }
}
