//! Time is a parameter: handlers and verifiers take a [`Clock`] so tests can pin "now".

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as JWT `exp`/`nbf`/`iat` use them.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> i64;

    /// [`Self::now`] for checks judged with slack (expiry with leeway, staleness in seconds):
    /// `/verify` reads it on every check. The wall clock's coarse reading, up to a kernel tick
    /// (a few ms) behind, costs a fraction of a precise one. Minting keeps [`Self::now`]:
    /// a token's `iat` must agree with its `iat_ms`.
    fn now_coarse(&self) -> i64 {
        self.now()
    }

    /// Milliseconds since the Unix epoch: orders a sign-in and a revocation in the same second.
    fn now_ms(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    #[cfg(target_os = "linux")]
    fn now_coarse(&self) -> i64 {
        rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse).tv_sec
    }

    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// Milliseconds on a monotonic clock, coarse (up to a kernel tick behind): for "at most every
/// so often" checks on the request path, where a precise reading would cost more than the check.
pub fn monotonic_coarse_ms() -> u64 {
    #[cfg(target_os = "linux")]
    let t = {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
        std::time::Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    };
    #[cfg(not(target_os = "linux"))]
    let t = {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    };
    u64::try_from(t.as_millis()).unwrap_or(u64::MAX)
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn at(secs: i64) -> Self {
        Self(AtomicI64::new(secs))
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
