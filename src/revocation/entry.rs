//! One revocation as stored (database row, Redis stream entry) and as an operator asks for it.

use serde::{Deserialize, Serialize};

use crate::cert::Serial;

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
    /// The user is locked out as of `at_ms`: their certificates, sessions and tokens are
    /// refused until an [`Entry::Unlock`] of a later time. Every token issued until then ends
    /// for good, as with [`Entry::User`]: letting the user back in never revives a token
    /// minted before the lock.
    Lock { id: String, at_ms: i64 },
    /// Lifts a [`Entry::Lock`] of an earlier time. The later of the two wins, whatever order
    /// they are read in; in the same millisecond, the lock.
    Unlock { id: String, at_ms: i64 },
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
    pub(super) fn cutoff_ms(at: i64, at_ms: Option<i64>) -> i64 {
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
            Self::Lock { id, .. } => ("lock", id),
            Self::Unlock { id, .. } => ("unlock", id),
        }
    }
}

/// What of `entries` can still decide something at `now`: token ids whose token has not
/// expired, the latest cut-off of each user and each device, the first revocation of each
/// serial, and each user's latest lock and latest unlock. A view built from the result
/// decides every check as one built from all of them (a test says so), so a store may keep
/// only these (Redis's snapshot, [`super::redis`]).
pub fn compact(entries: &[Entry], now: i64) -> Vec<Entry> {
    use std::collections::HashMap;
    let mut jtis: HashMap<&str, i64> = HashMap::new();
    let mut users: HashMap<&str, i64> = HashMap::new();
    let mut devices: HashMap<String, i64> = HashMap::new();
    let mut serials: HashMap<String, i64> = HashMap::new();
    let mut locks: HashMap<&str, i64> = HashMap::new();
    let mut unlocks: HashMap<&str, i64> = HashMap::new();
    fn latest<K: std::hash::Hash + Eq>(m: &mut HashMap<K, i64>, k: K, v: i64) {
        let kept = m.entry(k).or_insert(v);
        *kept = (*kept).max(v);
    }
    for e in entries {
        match e {
            Entry::Jti { id, until } => {
                if until.saturating_add(crate::jwt::LEEWAY) > now {
                    latest(&mut jtis, id.as_str(), *until);
                }
            }
            Entry::User { id, at, at_ms } => {
                latest(&mut users, id.as_str(), Entry::cutoff_ms(*at, *at_ms));
            }
            Entry::Device { id, at, at_ms } => {
                let key = Serial::parse(id).map_or_else(|_| id.clone(), |s| s.to_string());
                latest(&mut devices, key, Entry::cutoff_ms(*at, *at_ms));
            }
            Entry::Serial { id, at } => {
                let key = Serial::parse(id).map_or_else(|_| id.clone(), |s| s.to_string());
                let first = serials.entry(key).or_insert(*at);
                *first = (*first).min(*at);
            }
            Entry::Lock { id, at_ms } => latest(&mut locks, id.as_str(), *at_ms),
            Entry::Unlock { id, at_ms } => latest(&mut unlocks, id.as_str(), *at_ms),
        }
    }
    let ms = |cutoff: i64| (cutoff.div_euclid(1000), Some(cutoff));
    let mut out = Vec::with_capacity(jtis.len() + users.len() + devices.len() + serials.len());
    out.extend(jtis.into_iter().map(|(id, until)| Entry::Jti {
        id: id.into(),
        until,
    }));
    out.extend(users.into_iter().map(|(id, cutoff)| {
        let (at, at_ms) = ms(cutoff);
        Entry::User {
            id: id.into(),
            at,
            at_ms,
        }
    }));
    out.extend(devices.into_iter().map(|(id, cutoff)| {
        let (at, at_ms) = ms(cutoff);
        Entry::Device { id, at, at_ms }
    }));
    out.extend(serials.into_iter().map(|(id, at)| Entry::Serial { id, at }));
    out.extend(locks.into_iter().map(|(id, at_ms)| Entry::Lock {
        id: id.into(),
        at_ms,
    }));
    out.extend(unlocks.into_iter().map(|(id, at_ms)| Entry::Unlock {
        id: id.into(),
        at_ms,
    }));
    out
}
