//! Revoked sessions: a deny-list of token ids (filled by `/logout`, kept until each token would
//! have expired anyway) and per-user "not before" times ("log out everywhere"). For now in
//! memory on each replica; revoked certificates are the trust store's business.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Revocations {
    /// jti → exp of the revoked token.
    jtis: Mutex<HashMap<String, i64>>,
    /// user → tokens issued before this time are dead.
    users: Mutex<HashMap<String, i64>>,
}

impl Revocations {
    pub fn revoke_jti(&self, jti: &str, exp: i64, now: i64) {
        let mut jtis = self
            .jtis
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        jtis.retain(|_, e| e.saturating_add(crate::jwt::LEEWAY) > now);
        jtis.insert(jti.to_string(), exp);
    }

    /// Ends every token of `user` issued up to and including the second `now`. A clock that
    /// stepped back never moves the cut-off earlier.
    pub fn revoke_user(&self, user: &str, now: i64) {
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cutoff = users.entry(user.to_string()).or_insert(now);
        *cutoff = (*cutoff).max(now);
    }

    pub fn is_user_revoked(&self, user: &str, issued_at: i64) -> bool {
        self.cutoff(user).is_some_and(|cutoff| issued_at <= cutoff)
    }

    /// The time to mint a new token of `user` at: `now`, or just after a cut-off in this very
    /// second, so that signing in again right after "log out everywhere" works.
    pub fn mint_time(&self, user: &str, now: i64) -> i64 {
        self.cutoff(user).map_or(now, |cutoff| now.max(cutoff + 1))
    }

    fn cutoff(&self, user: &str) -> Option<i64> {
        let users = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        users.get(user).copied()
    }

    pub fn is_jti_revoked(&self, jti: &str) -> bool {
        let jtis = self
            .jtis
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        jtis.contains_key(jti)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_jti_is_remembered_until_it_would_expire() {
        let r = Revocations::default();
        r.revoke_jti("a", 100, 50);
        assert!(r.is_jti_revoked("a"));
        assert!(!r.is_jti_revoked("b"));
        r.revoke_jti("b", 1000, 100 + crate::jwt::LEEWAY);
        assert!(!r.is_jti_revoked("a"), "expired entries are dropped");
        assert!(r.is_jti_revoked("b"));
    }

    #[test]
    fn user_cutoff_ends_tokens_up_to_its_second_and_new_ones_start_after() {
        let r = Revocations::default();
        assert!(!r.is_user_revoked("alice", 10));
        assert_eq!(r.mint_time("alice", 100), 100);
        r.revoke_user("alice", 100);
        assert!(r.is_user_revoked("alice", 99));
        assert!(r.is_user_revoked("alice", 100), "same second");
        assert!(!r.is_user_revoked("alice", 101));
        assert!(!r.is_user_revoked("bob", 99));
        assert_eq!(r.mint_time("alice", 100), 101);
        assert!(!r.is_user_revoked("alice", r.mint_time("alice", 100)));
        r.revoke_user("alice", 50);
        assert!(
            r.is_user_revoked("alice", 100),
            "a clock step back keeps the later cut-off"
        );
    }
}
