//! The sessions and bearer tokens certgate handed out, per user, for the status page ("your
//! devices and sessions"). In memory on each replica: after a restart the list starts empty,
//! while the tokens themselves stay valid until they expire or are revoked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// Most entries kept per user; the oldest go first.
const PER_USER: usize = 50;

/// One token as issued (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub jti: String,
    /// "browser session" or "bearer token".
    pub kind: &'static str,
    pub device: Option<String>,
    pub serial: Option<String>,
    pub client: Option<IpAddr>,
    pub issued_at: i64,
    /// The same in ms, to compare with revocation cut-offs.
    pub issued_ms: i64,
    pub expires_at: i64,
}

#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<String, Vec<Issued>>>);

impl Sessions {
    pub fn record(&self, user: &str, issued: Issued, now: i64) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let list = all.entry(user.to_string()).or_default();
        list.retain(|i| i.expires_at > now);
        list.push(issued);
        if list.len() > PER_USER {
            let extra = list.len() - PER_USER;
            list.drain(..extra);
        }
    }

    /// The user's unexpired tokens, newest first.
    pub fn of(&self, user: &str, now: i64) -> Vec<Issued> {
        let all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<Issued> = all
            .get(user)
            .map(|l| l.iter().filter(|i| i.expires_at > now).cloned().collect())
            .unwrap_or_default();
        list.reverse();
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(jti: &str, exp: i64) -> Issued {
        Issued {
            jti: jti.into(),
            kind: "browser session",
            device: None,
            serial: None,
            client: None,
            issued_at: 0,
            issued_ms: 0,
            expires_at: exp,
        }
    }

    #[test]
    fn lists_unexpired_tokens_newest_first_and_stays_bounded() {
        let s = Sessions::default();
        s.record("alice", issued("a", 100), 0);
        s.record("alice", issued("b", 200), 0);
        s.record("bob", issued("c", 200), 0);
        let jtis: Vec<_> = s.of("alice", 150).into_iter().map(|i| i.jti).collect();
        assert_eq!(jtis, ["b"]);
        for n in 0..(PER_USER + 10) {
            s.record("alice", issued(&n.to_string(), 1000), 0);
        }
        let list = s.of("alice", 0);
        assert_eq!(list.len(), PER_USER);
        assert_eq!(list[0].jti, (PER_USER + 9).to_string());
    }
}
