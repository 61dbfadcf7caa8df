//! What a certificate the built-in CA issued is now: one answer for the status page, `ca list`
//! and the expiry gauge. A revocation source that cannot be read makes the answer "unknown",
//! never "valid".

use super::store::IssuedRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Revoked,
    /// No source says revoked, but one cannot be read.
    Unknown,
    Expired,
    Valid {
        /// Whole days until `not_after`.
        days_left: i64,
    },
}

impl CertStatus {
    /// `revoked`: what each revocation source says of the record's serial (the CA's own list,
    /// the revocation store); `None` for a source that cannot be read. Revoked by any source
    /// wins over unknown.
    pub fn of(record: &IssuedRecord, revoked: &[Option<bool>], now: i64) -> Self {
        if revoked.contains(&Some(true)) {
            Self::Revoked
        } else if revoked.contains(&None) {
            Self::Unknown
        } else if record.not_after <= now {
            Self::Expired
        } else {
            Self::Valid {
                days_left: (record.not_after - now) / 86_400,
            }
        }
    }

    /// One word, as `ca list` prints it.
    pub fn word(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Valid { .. } => "valid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Serial;

    fn record(not_after: i64) -> IssuedRecord {
        IssuedRecord {
            serial: Serial::parse("0a").unwrap(),
            user: "alice".into(),
            device: None,
            not_after,
            issued_at: 0,
        }
    }

    #[test]
    fn an_unreadable_source_makes_the_status_unknown_never_valid() {
        let r = record(10 * 86_400);
        assert_eq!(
            CertStatus::of(&r, &[None, Some(false)], 0),
            CertStatus::Unknown
        );
        assert_eq!(
            CertStatus::of(&r, &[Some(false), None], 0),
            CertStatus::Unknown
        );
        assert_eq!(
            CertStatus::of(&r, &[None, Some(true)], 0),
            CertStatus::Revoked
        );
        assert_eq!(
            CertStatus::of(&r, &[Some(false), Some(false)], 0),
            CertStatus::Valid { days_left: 10 }
        );
        assert_eq!(
            CertStatus::of(&r, &[Some(false)], 10 * 86_400),
            CertStatus::Expired
        );
        assert_eq!(CertStatus::of(&r, &[None], 10 * 86_400).word(), "unknown");
    }
}
