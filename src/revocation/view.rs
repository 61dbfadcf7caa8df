//! The in-memory view every check reads: revoked token ids, per-user and per-device cut-offs,
//! revoked serials, locked-out users. Built from [`Entry`]s; never waits on a disk or a network.

use std::collections::HashMap;

use super::ids::IdTable;
use super::Entry;
use crate::cert::Serial;

/// Revoked token ids, each kept until its token would have expired. certgate's own ids (16
/// random bytes, 22 base64url characters) are kept as their bytes in one flat table
/// ([`IdTable`]: 21 bytes a slot, under 48 bytes per id): 1,000,000 revoked sessions cost
/// 30–45 MB.
#[derive(Debug, Default)]
pub(super) struct JtiSet {
    ours: IdTable,
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
        match Self::key(jti) {
            Some(key) => self.ours.insert(key, until),
            None => {
                let kept = self.other.entry(jti.into()).or_insert(until);
                *kept = (*kept).max(until);
            }
        }
    }

    /// [`Self::insert`] for each of `jtis` (a read from the store: see [`IdTable::insert_all`]).
    fn insert_all(&mut self, jtis: &[(&str, i64)]) {
        let mut ours = Vec::with_capacity(jtis.len());
        for &(jti, until) in jtis {
            match Self::key(jti) {
                Some(key) => ours.push((key, until)),
                None => self.insert(jti, until),
            }
        }
        self.ours.insert_all(&ours);
    }

    /// Makes room for `more` ids of certgate's shape (a load of many at once).
    pub(super) fn reserve(&mut self, more: usize) {
        self.ours.reserve(more);
    }

    pub(super) fn contains(&self, jti: &str) -> bool {
        if self.ours.is_empty() && self.other.is_empty() {
            return false;
        }
        match Self::key(jti) {
            Some(key) => self.ours.contains(&key),
            None => self.other.contains_key(jti),
        }
    }

    /// Forgets ids whose tokens have expired; at most once a minute, as it reads them all.
    pub(super) fn prune(&mut self, now: i64) {
        if now.saturating_sub(self.pruned_at) < 60 {
            return;
        }
        self.pruned_at = now;
        let dead = |exp: i64| exp.saturating_add(crate::jwt::LEEWAY) <= now;
        self.ours.retain_live(dead);
        self.other.retain(|_, exp| !dead(*exp));
    }

    pub(super) fn len(&self) -> usize {
        self.ours.len() + self.other.len()
    }
}

#[derive(Debug, Default)]
pub(super) struct View {
    pub(super) jtis: JtiSet,
    /// user → tokens issued up to this time (ms) are dead.
    pub(super) users: HashMap<String, i64>,
    /// Revoked certificate serial → when it was first revoked (seconds), for CRLs.
    pub(super) serials: HashMap<Serial, i64>,
    /// certificate serial → tokens minted from it up to this time (ms) are dead.
    pub(super) devices: HashMap<Serial, i64>,
    /// user → the latest lock or unlock: its time (ms) and whether it locks.
    pub(super) locks: HashMap<String, Lock>,
}

/// The latest [`Entry::Lock`] or [`Entry::Unlock`] of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lock {
    pub(super) at_ms: i64,
    pub(super) locked: bool,
}

impl View {
    /// Whether `user`'s "log out everywhere" covers a token issued at `issued_ms`.
    pub(super) fn user_ended(&self, user: &str, issued_ms: i64) -> bool {
        self.users.get(user).is_some_and(|&cut| issued_ms <= cut)
    }

    /// Whether signing out the device with certificate `serial` (canonical) covers a token
    /// minted from it at `issued_ms`.
    pub(super) fn device_ended(&self, serial: &str, issued_ms: i64) -> bool {
        self.devices
            .get(serial)
            .is_some_and(|&cut| issued_ms <= cut)
    }

    /// Whether `user` is locked out. On every check: one lookup, no allocation.
    pub(super) fn locked(&self, user: &str) -> bool {
        !self.locks.is_empty() && self.locks.get(user).is_some_and(|l| l.locked)
    }

    /// Entries read from a store as of `now`; long-expired token ids are not kept (a full
    /// re-read brings every old log-out back).
    pub(super) fn apply_read(&mut self, entries: &[Entry], now: i64) {
        self.jtis.prune(now);
        // Token ids all at once (their order with the other entries does not matter: an id is
        // held until the latest expiry given for it, whenever that comes).
        let mut jtis = Vec::with_capacity(entries.len());
        for e in entries {
            match e {
                Entry::Jti { until, .. } if until.saturating_add(crate::jwt::LEEWAY) <= now => {}
                Entry::Jti { id, until } => jtis.push((id.as_str(), *until)),
                _ => self.apply(e),
            }
        }
        self.jtis.insert_all(&jtis);
    }

    pub(super) fn apply(&mut self, e: &Entry) {
        match e {
            Entry::Jti { id, until } => {
                self.jtis.insert(id, *until);
            }
            Entry::User { id, at, at_ms } => {
                let at = Entry::cutoff_ms(*at, *at_ms);
                let cutoff = self.users.entry(id.clone()).or_insert(at);
                *cutoff = (*cutoff).max(at);
            }
            Entry::Serial { id, at } => {
                if let Some(serial) = stored_serial(id) {
                    let first = self.serials.entry(serial).or_insert(*at);
                    *first = (*first).min(*at);
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
            Entry::Lock { id, at_ms } => {
                self.set_lock(id, *at_ms, true);
                // Every token issued until the lock ends, and stays ended after an unlock.
                let cutoff = self.users.entry(id.clone()).or_insert(*at_ms);
                *cutoff = (*cutoff).max(*at_ms);
            }
            Entry::Unlock { id, at_ms } => self.set_lock(id, *at_ms, false),
        }
    }

    /// The later of a user's lock and unlock wins, in whatever order they are read (a full
    /// re-read, two stores' entries interleaved); in the same millisecond, the lock.
    fn set_lock(&mut self, user: &str, at_ms: i64, locked: bool) {
        let new = Lock { at_ms, locked };
        match self.locks.get_mut(user) {
            Some(old) if old.at_ms > at_ms || (old.at_ms == at_ms && old.locked) => {}
            Some(old) => *old = new,
            None => {
                self.locks.insert(user.to_owned(), new);
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
