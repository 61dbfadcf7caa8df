//! What certgate granted relying parties, in the database: a grant per sign-in to an app
//! (who, which client, which scopes, from which session and certificate), the authorization
//! code that starts it, and the access and refresh tokens made from it. Codes and tokens are
//! kept only as SHA-256 hashes; each is single use where the protocol says so, enforced by one
//! atomic `UPDATE … WHERE used = 0`, so two replicas or two threads cannot both win.
//!
//! A replayed code or a reused refresh token revokes its whole grant (RFC 6749 §4.1.2, and
//! refresh-token reuse detection of the OAuth 2.0 Security BCP).
//!
//! Issuing is written with [`Db::write_relaxed`] (no wait for the disk: a code exchange would
//! otherwise cost two disk flushes, and a flush is the slowest part of it); a power cut can
//! lose a code or token just issued, and then its app asks the person to sign in again. Every
//! revocation of a grant is written durably.

use std::sync::Arc;

use rusqlite::{params, OptionalExtension as _, Row};

use super::store::{Store, StoreError};

/// A new grant, as `/authorize` makes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewGrant {
    pub client_id: String,
    pub user: String,
    pub sid: Option<String>,
    pub cert_serial: Option<String>,
    /// Space-separated, as granted.
    pub scopes: String,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub created_ms: i64,
}

/// A grant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub made: NewGrant,
    pub revoked: bool,
}

impl Grant {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.made.scopes.split(' ').any(|s| s == scope)
    }
}

/// What presenting a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    Unknown,
    Expired,
    /// Used before: its grant is revoked now.
    Replayed,
    Fresh {
        grant: Box<Grant>,
        redirect_uri: String,
        challenge: Option<String>,
    },
}

/// A fresh code as [`Grants::peek_code`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    pub grant: Grant,
    pub redirect_uri: String,
    pub challenge: Option<String>,
}

/// The tokens [`Grants::redeem_and_add_tokens`] stores: hashes with their expiries, and the
/// thumbprint of the certificate they are bound to, as [`Grants::add_tokens`] takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewTokens<'a> {
    /// When they are issued (Unix seconds).
    pub issued: i64,
    pub access: (&'a str, i64),
    pub refresh: Option<(&'a str, i64)>,
    pub bound: Option<&'a str>,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    Unknown,
    Expired,
    /// Used before: the whole grant (every token of its family) is revoked now.
    Reused,
    Fresh(Grant),
}

/// Which token a hash names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Access,
    Refresh,
}

/// A token as stored, whatever its state: what introspection and revocation look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub expires: i64,
    /// `None` for tokens issued before certgate recorded it.
    pub issued: Option<i64>,
    /// A refresh token that was exchanged (rotated) already.
    pub used: bool,
    /// Revoked on its own (RFC 7009); a revoked grant is [`Grant::revoked`].
    pub revoked: bool,
    /// The thumbprint of the certificate it is bound to (RFC 8705 §3): it works only when
    /// presented over that certificate.
    pub x5t: Option<String>,
    pub grant: Grant,
}

impl Token {
    /// Whether a request over the certificate with thumbprint `presented` may use it.
    pub fn bound_to(&self, presented: Option<&str>) -> bool {
        match &self.x5t {
            None => true,
            Some(bound) => presented.is_some_and(|p| {
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    bound.as_bytes(),
                    p.as_bytes(),
                ))
            }),
        }
    }
}

impl Token {
    /// Whether the token itself still works at `now` (its grant's standing aside).
    pub fn usable(&self, now: i64) -> bool {
        self.expires > now && !self.used && !self.revoked && !self.grant.revoked
    }
}

/// SHA-256 of a code or token, hex.
pub fn hash(secret: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        secret.as_bytes(),
    ))
}

#[derive(Debug, Clone)]
pub struct Grants {
    store: Store,
    /// The clients told when a grant of theirs ends (those with a `backchannel_logout_uri`).
    notify: Arc<std::collections::BTreeSet<String>>,
    /// The same, as a JSON list (for the Redis scripts).
    notify_json: Arc<str>,
    /// How long (ms) such a client's grant is kept after its tokens expired, so that a later
    /// revocation still reaches the app's own session.
    keep_ms: i64,
}

