//! Claims of tokens whose signature was already verified, so a token seen again skips the
//! EdDSA check (DESIGN §4b: verifying on every request halves throughput). Keyed by the whole
//! token, so a changed byte is a miss; only successes are stored; expiry is checked again on
//! every hit, and revocation is the caller's, on every request, hit or miss.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{Claims, TokenKind};

/// Entries kept at most; when full, the cache starts over (simple, bounded, and a refill
/// costs one verification per live token).
pub const CAPACITY: usize = 10_000;

/// Claims are shared (`Arc`): a hit costs no copy. The hasher is foldhash, not SipHash: a
/// token is ~700 bytes, and only tokens whose signature verified are ever stored, so nobody
/// can choose colliding keys (a lookup with any other key is one hash and a miss).
#[derive(Debug, Default)]
pub struct VerifiedCache {
    entries: Mutex<Entries>,
}

type Entries = HashMap<Box<str>, (TokenKind, Arc<Claims>), foldhash::fast::RandomState>;

impl VerifiedCache {
    /// The claims of `token` if it was verified as `kind` before.
    pub fn get(&self, token: &str, kind: TokenKind) -> Option<Arc<Claims>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(token) {
            Some((k, claims)) if *k == kind => Some(Arc::clone(claims)),
            _ => None,
        }
    }

    pub fn insert(&self, token: &str, kind: TokenKind, claims: &Arc<Claims>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(token.into(), (kind, Arc::clone(claims)));
    }

    /// Forgets everything (after a key is retired).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
