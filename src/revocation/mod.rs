//! Revocation state: revoked token ids (kept until each token would have expired anyway),
//! per-user cut-offs ("log out everywhere") and revoked certificate serials.
//!
//! Every check reads an in-memory view, so a check never waits on a disk or a network. The
//! view follows a [`journal`]: an append-only file in `data_dir` that certgate, the
//! `certgate revoke` command and other processes on the host all append to, and that each
//! server re-reads a few times a second. It survives restarts. A view that could not be
//! brought up to date for longer than `store.max_staleness` is *stale*: checks that would
//! allow answer 503 instead, never an allow on unknown state.

pub mod journal;
pub mod known;
pub mod redis;
mod settings;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::cert::Serial;

pub use journal::Journal;
pub use redis::RedisStore;
pub use settings::{RawStore, StoreBackend, StoreSettings};

/// Where revocations are kept and shared.
#[derive(Debug)]
pub enum Backend {
    /// This process only (tests and tools).
    Memory,
    /// `data_dir/revocations.jsonl`, read by polling.
    Journal(Journal),
    /// A Redis stream, followed by a thread that pushes what it reads.
    Redis(std::sync::Arc<RedisStore>),
}

/// One revocation, as stored and as sent between processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Entry {
    /// One token, dead until it would have expired (`until`, its `exp`).
    Jti { id: String, until: i64 },
    /// Every token of the user issued up to and including `at` (seconds; `at_ms` to the
    /// millisecond when given: entries without it cover the whole second).
    User {
        id: String,
        at: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_ms: Option<i64>,
    },
    /// Every token minted from this certificate serial, and the certificate itself. `id` is
    /// the canonical [`Serial`]; entries of an older certgate may carry the DER sign byte and
    /// are read as the same number.
    Serial { id: String, at: i64 },
    /// Every token minted from this certificate (serial as in `Serial`) up to and including
    /// `at`: the device is signed out, and may sign in again with its certificate.
    Device {
        id: String,
        at: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_ms: Option<i64>,
    },
}

impl Entry {
    /// The entry an operator asked for (CLI or admin API): exactly one of `user`, `serial`
    /// (any spelling [`Serial::parse`] takes), `device` (a serial too) or `jti`. A jti's expiry
    /// is unknown here, so it is kept as long as any token can live (`max_ttl`).
    ///
    /// # Errors
    /// Which field is wrong and how to give it.
    pub fn requested(
        user: Option<&str>,
        serial: Option<&str>,
        device: Option<&str>,
        jti: Option<&str>,
        now_ms: i64,
        max_ttl: i64,
    ) -> Result<Self, String> {
        let now = now_ms.div_euclid(1000);
        fn given(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        fn parse_serial(field: &str, raw: &str) -> Result<Serial, String> {
            Serial::parse(raw).map_err(|e| {
                format!(
                    "{field}: {e}; give a certificate serial: {}",
                    crate::cert::serial::SerialError::FORMS
                )
            })
        }
        match (given(user), given(serial), given(device), given(jti)) {
            (Some(id), None, None, None) => Ok(Self::user(id, now_ms)),
            (None, Some(raw), None, None) => Ok(Self::Serial {
                id: parse_serial("serial", raw)?.to_string(),
                at: now,
            }),
            (None, None, Some(raw), None) => {
                Ok(Self::device(&parse_serial("device", raw)?, now_ms))
            }
            (None, None, None, Some(id)) => Ok(Self::Jti {
                id: id.into(),
                until: now.saturating_add(max_ttl),
            }),
            (None, None, None, None) => {
                Err("say what to revoke: user, serial, device or jti".into())
            }
            _ => Err("give one of user, serial, device or jti, not several".into()),
        }
    }

    /// "Log out everywhere" for `user`, as of `now_ms`.
    pub fn user(user: &str, now_ms: i64) -> Self {
        Self::User {
            id: user.into(),
            at: now_ms.div_euclid(1000),
            at_ms: Some(now_ms),
        }
    }

    /// Signs out the device with certificate `serial`, as of `now_ms`.
    pub fn device(serial: &Serial, now_ms: i64) -> Self {
        Self::Device {
            id: serial.to_string(),
            at: now_ms.div_euclid(1000),
            at_ms: Some(now_ms),
        }
    }

    /// A user or device cut-off in ms: `at_ms` when it agrees with `at`, else the end of the
    /// `at` second (covering every token issued in it: fail closed).
    fn cutoff_ms(at: i64, at_ms: Option<i64>) -> i64 {
        at_ms
            .filter(|ms| ms.div_euclid(1000) == at)
            .unwrap_or_else(|| at.saturating_mul(1000).saturating_add(999))
    }

    /// (kind, id) for logs, metrics and replies.
    pub fn describe(&self) -> (&'static str, &str) {
        match self {
            Self::User { id, .. } => ("user", id),
            Self::Serial { id, .. } => ("serial", id),
            Self::Device { id, .. } => ("device", id),
            Self::Jti { id, .. } => ("session", id),
        }
    }
}

/// Revoked token ids, each kept until its token would have expired. certgate's own ids (16
/// random bytes, 22 base64url characters) are kept as their bytes, without an allocation
/// each: 100,000 revoked sessions cost a few megabytes.
#[derive(Debug, Default)]
struct JtiSet {
    ours: HashMap<[u8; 16], i64>,
    /// Ids in another shape (an operator's typo, another issuer's token), as given.
    other: HashMap<Box<str>, i64>,
    pruned_at: i64,
}

impl JtiSet {
    fn key(jti: &str) -> Option<[u8; 16]> {
        use base64::Engine;
        let mut key = [0u8; 16];
        if jti.len() != 22 {
            return None;
        }
        // The engine accepts only the canonical spelling (no trailing bits): another spelling
        // of the same bytes stays another id. Called on every check: no allocation.
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(jti, &mut key) {
            Ok(16) => Some(key),
            _ => None,
        }
    }

