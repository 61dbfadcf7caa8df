//! Claims of tokens whose signature was already verified, so a token seen again skips the
//! EdDSA check (DESIGN §4b: verifying on every request halves throughput). Keyed by the whole
//! token, so a changed byte is a miss; only successes are stored; expiry is checked again on
//! every hit, and revocation is the caller's, on every request, hit or miss.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Claims, TokenKind};

/// Entries kept at most; when full, the cache starts over (simple, bounded, and a refill
/// costs one verification per live token).
pub const CAPACITY: usize = 10_000;

/// Claims are shared (`Arc`): a hit costs no copy. Keys are hashed by their tail only (see
/// [`TailHash`]) and compared in full.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    entries: Mutex<Entries>,
}

type Entries = HashMap<Box<str>, (TokenKind, Arc<Claims>), TailHash>;

/// Bytes of a token that are hashed: its last ones, all signature (Ed25519: 86 characters).
const HASHED: usize = 32;

/// Hashes a token's last `HASHED` bytes (with foldhash), not the whole ~700 bytes:
/// the signature differs between any two tokens we signed, and only tokens whose signature
/// verified are stored, so nobody can choose keys that collide with them (another key with the
/// same tail costs one comparison and a miss). The lookup still compares the whole token.
#[derive(Debug, Default, Clone)]
pub struct TailHash(foldhash::fast::RandomState);

impl BuildHasher for TailHash {
    type Hasher = Tail;
    fn build_hasher(&self) -> Tail {
        Tail(self.0.build_hasher())
    }
}

pub struct Tail(<foldhash::fast::RandomState as BuildHasher>::Hasher);

impl Hasher for Tail {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(&bytes[bytes.len().saturating_sub(HASHED)..]);
    }
    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str) -> Arc<Claims> {
        Arc::new(Claims::for_test("alice", jti))
    }

    #[test]
    fn tokens_with_one_tail_are_told_apart_by_the_whole_token() {
        let tail = "s".repeat(HASHED * 2);
        let (a, b) = (format!("header.a.{tail}"), format!("header.b.{tail}"));
        let hasher = TailHash::default();
        assert_eq!(hasher.hash_one(a.as_str()), hasher.hash_one(b.as_str()));
        assert_ne!(
            hasher.hash_one(a.as_str()),
            hasher.hash_one("header.a.other")
        );
        let cache = VerifiedCache::default();
        cache.insert(&a, TokenKind::Session, &claims("a"));
        // Same hash, different token: a miss, never a's claims.
        assert!(cache.get(&b, TokenKind::Session).is_none());
        cache.insert(&b, TokenKind::Session, &claims("b"));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&a, TokenKind::Session).unwrap().jti, "a");
        assert_eq!(cache.get(&b, TokenKind::Session).unwrap().jti, "b");
        // A token shorter than the hashed tail, and a kind it was not verified as.
        cache.insert("short", TokenKind::Bearer, &claims("c"));
        assert_eq!(cache.get("short", TokenKind::Bearer).unwrap().jti, "c");
        assert!(cache.get("short", TokenKind::Session).is_none());
    }
}
