//! Revoked sessions. For now an in-memory deny-list of token ids, filled by `/logout` and kept
//! until each token would have expired anyway.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Revocations {
    /// jti → exp of the revoked token.
    jtis: Mutex<HashMap<String, i64>>,
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
}