const GRANT_COLUMNS: &str =
    "id, client_id, user, sid, cert_serial, scopes, nonce, auth_time, created_ms, revoked";

fn grant(row: &Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        id: row.get(0)?,
        made: NewGrant {
            client_id: row.get(1)?,
            user: row.get(2)?,
            sid: row.get(3)?,
            cert_serial: row.get(4)?,
            scopes: row.get(5)?,
            nonce: row.get(6)?,
            auth_time: row.get(7)?,
            created_ms: row.get(8)?,
        },
        revoked: row.get::<_, i64>(9)? != 0,
    })
}

fn load(tx: &rusqlite::Connection, id: &str) -> rusqlite::Result<Option<Grant>> {
    tx.prepare_cached(&format!(
        "SELECT {GRANT_COLUMNS} FROM oidc_grants WHERE id = ?1"
    ))?
    .query_row([id], grant)
    .optional()
}

impl Grants {
    pub fn new(store: impl Into<Store>) -> Self {
        Self {
            store: store.into(),
            notify: Arc::default(),
            notify_json: "[]".into(),
            keep_ms: 0,
        }
    }

    /// These grants, queueing a back-channel logout when a grant of one of `clients` ends, and
    /// keeping each of their grants that issued tokens for `keep` after it was made (an app's
    /// session outlives the tokens it signed in with: Grafana's lasts days after a 10-minute
    /// access token expired).
    #[must_use]
    pub fn notifying(
        mut self,
        clients: impl IntoIterator<Item = String>,
        keep: std::time::Duration,
    ) -> Self {
        self.notify = Arc::new(clients.into_iter().collect());
        self.notify_json = serde_json::to_string(&*self.notify)
            .unwrap_or_else(|_| "[]".into())
            .into();
        self.keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// Every grant not (yet) marked revoked.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn live(&self) -> Result<Vec<Grant>, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.live(),
        };
        Ok(db.read(|conn| {
            let mut all = conn.prepare(&format!(
                "SELECT {GRANT_COLUMNS} FROM oidc_grants WHERE revoked = 0"
            ))?;
            let rows = all.query_map([], grant)?;
            rows.collect()
        })?)
    }

    /// Stores a grant (id `id`) and the code that redeems it (by its hash).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn create(
        &self,
        id: &str,
        new: &NewGrant,
        code_hash: &str,
        redirect_uri: &str,
        challenge: Option<&str>,
        code_expires: i64,
    ) -> Result<(), StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => {
                return r.create(id, new, code_hash, redirect_uri, challenge, code_expires)
            }
        };
        Ok(db.write_relaxed(|tx| {
            insert_grant(tx, id, new)?;
            tx.prepare_cached(
                "INSERT INTO oidc_codes (hash, grant_id, redirect_uri, challenge, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![code_hash, id, redirect_uri, challenge, code_expires])?;
            Ok(())
        })?)
    }

    /// Uses the code with `code_hash`: at most one caller ever gets `Fresh`.
    ///
    /// # Errors
    /// When the database cannot be read or written.
    pub fn redeem(&self, code_hash: &str, now: i64) -> Result<Redeemed, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.redeem(code_hash, now, &self.notify_json),
        };
        let (found, replayed) = db.write_relaxed(|tx| take_code(tx, code_hash, now))?;
        if let Some(grant_id) = replayed {
            self.revoke(&grant_id, now.saturating_mul(1000))?;
        }
        Ok(found)
    }

    /// Stores the tokens issued for `grant_id` at `now` (by their hashes, with their expiries).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn add_tokens(
        &self,
        grant_id: &str,
        now: i64,
        access: (&str, i64),
        refresh: Option<(&str, i64)>,
        bound: Option<&str>,
    ) -> Result<(), StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => {
                let keep_s = self.keep_ms / 1000;
                return r.add_tokens(
                    grant_id,
                    now,
                    access,
                    refresh,
                    bound,
                    &self.notify_json,
                    keep_s,
                );
            }
        };
        let tokens = NewTokens {
            issued: now,
            access,
            refresh,
            bound,
        };
        Ok(db.write_relaxed(|tx| insert_tokens(tx, grant_id, &tokens))?)
    }

    /// The grant a fresh code (unused and unexpired) names, with the code's redirect URI and
    /// challenge, as they are now; nothing is used up. For working out, before the one write of
    /// [`Self::redeem_and_add_tokens`], whether the code's exchange will issue tokens.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn peek_code(&self, code_hash: &str, now: i64) -> Result<Option<Peeked>, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            // Nothing to save on Redis (a script each for `redeem` and `add_tokens`): the
            // exchange takes its two steps.
            Store::Redis(_) => return Ok(None),
        };
        Ok(db.read_relaxed(|conn| {
            let code = conn
                .prepare_cached(
                    "SELECT grant_id, redirect_uri, challenge FROM oidc_codes
                     WHERE hash = ?1 AND used = 0 AND expires > ?2",
                )?
                .query_row(params![code_hash, now], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })
                .optional()?;
            let Some((grant_id, redirect_uri, challenge)) = code else {
                return Ok(None);
            };
            Ok(load(conn, &grant_id)?.map(|grant| Peeked {
                grant,
                redirect_uri,
                challenge,
            }))
        })?)
    }

    /// [`Self::redeem`] and [`Self::add_tokens`] in one write: a code's exchange costs one
    /// transaction, not two. When the code is fresh, `accept` is shown what it found (its grant,
    /// redirect URI and challenge) and the tokens it returns are stored in
    /// the transaction that uses the code up (`true`: they were); when it returns `None` the
    /// code is used up alone, as by `redeem`. At most one caller ever gets `Fresh`; a replayed
    /// code revokes its grant. `accept` runs inside the write: it must not touch the database.
    ///
    /// # Errors
    /// When the store cannot be read or written (on the database, nothing of it was written).
    pub fn redeem_and_add_tokens<'t>(
        &self,
        code_hash: &str,
        now: i64,
        accept: impl FnOnce(&Grant, &str, Option<&str>) -> Option<NewTokens<'t>>,
    ) -> Result<(Redeemed, bool), StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(_) => {
                // Two writes, as `redeem` and `add_tokens` make them.
                let found = self.redeem(code_hash, now)?;
                let mut stored = false;
                if let Redeemed::Fresh {
                    grant,
                    redirect_uri,
                    challenge,
                } = &found
                {
                    if let Some(t) = accept(grant, redirect_uri, challenge.as_deref()) {
                        self.add_tokens(&grant.id, t.issued, t.access, t.refresh, t.bound)?;
                        stored = true;
                    }
                }
                return Ok((found, stored));
            }
        };
        let mut replayed = None;
        let found = db.write_relaxed(|tx| {
            let (found, used_by) = take_code(tx, code_hash, now)?;
            replayed = used_by;
            let mut stored = false;
            if let Redeemed::Fresh {
                grant,
                redirect_uri,
                challenge,
            } = &found
            {
                if let Some(tokens) = accept(grant, redirect_uri, challenge.as_deref()) {
                    insert_tokens(tx, &grant.id, &tokens)?;
                    stored = true;
                }
            }
            Ok((found, stored))
        })?;
        if let Some(grant_id) = replayed {
            self.revoke(&grant_id, now.saturating_mul(1000))?;
        }
        Ok(found)
    }

    /// Uses the refresh token with `hash`: at most one caller ever gets `Fresh`; a second
    /// use revokes the grant.
    ///
    /// # Errors
    /// When the database cannot be read or written.
    pub fn refresh(&self, hash: &str, now: i64) -> Result<Refreshed, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.refresh(hash, now, &self.notify_json),
        };
        let mut reused = None;
        let found = db.write_relaxed(|tx| {
            let taken = tx
                .query_row(
                    "UPDATE oidc_tokens SET used = 1 WHERE hash = ?1 AND kind = 'refresh' AND used = 0
                     RETURNING grant_id, expires",
                    [hash],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()?;
            let Some((grant_id, expires)) = taken else {
                let used: Option<String> = tx
                    .query_row(
                        "SELECT grant_id FROM oidc_tokens WHERE hash = ?1 AND kind = 'refresh'",
                        [hash],
                        |r| r.get(0),
                    )
                    .optional()?;
                return match used {
                    Some(grant_id) => {
                        reused = Some(grant_id);
                        Ok(Refreshed::Reused)
                    }
                    None => Ok(Refreshed::Unknown),
                };
            };
            if expires <= now {
                return Ok(Refreshed::Expired);
            }
            Ok(load(tx, &grant_id)?.map_or(Refreshed::Unknown, Refreshed::Fresh))
        })?;
        if let Some(grant_id) = reused {
            self.revoke(&grant_id, now.saturating_mul(1000))?;
        }
        Ok(found)
    }

    /// The grant of a live access token.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn access(&self, hash: &str, now: i64) -> Result<Option<Grant>, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => {
                return Ok(r.token(hash)?.and_then(|t| {
                    (t.kind == Kind::Access && t.expires > now && !t.revoked).then_some(t.grant)
                }))
            }
        };
        Ok(db.read(|conn| {
            let grant_id: Option<String> = conn
                .query_row(
                    "SELECT grant_id FROM oidc_tokens WHERE hash = ?1 AND kind = 'access' AND expires > ?2 AND revoked = 0",
                    params![hash, now],
                    |r| r.get(0),
                )
                .optional()?;
            match grant_id {
                Some(id) => load(conn, &id),
                None => Ok(None),
            }
        })?)
    }

    /// The token with `hash`, in whatever state (expired, used, revoked), and its grant.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn token(&self, hash: &str) -> Result<Option<Token>, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.token(hash),
        };
        Ok(db.read(|conn| {
            let row = conn
                .query_row(
                    "SELECT grant_id, kind, expires, issued, used, revoked, x5t FROM oidc_tokens WHERE hash = ?1",
                    [hash],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)? == "refresh",
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                            r.get::<_, i64>(4)? != 0,
                            r.get::<_, i64>(5)? != 0,
                            r.get::<_, Option<String>>(6)?,
                        ))
                    },
                )
                .optional()?;
            let Some((grant_id, refresh, expires, issued, used, revoked, x5t)) = row else {
                return Ok(None);
            };
            Ok(load(conn, &grant_id)?.map(|grant| Token {
                kind: if refresh { Kind::Refresh } else { Kind::Access },
                expires,
                issued,
                used,
                revoked,
                x5t,
                grant,
            }))
        })?)
    }

    /// Ends one token (its grant and the grant's other tokens live on).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn revoke_token(&self, hash: &str) -> Result<(), StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.revoke_token(hash),
        };
        Ok(db.write(|tx| {
            tx.execute("UPDATE oidc_tokens SET revoked = 1 WHERE hash = ?1", [hash])
                .map(drop)
        })?)
    }

    /// Ends a grant: every token made from it stops working, and its app is sent a logout
    /// token if it takes them. `true`: this call ended it (of two servers that find one grant
    /// dead at once, exactly one gets `true` and queues the logout token).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn revoke(&self, grant_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        match &self.store {
            Store::Db(db) => Ok(db.write(|tx| revoke_in(tx, grant_id, now_ms, &self.notify))?),
            Store::Redis(r) => r.revoke(grant_id, now_ms, &self.notify_json),
        }
    }

    /// Deletes expired codes and tokens, and grants nothing can use any more, except a live
    /// grant of a notified client that issued tokens, made less than `keep` ago (see
    /// [`Self::notifying`]): its app is still told when it ends.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn prune(&self, now: i64) -> Result<usize, StoreError> {
        let db = match &self.store {
            Store::Db(db) => db,
            Store::Redis(r) => return r.prune(now),
        };
        let notified = serde_json::to_string(&*self.notify).unwrap_or_else(|_| "[]".into());
        let kept_since = now.saturating_mul(1000).saturating_sub(self.keep_ms);
        Ok(db.write(|tx| {
            let codes = tx.execute("DELETE FROM oidc_codes WHERE expires <= ?1", [now])?
                + tx.execute("DELETE FROM oidc_device WHERE expires <= ?1", [now])?;
            let tokens = tx.execute("DELETE FROM oidc_tokens WHERE expires <= ?1", [now])?;
            let grants = tx.execute(
                "DELETE FROM oidc_grants WHERE NOT EXISTS (SELECT 1 FROM oidc_codes c WHERE c.grant_id = oidc_grants.id)
                 AND NOT EXISTS (SELECT 1 FROM oidc_tokens t WHERE t.grant_id = oidc_grants.id)
                 AND NOT EXISTS (SELECT 1 FROM oidc_device d WHERE d.grant_id = oidc_grants.id)
                 AND NOT (revoked = 0 AND tokens_issued = 1 AND created_ms > ?1
                     AND client_id IN (SELECT value FROM json_each(?2)))",
                params![kept_since, notified],
            )?;
            Ok(codes + tokens + grants)
        })?)
    }
}

