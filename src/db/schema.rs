//! The schema, as numbered migrations: `PRAGMA user_version` is the number applied. A migration
//! is only ever appended, never edited, so every database reaches the same schema.

use std::path::Path;

use rusqlite::Connection;

use super::{write_with, DbError};

/// Migration `n` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: what certgate kept in files up to 0.1 (revocations.jsonl, ca/*.jsonl, enroll/).
    "CREATE TABLE revocations (
        -- The order entries were written in; followers read what is past their last seq.
        -- AUTOINCREMENT: a pruned seq is never handed out again, so nothing is skipped.
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        -- The revocation as JSON, one line of the old revocations.jsonl.
        entry TEXT NOT NULL UNIQUE,
        -- When the entry stops mattering (a token id's expiry, Unix seconds); NULL: it decides
        -- for as long as it is the latest of its kind and key.
        expires INTEGER
    );
    CREATE INDEX revocations_expires ON revocations (expires) WHERE expires IS NOT NULL;
    CREATE TABLE ca_issued (
        serial TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        device TEXT,
        not_after INTEGER NOT NULL,
        issued_at INTEGER NOT NULL
    );
    CREATE TABLE ca_revoked (
        serial TEXT PRIMARY KEY,
        revoked_at INTEGER NOT NULL
    );
    CREATE TABLE enrollments (
        -- SHA-256 of the link's secret, hex: the secret itself is never stored.
        secret_hash TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        device TEXT,
        days INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );",
    // 2: the OpenID Connect provider's grants (src/oidc/grants.rs).
    "CREATE TABLE oidc_grants (
        -- Random; also the grant's token id: `certgate revoke --jti` ends it.
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        user TEXT NOT NULL,
        -- The certgate session it was made from (the ID token's sid), and its certificate.
        sid TEXT,
        cert_serial TEXT,
        scopes TEXT NOT NULL,
        nonce TEXT,
        auth_time INTEGER NOT NULL,
        -- When it was made (ms): a user's or device's later cut-off ends it.
        created_ms INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE oidc_codes (
        -- SHA-256 of the code, hex: the code itself is never stored.
        hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
        redirect_uri TEXT NOT NULL,
        challenge TEXT,
        expires INTEGER NOT NULL,
        -- Kept until it expires once used, so that a replay is recognised.
        used INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX oidc_codes_grant ON oidc_codes (grant_id);
    CREATE TABLE oidc_tokens (
        hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
        expires INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX oidc_tokens_grant ON oidc_tokens (grant_id);",
    // 3: device authorization requests (RFC 8628; src/oidc/device.rs).
    "CREATE TABLE oidc_device (
        -- SHA-256 of the device code, hex; the user code is short and typed by a person.
        device_hash TEXT PRIMARY KEY,
        user_code TEXT NOT NULL UNIQUE,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        expires INTEGER NOT NULL,
        -- Seconds the device must wait between polls (RFC 8628 §3.5: slow_down adds 5).
        poll_interval INTEGER NOT NULL,
        last_poll INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'spent')),
        grant_id TEXT REFERENCES oidc_grants (id) ON DELETE CASCADE
    );",
    // 4: back-channel logout tokens waiting to reach their app (src/oidc/backchannel.rs).
    "CREATE TABLE oidc_logout_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        client_id TEXT NOT NULL,
        -- Whom the token names: the grant's user and certgate session.
        grant_id TEXT NOT NULL,
        sub TEXT NOT NULL,
        sid TEXT,
        -- Tries so far, and when the first was due (ms): it is given up an hour later.
        attempts INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL,
        -- When the next try is due (ms).
        due_ms INTEGER NOT NULL,
        -- A server that took it holds it until then (ms): no other one delivers it meanwhile,
        -- and if that one dies, another takes it over afterwards.
        claimed_until_ms INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    );
    CREATE INDEX oidc_logout_deliveries_due ON oidc_logout_deliveries (due_ms);
    -- 1 once tokens were issued from the grant: the app holds a sign-in, and is told when it
    -- ends even after its tokens expired (see `Grants::prune`).
    ALTER TABLE oidc_grants ADD COLUMN tokens_issued INTEGER NOT NULL DEFAULT 0;",
    // 5: one token revoked on its own (RFC 7009: an access token), and when each was issued
    // (introspection's `iat`; NULL for tokens issued before).
    "ALTER TABLE oidc_tokens ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE oidc_tokens ADD COLUMN issued INTEGER;",
    // 6: a token bound to the certificate it was issued over (RFC 8705 §3): its SHA-256
    // thumbprint, base64url (the `cnf` `x5t#S256`); NULL: a plain bearer token.
    "ALTER TABLE oidc_tokens ADD COLUMN x5t TEXT;",
];

/// The schema version this certgate writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the migrations the database lacks, each in its own transaction (two processes
/// opening a new database at once apply each migration once).
///
/// # Errors
/// When the schema is newer than this certgate, or a migration fails.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    // Every open comes here: a current schema is read, not locked for writing.
    let at: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| DbError::sql(path, &e))?;
    if at == VERSION {
        return Ok(());
    }
    loop {
        let step = write_with(conn, |tx| {
            let at: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let Some(sql) = usize::try_from(at).ok().and_then(|i| MIGRATIONS.get(i)) else {
                return Ok(Some(at));
            };
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", at + 1))?;
            Ok(None)
        })
        .map_err(|e| DbError::sql(path, &e))?;
        match step {
            None => continue,
            Some(at) if at == VERSION => return Ok(()),
            Some(at) => {
                return Err(DbError::new(
                    path,
                    format!(
                        "its schema version is {at}, newer than this certgate knows ({VERSION}): it was written by a newer certgate. Run that version again, or restore a backup made before the upgrade"
                    ),
                ))
            }
        }
    }
}