    fn insert(&mut self, jti: &str, until: i64) {
        let kept = match Self::key(jti) {
            Some(key) => self.ours.entry(key).or_insert(until),
            None => self.other.entry(jti.into()).or_insert(until),
        };
        *kept = (*kept).max(until);
    }

    fn contains(&self, jti: &str) -> bool {
        if self.ours.is_empty() && self.other.is_empty() {
            return false;
        }
        match Self::key(jti) {
            Some(key) => self.ours.contains_key(&key),
            None => self.other.contains_key(jti),
        }
    }

    /// Forgets ids whose tokens have expired; at most once a minute, as it reads them all.
    fn prune(&mut self, now: i64) {
        if now.saturating_sub(self.pruned_at) < 60 {
            return;
        }
        self.pruned_at = now;
        let live = |exp: &i64| exp.saturating_add(crate::jwt::LEEWAY) > now;
        self.ours.retain(|_, exp| live(exp));
        self.other.retain(|_, exp| live(exp));
    }

    fn len(&self) -> usize {
        self.ours.len() + self.other.len()
    }
}

#[derive(Debug, Default)]
struct View {
    jtis: JtiSet,
    /// user → tokens issued up to this time (ms) are dead.
    users: HashMap<String, i64>,
    serials: HashSet<Serial>,
    /// certificate serial → tokens minted from it up to this time (ms) are dead.
    devices: HashMap<Serial, i64>,
}

impl View {
    /// Whether `user`'s "log out everywhere" covers a token issued at `issued_ms`.
    fn user_ended(&self, user: &str, issued_ms: i64) -> bool {
        self.users.get(user).is_some_and(|&cut| issued_ms <= cut)
    }

    /// Whether signing out the device with certificate `serial` (canonical) covers a token
    /// minted from it at `issued_ms`.
    fn device_ended(&self, serial: &str, issued_ms: i64) -> bool {
        self.devices
            .get(serial)
            .is_some_and(|&cut| issued_ms <= cut)
    }

    /// Entries read from a store as of `now`; long-expired token ids are not kept (a full
    /// re-read brings every old log-out back).
    fn apply_read(&mut self, entries: &[Entry], now: i64) {
        self.jtis.prune(now);
        for e in entries {
            match e {
                Entry::Jti { until, .. } if until.saturating_add(crate::jwt::LEEWAY) <= now => {}
                _ => self.apply(e),
            }
        }
    }

