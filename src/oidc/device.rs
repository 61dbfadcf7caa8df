//! The device authorization grant (RFC 8628), for watches and TVs that cannot hold a
//! certificate: the device shows a short user code, a person opens the verification page on a
//! phone or browser that has a certificate (or a certgate session) and approves, and the device,
//! polling the token endpoint, gets its tokens. The grant is made from that phone's session and
//! certificate, so signing the phone out (`certgate revoke --device`) ends the device's grant
//! too.

use rusqlite::{params, OptionalExtension as _};

use super::grants::{insert_grant, load_grant, Grant, NewGrant};
use super::store::{Store, StoreError};

/// The letters of a user code: no vowels (no words), none that look alike (RFC 8628 §6.1).
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// A new user code, `XXXX-XXXX` (20^8 ≈ 2.6·10^10 of them, for a code that lives 10 minutes);
/// `None` only if the system RNG fails.
pub fn user_code() -> Option<String> {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    // 256 is not a multiple of 20: redraw the bytes that would bias the choice.
    let mut out = String::with_capacity(9);
    for (i, mut b) in bytes.into_iter().enumerate() {
        while b >= 240 {
            let mut one = [0u8; 1];
            aws_lc_rs::rand::fill(&mut one).ok()?;
            b = one[0];
        }
        if i == 4 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(b % 20)]));
    }
    Some(out)
}

/// A user code as typed: upper case, without spaces or dashes; `None` when it cannot be one.
pub fn normalize(typed: &str) -> Option<String> {
    let letters: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let ok = letters.len() == 8 && letters.bytes().all(|b| ALPHABET.contains(&b));
    ok.then(|| format!("{}-{}", &letters[..4], &letters[4..]))
}

/// A pending request, as the verification page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub client_id: String,
    pub scopes: String,
}

/// What a device's poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    Unknown,
    Expired,
    Pending,
    /// Polled sooner than its interval: the interval grows by 5 s (RFC 8628 §3.5).
    SlowDown,
    Denied,
    /// Approved: its grant, handed out once.
    Approved(Box<Grant>),
    /// Its tokens were handed out already.
    Spent,
}

#[derive(Debug, Clone)]
pub struct Devices {
    store: Store,
}

impl Devices {
    pub fn new(store: impl Into<Store>) -> Self {
        Self {
            store: store.into(),
        }
    }