/// Marks a live grant revoked and, for a client in `notify`, queues its logout token: both or
/// neither, and only by the one caller that found it live.
fn revoke_in(
    tx: &rusqlite::Transaction<'_>,
    grant_id: &str,
    now_ms: i64,
    notify: &std::collections::BTreeSet<String>,
) -> rusqlite::Result<bool> {
    let ended: Option<(String, String, Option<String>)> = tx
        .query_row(
            "UPDATE oidc_grants SET revoked = 1 WHERE id = ?1 AND revoked = 0
             RETURNING client_id, user, sid",
            [grant_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((client_id, user, sid)) = ended else {
        return Ok(false);
    };
    if notify.contains(&client_id) {
        super::backchannel::enqueue_in(tx, &client_id, grant_id, &user, sid.as_deref(), now_ms)?;
    }
    Ok(true)
}

/// A code's redemption in a transaction (for [`Grants::redeem`] and the exchange's one write;
/// statements prepared once per connection): uses the code up, and says what it found, with the
/// grant a replay names (to be revoked once the transaction is over).
fn take_code(
    tx: &rusqlite::Transaction<'_>,
    code_hash: &str,
    now: i64,
) -> rusqlite::Result<(Redeemed, Option<String>)> {
    let taken = tx
        .prepare_cached(
            "UPDATE oidc_codes SET used = 1 WHERE hash = ?1 AND used = 0
             RETURNING grant_id, redirect_uri, challenge, expires",
        )?
        .query_row([code_hash], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    let Some((grant_id, redirect_uri, challenge, expires)) = taken else {
        let used: Option<String> = tx
            .prepare_cached("SELECT grant_id FROM oidc_codes WHERE hash = ?1")?
            .query_row([code_hash], |r| r.get(0))
            .optional()?;
        return Ok(match used {
            Some(grant_id) => (Redeemed::Replayed, Some(grant_id)),
            None => (Redeemed::Unknown, None),
        });
    };
    if expires <= now {
        return Ok((Redeemed::Expired, None));
    }
    Ok((
        match load(tx, &grant_id)? {
            Some(grant) => Redeemed::Fresh {
                grant: Box::new(grant),
                redirect_uri,
                challenge,
            },
            None => Redeemed::Unknown,
        },
        None,
    ))
}

/// Stores issued tokens in a transaction (for [`Grants::add_tokens`] and the exchange's one
/// write; statements prepared once per connection).
fn insert_tokens(
    tx: &rusqlite::Transaction<'_>,
    grant_id: &str,
    tokens: &NewTokens<'_>,
) -> rusqlite::Result<()> {
    let now = tokens.issued;
    let mut insert = tx.prepare_cached(
        "INSERT INTO oidc_tokens (hash, grant_id, kind, expires, issued, x5t) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let (hash, expires) = tokens.access;
    insert.execute(params![
        hash,
        grant_id,
        "access",
        expires,
        now,
        tokens.bound
    ])?;
    if let Some((hash, expires)) = tokens.refresh {
        insert.execute(params![
            hash,
            grant_id,
            "refresh",
            expires,
            now,
            tokens.bound
        ])?;
    }
    tx.prepare_cached(
        "UPDATE oidc_grants SET tokens_issued = 1 WHERE id = ?1 AND tokens_issued = 0",
    )?
    .execute([grant_id])?;
    Ok(())
}

/// Stores a new grant (for a code, or a device's approval).
pub(super) fn insert_grant(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    new: &NewGrant,
) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO oidc_grants ({GRANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0)"
    ))?
    .execute(params![
        id,
        new.client_id,
        new.user,
        new.sid,
        new.cert_serial,
        new.scopes,
        new.nonce,
        new.auth_time,
        new.created_ms
    ])
    .map(drop)
}

/// A grant by id (for the device grant's exchange).
pub(super) fn load_grant(conn: &rusqlite::Connection, id: &str) -> rusqlite::Result<Option<Grant>> {
    load(conn, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn grants() -> (tempfile::TempDir, Grants) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        (dir, Grants::new(db))
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
    fn a_code_redeems_once_and_a_replay_revokes_its_grant() {
        let (_d, g) = grants();
        g.create(
            "g1",
            &alice(),
            &hash("code"),
            "https://app/cb",
            Some("ch"),
            160,
        )
        .unwrap();
        let Redeemed::Fresh {
            grant,
            redirect_uri,
            challenge,
        } = g.redeem(&hash("code"), 110).unwrap()
        else {
            panic!("not fresh");
        };
        assert_eq!(
            (grant.made, redirect_uri.as_str(), challenge.as_deref()),
            (alice(), "https://app/cb", Some("ch"))
        );
        g.add_tokens("g1", 100, (&hash("at"), 700), None, None)
            .unwrap();
        assert!(g.access(&hash("at"), 120).unwrap().is_some());
        assert_eq!(g.redeem(&hash("code"), 111).unwrap(), Redeemed::Replayed);
        assert!(
            g.access(&hash("at"), 120).unwrap().unwrap().revoked,
            "tokens of the code die with it"
        );
        assert_eq!(g.redeem(&hash("other"), 111).unwrap(), Redeemed::Unknown);
    }

    fn tokens(access: &str) -> NewTokens<'_> {
        NewTokens {
            issued: 105,
            access: (access, 700),
            refresh: None,
            bound: Some("x5t"),
        }
    }

    #[test]
    fn a_code_is_peeked_while_fresh_and_redeemed_with_its_tokens_in_one_write() {
        let (_d, g) = grants();
        g.create(
            "g1",
            &alice(),
            &hash("code"),
            "https://app/cb",
            Some("ch"),
            160,
        )
        .unwrap();
        assert_eq!(g.peek_code(&hash("code"), 160).unwrap(), None, "expired");
        assert_eq!(g.peek_code(&hash("other"), 110).unwrap(), None);
        let peeked = g.peek_code(&hash("code"), 110).unwrap().unwrap();
        assert_eq!(
            (
                peeked.grant.made.clone(),
                peeked.redirect_uri.as_str(),
                peeked.challenge.as_deref()
            ),
            (alice(), "https://app/cb", Some("ch"))
        );
        let at = hash("at");
        let mut shown = None;
        let (found, stored) = g
            .redeem_and_add_tokens(&hash("code"), 110, |grant, uri, challenge| {
                shown = Some((
                    grant.clone(),
                    uri.to_string(),
                    challenge.map(str::to_string),
                ));
                Some(tokens(&at))
            })
            .unwrap();
        assert!(stored && matches!(found, Redeemed::Fresh { .. }));
        let (grant, uri, challenge) = shown.unwrap();
        assert_eq!(
            Peeked {
                grant,
                redirect_uri: uri,
                challenge
            },
            peeked
        );
        let token = g.token(&at).unwrap().unwrap();
        assert_eq!(
            (
                token.kind,
                token.issued,
                token.expires,
                token.x5t.as_deref()
            ),
            (Kind::Access, Some(105), 700, Some("x5t"))
        );
        assert_eq!(g.peek_code(&hash("code"), 110).unwrap(), None, "used up");
        let (again, stored) = g
            .redeem_and_add_tokens(&hash("code"), 111, |_, _, _| {
                panic!("a used code is never shown")
            })
            .unwrap();
        assert_eq!((again, stored), (Redeemed::Replayed, false));
        assert!(
            g.access(&at, 120).unwrap().unwrap().revoked,
            "tokens of the code die with it"
        );
    }

    #[test]
    fn a_code_whose_tokens_are_refused_is_used_up_alone() {
        let (_d, g) = grants();
        g.create("g1", &alice(), &hash("code"), "https://app/cb", None, 160)
            .unwrap();
        let (found, stored) = g
            .redeem_and_add_tokens(&hash("code"), 110, |_, _, _| None)
            .unwrap();
        assert!(!stored && matches!(found, Redeemed::Fresh { .. }));
        assert_eq!(g.token(&hash("at")).unwrap(), None);
        assert_eq!(g.redeem(&hash("code"), 111).unwrap(), Redeemed::Replayed);
        let (late, _) = g
            .redeem_and_add_tokens(&hash("c2"), 110, |_, _, _| None)
            .unwrap();
        assert_eq!(late, Redeemed::Unknown);
    }

    #[test]
    fn eight_threads_redeem_one_code_with_tokens_and_exactly_one_stores_them() {
        let dir = tempfile::tempdir().unwrap();
        let g = Grants::new(Arc::new(Db::open(dir.path()).unwrap()));
        g.create("g1", &alice(), &hash("code"), "https://app/cb", None, 160)
            .unwrap();
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let dir = dir.path();
                    s.spawn(move || {
                        let mine = Grants::new(Arc::new(Db::open(dir).unwrap()));
                        let at = hash(&format!("at{i}"));
                        let (_, stored) = mine
                            .redeem_and_add_tokens(&hash("code"), 110, |_, _, _| Some(tokens(&at)))
                            .unwrap();
                        usize::from(stored)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
        let stored = (0..8)
            .filter(|i| g.token(&hash(&format!("at{i}"))).unwrap().is_some())
            .count();
        assert_eq!(stored, 1);
    }

    #[test]
    fn a_late_code_is_expired_and_used_up() {
        let (_d, g) = grants();
        g.create("g1", &alice(), &hash("code"), "https://app/cb", None, 160)
            .unwrap();
        assert_eq!(g.redeem(&hash("code"), 160).unwrap(), Redeemed::Expired);
        assert_eq!(g.redeem(&hash("code"), 100).unwrap(), Redeemed::Replayed);
    }

    #[test]
    fn eight_threads_redeem_one_code_and_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let g = Grants::new(Arc::new(Db::open(dir.path()).unwrap()));
        g.create("g1", &alice(), &hash("code"), "https://app/cb", None, 160)
            .unwrap();
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        // Each its own connection, as replicas on one host would be.
                        let mine = Grants::new(Arc::new(Db::open(dir.path()).unwrap()));
                        usize::from(matches!(
                            mine.redeem(&hash("code"), 110).unwrap(),
                            Redeemed::Fresh { .. }
                        ))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
    }

    #[test]
    fn a_refresh_token_rotates_and_its_reuse_revokes_the_family() {
        let (_d, g) = grants();
        g.create("g1", &alice(), &hash("code"), "https://app/cb", None, 160)
            .unwrap();
        g.add_tokens(
            "g1",
            100,
            (&hash("at1"), 700),
            Some((&hash("rt1"), 9_000)),
            None,
        )
        .unwrap();
        assert!(
            matches!(g.refresh(&hash("rt1"), 200).unwrap(), Refreshed::Fresh(ref gr) if !gr.revoked)
        );
        g.add_tokens(
            "g1",
            100,
            (&hash("at2"), 800),
            Some((&hash("rt2"), 9_000)),
            None,
        )
        .unwrap();
        assert_eq!(g.refresh(&hash("rt1"), 201).unwrap(), Refreshed::Reused);
        let Refreshed::Fresh(grant) = g.refresh(&hash("rt2"), 202).unwrap() else {
            panic!("the newest token of the family is found, revoked");
        };
        assert!(grant.revoked);
        assert!(g.access(&hash("at2"), 300).unwrap().unwrap().revoked);
        assert_eq!(
            g.refresh(&hash("at2"), 300).unwrap(),
            Refreshed::Unknown,
            "an access token is no refresh token"
        );
    }

    #[test]
    fn one_access_token_is_revoked_on_its_own_and_every_token_is_found_in_any_state() {
        let (_d, g) = grants();
        g.create("g1", &alice(), &hash("code"), "https://app/cb", None, 160)
            .unwrap();
        g.add_tokens(
            "g1",
            150,
            (&hash("at1"), 700),
            Some((&hash("rt1"), 9_000)),
            None,
        )
        .unwrap();
        g.add_tokens("g1", 150, (&hash("at2"), 700), None, None)
            .unwrap();
        let at1 = g.token(&hash("at1")).unwrap().unwrap();
        assert_eq!(
            (at1.kind, at1.issued, at1.expires, at1.usable(200)),
            (Kind::Access, Some(150), 700, true)
        );
        assert!(!at1.usable(700), "expired at its expiry");
        g.revoke_token(&hash("at1")).unwrap();
        assert!(g.access(&hash("at1"), 200).unwrap().is_none());
        let at1 = g.token(&hash("at1")).unwrap().unwrap();
        assert!(at1.revoked && !at1.usable(200));
        assert!(
            g.access(&hash("at2"), 200).unwrap().is_some(),
            "its grant lives on"
        );
        assert!(g.token(&hash("rt1")).unwrap().unwrap().usable(200));
        assert!(matches!(
            g.refresh(&hash("rt1"), 200).unwrap(),
            Refreshed::Fresh(_)
        ));
        let rt1 = g.token(&hash("rt1")).unwrap().unwrap();
        assert_eq!(
            (rt1.kind, rt1.used, rt1.usable(200)),
            (Kind::Refresh, true, false)
        );
        assert_eq!(g.token(&hash("nothing")).unwrap(), None);
    }

    #[test]
    fn ending_a_grant_queues_one_logout_token_for_a_notified_client_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let g = Grants::new(Arc::clone(&db))
            .notifying(["app".to_string()], std::time::Duration::from_secs(3600));
        let mut other = alice();
        other.client_id = "quiet".into();
        g.create("g1", &alice(), &hash("c1"), "https://app/cb", None, 160)
            .unwrap();
        g.create("g2", &other, &hash("c2"), "https://app/cb", None, 160)
            .unwrap();
        assert_eq!(g.live().unwrap().len(), 2);
        // Another server's view of the same database.
        let twin = Grants::new(Arc::new(Db::open(dir.path()).unwrap()))
            .notifying(["app".to_string()], std::time::Duration::from_secs(3600));
        assert!(g.revoke("g1", 5).unwrap());
        assert!(!twin.revoke("g1", 6).unwrap(), "already ended");
        assert!(g.revoke("g2", 7).unwrap());
        assert!(g.live().unwrap().is_empty());
        let queue = super::super::backchannel::Queue::new(db);
        let queued = queue.claim(10, 10).unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(
            (
                queued[0].grant_id.as_str(),
                queued[0].sub.as_str(),
                queued[0].sid.as_deref()
            ),
            ("g1", "alice", Some("s1"))
        );
    }

    #[test]
    fn a_notified_clients_signed_in_grant_outlives_its_tokens_until_keep() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let g =
            Grants::new(db).notifying(["app".to_string()], std::time::Duration::from_secs(1_000));
        let mut quiet = alice();
        quiet.client_id = "quiet".into();
        // alice() is made at 100 s. g1: signed in; g2: code never redeemed; g3: another client.
        for (id, made) in [("g1", alice()), ("g2", alice()), ("g3", quiet)] {
            g.create(id, &made, &hash(id), "https://app/cb", None, 160)
                .unwrap();
        }
        g.add_tokens("g1", 100, (&hash("at1"), 700), None, None)
            .unwrap();
        g.add_tokens("g3", 100, (&hash("at3"), 700), None, None)
            .unwrap();
        g.prune(800).unwrap();
        let live: Vec<String> = g.live().unwrap().into_iter().map(|x| x.id).collect();
        assert_eq!(live, ["g1"], "kept for its app's session");
        g.prune(1_100).unwrap();
        assert!(g.live().unwrap().is_empty(), "kept no longer than keep");
    }

    #[test]
    fn pruning_deletes_what_expired_and_the_grants_left_empty() {
        let (_d, g) = grants();
        g.create("g1", &alice(), &hash("c1"), "https://app/cb", None, 160)
            .unwrap();
        g.create("g2", &alice(), &hash("c2"), "https://app/cb", None, 160)
            .unwrap();
        g.add_tokens("g2", 100, (&hash("at"), 10_000), None, None)
            .unwrap();
        assert_eq!(g.prune(200).unwrap(), 3, "two codes, one grant");
        assert!(g.access(&hash("at"), 300).unwrap().is_some());
        assert_eq!(g.redeem(&hash("c1"), 100).unwrap(), Redeemed::Unknown);
    }
}
