//! Revocation state: revoked token ids (kept until each token would have expired anyway),
//! per-user cut-offs ("log out everywhere"), revoked certificate serials and locked-out users.
//!
//! Every check reads an in-memory view, so a check never waits on a disk or a network. The
//! view follows a [`table`] in `data_dir/certgate.db` that certgate, the `certgate revoke`
//! command and other processes on the host all write to (each write on disk before it is
//! acknowledged), and that each server reads a few times a second; or a Redis stream
//! ([`redis`]) shared by replicas. A view that could not be brought up to date for longer than
//! `store.max_staleness` is *stale*: checks that would allow answer 503 instead, never an allow
//! on unknown state.

mod entry;
mod ids;
pub mod known;
pub mod redis;
mod settings;
pub mod table;
mod view;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::cert::Serial;

pub use entry::Entry;
pub use redis::RedisStore;
pub use settings::{RawStore, StoreBackend, StoreSettings};
pub use table::{Pruned, Table};

use view::View;

/// Whether a credential may still be used: what a check reads before it allows anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Live,
    Revoked(&'static str),
    /// Revocation state cannot be known: a check must not allow (503).
    Unknown(String),
}

/// Where revocations are kept and shared.
#[derive(Debug)]
pub enum Backend {
    /// This process only (tests and tools).
    Memory,
    /// The `revocations` table of `data_dir/certgate.db`, read by polling.
    Table(Table),
    /// A Redis stream, followed by a thread that pushes what it reads.
    Redis(std::sync::Arc<RedisStore>),
}

#[derive(Debug)]
pub struct Revocations {
    view: Mutex<View>,
    backend: Backend,
    /// When the view was last known to be current (Unix seconds).
    synced_at: AtomicI64,
    /// Why the view cannot be brought up to date, while it cannot.
    trouble: Mutex<Option<String>>,
    /// Grows with every entry the view takes in: whoever acts on revocations (ending OpenID
    /// Connect grants) looks again when it changed.
    generation: AtomicU64,
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
            generation: AtomicU64::new(0),
        }
    }

    /// Changes whenever the view takes in an entry (its own or one read from the store).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn took_in(&self, entries: usize) {
        if entries > 0 {
            self.generation
                .fetch_add(u64::try_from(entries).unwrap_or(1), Ordering::Relaxed);
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
        self.took_in(entries.len());
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

    /// The view of `table`, loaded whole.
    ///
    /// # Errors
    /// When the table cannot be read or holds a malformed row: certgate does not start on
    /// unknown revocations.
    pub fn open(table: Table, now: i64) -> Result<Self, String> {
        let me = Self::new(Backend::Table(table), now);
        me.sync(now)?;
        Ok(me)
    }

    /// Reads what was written since the last sync (by anyone).
    ///
    /// # Errors
    /// Why the table cannot be read; the view keeps what it had and grows stale.
    pub fn sync(&self, now: i64) -> Result<(), String> {
        let table = match &self.backend {
            Backend::Table(t) => t,
            Backend::Memory => {
                self.synced_at.store(now, Ordering::Relaxed);
                return Ok(());
            }
            // Its own thread keeps it current.
            Backend::Redis(_) => return Ok(()),
        };
        // Room for every live token id of a large read at once: growing step by step would
        // move every id again at each step.
        let reserve = |ids| {
            self.view
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .jtis
                .reserve(ids);
        };
        let result = table.read_new(now, reserve, |entries| {
            self.view
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .apply_read(entries, now);
            self.took_in(entries.len());
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
    /// other processes see it). `Ok` means it is in the store: on disk (embedded) or in Redis.
    ///
    /// # Errors
    /// When the store cannot be written; the revocation is still in force here.
    pub fn revoke(&self, mut entry: Entry) -> Result<(), String> {
        {
            let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
            // `user enable` right after `user disable` (or a clock behind the one that
            // locked) still lifts the lock: the later entry wins, so it is made later.
            if let Entry::Lock { id, at_ms } | Entry::Unlock { id, at_ms } = &mut entry {
                if let Some(old) = view.locks.get(id.as_str()) {
                    *at_ms = (*at_ms).max(old.at_ms.saturating_add(1));
                }
            }
            // A sign-in in the very millisecond of the last cut-off was minted just past it
            // (see `mint_time`): a new cut-off for the same key covers it too.
            let (old, at, at_ms) = match &mut entry {
                Entry::User { id, at, at_ms } => (view.users.get(id.as_str()), at, at_ms),
                Entry::Device { id, at, at_ms } => {
                    (view.devices.get(Serial::canonical(id).as_ref()), at, at_ms)
                }
                Entry::Jti { .. }
                | Entry::Serial { .. }
                | Entry::Lock { .. }
                | Entry::Unlock { .. } => (None, &mut 0, &mut None),
            };
            if let (Some(&old), Some(ms)) = (old, at_ms.as_mut()) {
                if *ms <= old {
                    *ms = old.saturating_add(1);
                    *at = ms.div_euclid(1000);
                }
            }
            view.apply(&entry);
        }
        self.took_in(1);
        match &self.backend {
            Backend::Table(t) => t.append(&entry),
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
            .contains_key(Serial::canonical(serial).as_ref())
    }

    /// Every serial revoked here (`certgate revoke --serial`, `certgate ca revoke`) with when
    /// it was first revoked (seconds): for the built-in CA's CRL.
    pub fn revoked_serials(&self) -> Vec<(Serial, i64)> {
        let view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        let mut serials: Vec<(Serial, i64)> = view
            .serials
            .iter()
            .map(|(s, at)| (s.clone(), *at))
            .collect();
        serials.sort();
        serials
    }

    /// The users locked out now, by name (for the admin page).
    pub fn locked_users(&self) -> Vec<String> {
        let view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        let mut users: Vec<String> = view
            .locks
            .iter()
            .filter(|(_, l)| l.locked)
            .map(|(u, _)| u.clone())
            .collect();
        users.sort();
        users
    }

    /// Whether `user` is locked out (`certgate user disable`, the admin page).
    pub fn is_locked(&self, user: &str) -> bool {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .locked(user)
    }

    /// Why a token is dead (its id, its user locked out or their "log out everywhere", its
    /// certificate or its device), or `None`: the check on every request, under one lock.
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
        if view.locked(user) {
            return Some("its user is locked out");
        }
        if view.user_ended(user, issued_ms) {
            return Some("signed out everywhere");
        }
        let serial = Serial::canonical(serial?);
        if view.serials.contains_key(serial.as_ref()) {
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

    /// Deletes from the store what can no longer decide anything (see [`table`]), and forgets
    /// expired token ids here. Redis keeps its own stream.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn prune(&self, now: i64) -> Result<Pruned, String> {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .jtis
            .prune(now);
        match &self.backend {
            Backend::Table(t) => {
                let pruned = t.prune(now)?;
                if pruned != Pruned::default() {
                    t.db().compact().map_err(|e| e.to_string())?;
                }
                Ok(pruned)
            }
            Backend::Redis(_) | Backend::Memory => Ok(Pruned::default()),
        }
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