    fn apply(&mut self, e: &Entry) {
        match e {
            Entry::Jti { id, until } => {
                self.jtis.insert(id, *until);
            }
            Entry::User { id, at, at_ms } => {
                let at = Entry::cutoff_ms(*at, *at_ms);
                let cutoff = self.users.entry(id.clone()).or_insert(at);
                *cutoff = (*cutoff).max(at);
            }
            Entry::Serial { id, .. } => {
                if let Some(serial) = stored_serial(id) {
                    self.serials.insert(serial);
                }
            }
            Entry::Device { id, at, at_ms } => {
                let Some(serial) = stored_serial(id) else {
                    return;
                };
                let at = Entry::cutoff_ms(*at, *at_ms);
                let cutoff = self.devices.entry(serial).or_insert(at);
                *cutoff = (*cutoff).max(at);
            }
        }
    }
}

/// A serial from the store. Every writer parses it first, so one that is not a serial was
/// edited by hand; it could match no certificate, and is said so rather than kept.
fn stored_serial(id: &str) -> Option<Serial> {
    match Serial::parse(id) {
        Ok(serial) => Some(serial),
        Err(e) => {
            tracing::warn!(serial = %id, problem = %e, "a revocation entry names no certificate serial; it revokes nothing");
            None
        }
    }
}

#[derive(Debug)]
pub struct Revocations {
    view: Mutex<View>,
    backend: Backend,
    /// When the view was last known to be current (Unix seconds).
    synced_at: AtomicI64,
    /// Why the view cannot be brought up to date, while it cannot.
    trouble: Mutex<Option<String>>,
}

impl Default for Revocations {
    /// In memory only (tests and tools).
    fn default() -> Self {
        Self::new(Backend::Memory, i64::MAX)
    }
}

impl Revocations {
    fn new(backend: Backend, synced_at: i64) -> Self {
        Self {
            view: Mutex::default(),
            backend,
            synced_at: AtomicI64::new(synced_at),
            trouble: Mutex::new(None),
        }
    }

    /// A view that follows Redis; stale (checks answer 503, `/readyz` is false) until the
    /// first complete read.
    pub fn follow_redis(
        store: std::sync::Arc<RedisStore>,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
    ) -> std::sync::Arc<Self> {
        let me = std::sync::Arc::new(Self::new(Backend::Redis(std::sync::Arc::clone(&store)), 0));
        *me.trouble.lock().unwrap_or_else(PoisonError::into_inner) =
            Some("not loaded from Redis yet".into());
        store.follow(std::sync::Arc::clone(&me), clock);
        me
    }

    /// Entries read from the shared store; the view is current as of `now`.
    pub fn apply_synced(&self, entries: &[Entry], now: i64) {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply_read(entries, now);
        self.synced_at.store(now, Ordering::Relaxed);
        let mut trouble = self.trouble.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(was) = trouble.take() {
            tracing::info!(event = "store_recovered", %was, "revocation store current again");
        }
    }

    /// The shared store cannot be read; logged once until it can again.
    pub fn trouble(&self, why: String) {
        let mut trouble = self.trouble.lock().unwrap_or_else(PoisonError::into_inner);
        if trouble.is_none() {
            tracing::error!(event = "store_failed", %why, "cannot read the revocation store; checks answer 503 once it is older than store.max_staleness");
        }
        *trouble = Some(why);
    }

    /// The state in Redis, read once and not followed (for `certgate revoke`).
    ///
    /// # Errors
    /// When Redis cannot be read.
    pub fn loaded_from_redis(store: std::sync::Arc<RedisStore>, now: i64) -> Result<Self, String> {
        let entries = redis::load(&store)?;
        let me = Self::new(Backend::Redis(store), now);
        me.apply_synced(&entries, now);
        Ok(me)
    }

    /// The view of `journal`, loaded whole.
    ///
    /// # Errors
    /// When the journal cannot be read or holds a malformed line: certgate does not start on
    /// unknown revocations.
    pub fn open(journal: Journal, now: i64) -> Result<Self, String> {
        let me = Self::new(Backend::Journal(journal), now);
        me.sync(now)?;
        Ok(me)
    }

    /// Reads what was appended since the last sync (by anyone).
    ///
    /// # Errors
    /// Why the journal cannot be read; the view keeps what it had and grows stale.
    pub fn sync(&self, now: i64) -> Result<(), String> {
        let journal = match &self.backend {
            Backend::Journal(j) => j,
            Backend::Memory => {
                self.synced_at.store(now, Ordering::Relaxed);
                return Ok(());
            }
            // Its own thread keeps it current.
            Backend::Redis(_) => return Ok(()),
        };
        let result = journal.read_new().map(|entries| {
            self.view
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .apply_read(&entries, now);
        });
        let mut trouble = self.trouble.lock().unwrap_or_else(PoisonError::into_inner);
        match &result {
            Ok(()) => {
                self.synced_at.store(now, Ordering::Relaxed);
                *trouble = None;
            }
            Err(why) => *trouble = Some(why.clone()),
        }
        result
    }