    /// Stores a request: the device code by its hash, the user code as shown.
    ///
    /// # Errors
    /// When the database cannot be written (or the user code is taken: ask again).
    pub fn create(
        &self,
        device_hash: &str,
        user_code: &str,
        request: &Request,
        expires: i64,
        interval: i64,
    ) -> Result<(), StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => {
                return r.device_create(device_hash, user_code, request, expires, interval)
            }
        };
        Ok(db.write_relaxed(|tx| {
            tx.execute(
                "INSERT INTO oidc_device (device_hash, user_code, client_id, scopes, expires, poll_interval)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![device_hash, user_code, request.client_id, request.scopes, expires, interval],
            )
            .map(drop)
        })?)
    }

    /// The pending request with this user code, if it is still open.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn pending(&self, user_code: &str, now: i64) -> Result<Option<Request>, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.device_pending(user_code, now),
        };
        Ok(db.read(|conn| {
            conn.query_row(
                "SELECT client_id, scopes FROM oidc_device
                 WHERE user_code = ?1 AND status = 'pending' AND expires > ?2",
                params![user_code, now],
                |r| {
                    Ok(Request {
                        client_id: r.get(0)?,
                        scopes: r.get(1)?,
                    })
                },
            )
            .optional()
        })?)
    }

    /// Approves the pending request with this user code with a new grant (`grant_id`, `new`),
    /// or denies it (`None`). `false` when it is no longer pending.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn decide(
        &self,
        user_code: &str,
        approve: Option<(&str, &NewGrant)>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.device_decide(user_code, approve, now),
        };
        Ok(db.write(|tx| {
            let changed = match approve {
                Some((grant_id, new)) => {
                    insert_grant(tx, grant_id, new)?;
                    tx.execute(
                        "UPDATE oidc_device SET status = 'approved', grant_id = ?2
                         WHERE user_code = ?1 AND status = 'pending' AND expires > ?3",
                        params![user_code, grant_id, now],
                    )?
                }
                None => tx.execute(
                    "UPDATE oidc_device SET status = 'denied'
                     WHERE user_code = ?1 AND status = 'pending' AND expires > ?2",
                    params![user_code, now],
                )?,
            };
            if changed == 0 {
                // Not pending any more: the grant made for it must not outlive this.
                if let Some((grant_id, _)) = approve {
                    tx.execute("DELETE FROM oidc_grants WHERE id = ?1", [grant_id])?;
                }
            }
            Ok(changed == 1)
        })?)
    }

    /// A device's poll with its code (hash), as `client_id`: at most one poll ever gets
    /// `Approved`.
    ///
    /// # Errors
    /// When the database cannot be read or written.
    pub fn poll(&self, device_hash: &str, client_id: &str, now: i64) -> Result<Poll, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.device_poll(device_hash, client_id, now),
        };
        Ok(db.write_relaxed(|tx| {
            let row = tx
                .query_row(
                    "SELECT client_id, expires, poll_interval, last_poll, status, grant_id
                     FROM oidc_device WHERE device_hash = ?1",
                    [device_hash],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, Option<String>>(5)?,
                        ))
                    },
                )
                .optional()?;
            let Some((owner, expires, interval, last_poll, status, grant_id)) = row else {
                return Ok(Poll::Unknown);
            };
            if owner != client_id {
                return Ok(Poll::Unknown);
            }
            if expires <= now {
                return Ok(Poll::Expired);
            }
            if status == "pending" && now < last_poll.saturating_add(interval) {
                tx.execute(
                    "UPDATE oidc_device SET poll_interval = poll_interval + 5, last_poll = ?2 WHERE device_hash = ?1",
                    params![device_hash, now],
                )?;
                return Ok(Poll::SlowDown);
            }
            tx.execute(
                "UPDATE oidc_device SET last_poll = ?2 WHERE device_hash = ?1",
                params![device_hash, now],
            )?;
            match (status.as_str(), grant_id) {
                ("approved", Some(grant_id)) => {
                    let taken = tx.execute(
                        "UPDATE oidc_device SET status = 'spent' WHERE device_hash = ?1 AND status = 'approved'",
                        [device_hash],
                    )?;
                    match load_grant(tx, &grant_id)? {
                        Some(grant) if taken == 1 => Ok(Poll::Approved(Box::new(grant))),
                        _ => Ok(Poll::Spent),
                    }
                }
                ("denied", _) => Ok(Poll::Denied),
                ("spent", _) => Ok(Poll::Spent),
                _ => Ok(Poll::Pending),
            }
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use std::sync::Arc;

    fn devices() -> (tempfile::TempDir, Devices) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        (dir, Devices::new(db))
    }

    fn grant() -> NewGrant {
        NewGrant {
            client_id: "tv".into(),
            user: "alice".into(),
            sid: Some("s".into()),
            cert_serial: Some("0a".into()),
            scopes: "openid".into(),
            nonce: None,
            auth_time: 1,
            created_ms: 1_000,
        }
    }

    fn request() -> Request {
        Request {
            client_id: "tv".into(),
            scopes: "openid".into(),
        }
    }

    #[test]
    fn user_codes_are_eight_letters_of_the_alphabet_and_typing_is_forgiven() {
        for _ in 0..200 {
            let code = user_code().unwrap();
            assert_eq!(code.len(), 9);
            assert_eq!(normalize(&code).as_deref(), Some(code.as_str()));
            assert_eq!(
                normalize(&code.to_lowercase().replace('-', " ")).as_deref(),
                Some(code.as_str())
            );
        }
        assert_eq!(
            normalize("ABCD-EFGH"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalize("BCDF-GHJ"), None);
    }

    #[test]
    fn a_device_polls_pending_then_gets_its_grant_once() {
        let (_d, devices) = devices();
        devices
            .create("h", "BCDF-GHJK", &request(), 700, 5)
            .unwrap();
        assert_eq!(devices.poll("h", "tv", 100).unwrap(), Poll::Pending);
        assert_eq!(devices.poll("h", "tv", 102).unwrap(), Poll::SlowDown);
        assert_eq!(
            devices.poll("h", "tv", 109).unwrap(),
            Poll::SlowDown,
            "the interval grew to 10 s, counted from the last poll"
        );
        assert_eq!(
            devices.poll("h", "tv", 123).unwrap(),
            Poll::SlowDown,
            "15 s: too soon again"
        );
        assert_eq!(
            devices.poll("h", "tv", 143).unwrap(),
            Poll::Pending,
            "20 s after the last"
        );
        assert_eq!(devices.pending("BCDF-GHJK", 139).unwrap(), Some(request()));
        assert!(devices
            .decide("BCDF-GHJK", Some(("g1", &grant())), 120)
            .unwrap());
        assert!(
            !devices.decide("BCDF-GHJK", None, 121).unwrap(),
            "decided once"
        );
        assert_eq!(devices.pending("BCDF-GHJK", 121).unwrap(), None);
        let Poll::Approved(g) = devices.poll("h", "tv", 140).unwrap() else {
            panic!("not approved");
        };
        assert_eq!((g.id.as_str(), g.made.user.as_str()), ("g1", "alice"));
        assert_eq!(devices.poll("h", "tv", 160).unwrap(), Poll::Spent);
        assert_eq!(
            devices.poll("h", "other", 160).unwrap(),
            Poll::Unknown,
            "another client's code"
        );
    }

    #[test]
    fn a_denied_or_expired_request_gives_nothing() {
        let (_d, devices) = devices();
        devices
            .create("h1", "BCDF-GHJK", &request(), 700, 5)
            .unwrap();
        assert!(devices.decide("BCDF-GHJK", None, 100).unwrap());
        assert_eq!(devices.poll("h1", "tv", 200).unwrap(), Poll::Denied);
        devices
            .create("h2", "BCDF-GHJL", &request(), 700, 5)
            .unwrap();
        assert!(
            !devices
                .decide("BCDF-GHJL", Some(("g2", &grant())), 700)
                .unwrap(),
            "expired"
        );
        assert_eq!(devices.poll("h2", "tv", 700).unwrap(), Poll::Expired);
        let Store::Db(db) = &devices.store else {
            panic!("a database store");
        };
        let grants: i64 = db
            .read(|c| c.query_row("SELECT count(*) FROM oidc_grants", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(grants, 0, "no grant outlives a late approval");
    }
}