    /// Records a revocation: in this view at once, then in the store (so it survives and the
    /// other processes see it).
    ///
    /// # Errors
    /// When the store cannot be written; the revocation is still in force here.
    pub fn revoke(&self, mut entry: Entry) -> Result<(), String> {
        {
            let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
            // A sign-in in the very millisecond of the last cut-off was minted just past it
            // (see `mint_time`): a new cut-off for the same key covers it too.
            let (old, at, at_ms) = match &mut entry {
                Entry::User { id, at, at_ms } => (view.users.get(id.as_str()), at, at_ms),
                Entry::Device { id, at, at_ms } => {
                    (view.devices.get(Serial::canonical(id).as_ref()), at, at_ms)
                }
                Entry::Jti { .. } | Entry::Serial { .. } => (None, &mut 0, &mut None),
            };
            if let (Some(&old), Some(ms)) = (old, at_ms.as_mut()) {
                if *ms <= old {
                    *ms = old.saturating_add(1);
                    *at = ms.div_euclid(1000);
                }
            }
            view.apply(&entry);
        }
        match &self.backend {
            Backend::Journal(j) => j.append(&entry),
            Backend::Redis(r) => r.append(&entry),
            Backend::Memory => Ok(()),
        }
    }

    pub fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), String> {
        self.revoke(Entry::Jti {
            id: jti.into(),
            until: exp,
        })
    }

    /// Ends every token of `user` issued up to and including `now_ms`. A clock that stepped
    /// back never moves the cut-off earlier.
    pub fn revoke_user(&self, user: &str, now_ms: i64) -> Result<(), String> {
        self.revoke(Entry::user(user, now_ms))
    }

    pub fn is_jti_revoked(&self, jti: &str) -> bool {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .jtis
            .contains(jti)
    }

    /// Whether a token of `user` issued at `issued_ms` was ended by "log out everywhere".
    pub fn is_user_revoked(&self, user: &str, issued_ms: i64) -> bool {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .user_ended(user, issued_ms)
    }

    pub fn is_serial_revoked(&self, serial: &str) -> bool {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .serials
            .contains(Serial::canonical(serial).as_ref())
    }

    /// Why a token is dead (its id, its user's "log out everywhere", its certificate or its
    /// device), or `None`: the check on every request, under one lock.
    pub fn why_revoked(
        &self,
        jti: &str,
        user: &str,
        serial: Option<&str>,
        issued_ms: i64,
    ) -> Option<&'static str> {
        let view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        if view.jtis.contains(jti) {
            return Some("revoked");
        }
        if view.user_ended(user, issued_ms) {
            return Some("signed out everywhere");
        }
        let serial = Serial::canonical(serial?);
        if view.serials.contains(serial.as_ref()) {
            return Some("its certificate was revoked");
        }
        if view.device_ended(&serial, issued_ms) {
            return Some("its device was signed out");
        }
        None
    }

    /// Whether a token minted from certificate `serial` at `issued_ms` was signed out with its
    /// device.
    pub fn is_device_revoked(&self, serial: &str, issued_ms: i64) -> bool {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .device_ended(&Serial::canonical(serial), issued_ms)
    }

    /// The time (ms) to mint a new token of `user` (from certificate `serial`) at: `now_ms`,
    /// or just after a cut-off in this very millisecond (or in the whole second, for an entry
    /// from a certgate that kept seconds only), so that signing in again right after "log out
    /// everywhere" or signing a device out works.
    pub fn mint_time(&self, user: &str, serial: Option<&str>, now_ms: i64) -> i64 {
        let view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        let device = serial.and_then(|s| view.devices.get(Serial::canonical(s).as_ref()));
        [view.users.get(user), device]
            .into_iter()
            .flatten()
            .fold(now_ms, |t, &cutoff| t.max(cutoff.saturating_add(1)))
    }

    /// Seconds since the view was last known to be current.
    pub fn age(&self, now: i64) -> i64 {
        now.saturating_sub(self.synced_at.load(Ordering::Relaxed))
            .max(0)
    }

    /// Why checks must not allow: the view is older than `max_staleness` seconds.
    pub fn stale(&self, now: i64, max_staleness: i64) -> Option<String> {
        let age = self.age(now);
        if age <= max_staleness {
            return None;
        }
        let why = self
            .trouble
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| "no sync".into());
        Some(format!(
            "the revocation view is {age} s old (store.max_staleness is {max_staleness} s): {why}"
        ))
    }

    /// Revoked token ids currently remembered (for `/metrics` and memory checks).
    pub fn jti_count(&self) -> usize {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .jtis
            .len()
    }
}

#[cfg(test)]
mod tests;
