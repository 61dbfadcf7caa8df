//! Prometheus `/metrics` (on the metrics listener only): what an operator watches.
//!
//! Series: `certgate_decisions_total{result,reason}`, `certgate_check_duration_seconds`,
//! `certgate_logins_total{result}`, `certgate_tokens_minted_total`,
//! `certgate_revocations_total{kind}`, `certgate_store_staleness_seconds`,
//! `certgate_oidc_backchannel_logouts_total{outcome}`,
//! `certgate_revoked_token_ids`,
//! `certgate_config_reloads_total{result}`, `certgate_config_last_reload_successful`,
//! `certgate_oidc_requests_total{endpoint,client,outcome}`, and at
//! scrape time `certgate_revocation_sources_ok`, `certgate_revoked_serials` and
//! `certgate_client_cert_days_to_expiry{user,device,serial}`.
//!
//! Label values come from small fixed sets (results, reasons, kinds), never from user input,
//! so the series count stays bounded; the per-certificate expiry gauge is the one exception.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::ca::store::CaStore;
use crate::ca::CertStatus;
use crate::error::{Code, OidcOutcome, Outcome};

/// The `endpoint` label of `certgate_oidc_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcEndpoint {
    Authorize,
    Token,
    Userinfo,
    Introspect,
    Revoke,
    /// RFC 8628's device authorization endpoint (`/oidc/device`).
    Device,
}

impl OidcEndpoint {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Token => "token",
            Self::Userinfo => "userinfo",
            Self::Introspect => "introspect",
            Self::Revoke => "revoke",
            Self::Device => "device",
        }
    }
}

/// Every metric certgate keeps, registered once at start-up and shared across reloads.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `/verify` answers by `result` (allow, unauthenticated, deny, bad_request, unavailable)
    /// and `reason`.
    pub decisions: IntCounterVec,
    /// `decisions{result="allow"}` by reason, resolved at start-up: most checks are allows,
    /// and a label lookup hashes and locks on each.
    allowed: [(Code, IntCounter); 4],
    /// Time spent deciding one `/verify`, in seconds.
    pub check_seconds: Histogram,
    /// `/auth` outcomes by `result`.
    pub logins: IntCounterVec,
    /// Bearer tokens minted by `/token`.
    pub tokens: IntCounter,
    /// Revocations by `kind` (session, user, serial).
    pub revocations: IntCounterVec,
    /// Age of this process's view of the revocation store (database or Redis) since it was last
    /// brought up to date; checks answer 503 past `store.max_staleness`.
    pub store_staleness: Gauge,
    /// Revoked token ids this process remembers (until each token would have expired): what
    /// pruning keeps bounded.
    pub revoked_token_ids: IntGauge,
    /// Back-channel logout tries by `outcome` (delivered, retry, gave_up, dropped).
    pub backchannel: IntCounterVec,
    /// SIGHUP reloads by `result` (ok, failed).
    pub reloads: IntCounterVec,
    /// 1 while the last reload succeeded (or none was tried), 0 after a failed one.
    pub reload_ok: IntGauge,
    /// OpenID Connect requests by `endpoint`, `client` (a configured client id, or `unknown`)
    /// and `outcome` ([`OidcOutcome`]).
    oidc_requests: IntCounterVec,
}

impl Metrics {
    /// # Errors
    /// Only on a metric defined twice or with an invalid name (a build defect, caught by tests).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new(
                "certgate_decisions_total",
                "Forward-auth (/verify) answers by result and reason.",
            ),
            &["result", "reason"],
        )?;
        // From 50 µs: a cached check is far below a millisecond.
        let check_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "certgate_check_duration_seconds",
                "Time certgate spent deciding one /verify request.",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1,
            ]),
        )?;
        let logins = IntCounterVec::new(
            Opts::new("certgate_logins_total", "Sign-ins at /auth by result."),
            &["result"],
        )?;
        let tokens = IntCounter::new(
            "certgate_tokens_minted_total",
            "Bearer tokens handed out by /token.",
        )?;
        let revocations = IntCounterVec::new(
            Opts::new(
                "certgate_revocations_total",
                "Revocations by kind (session, user, serial).",
            ),
            &["kind"],
        )?;
        let store_staleness = Gauge::new(
            "certgate_store_staleness_seconds",
            "Age of this replica's view of revocation state; checks answer 503 when it is too old.",
        )?;
        let revoked_token_ids = IntGauge::new(
            "certgate_revoked_token_ids",
            "Revoked token ids remembered (each until its token would have expired).",
        )?;
        let backchannel = IntCounterVec::new(
            Opts::new(
                "certgate_oidc_backchannel_logouts_total",
                "Back-channel logout tokens by outcome (delivered, retry, gave_up, dropped).",
            ),
            &["outcome"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "certgate_config_reloads_total",
                "Configuration reloads (SIGHUP) by result.",
            ),
            &["result"],
        )?;
        let reload_ok = IntGauge::new(
            "certgate_config_last_reload_successful",
            "1 when the last configuration reload succeeded (or none was tried), 0 after a failure.",
        )?;
        reload_ok.set(1);
        let oidc_requests = IntCounterVec::new(
            Opts::new(
                "certgate_oidc_requests_total",
                "OpenID Connect provider requests by endpoint, client (a configured id or unknown) and outcome.",
            ),
            &["endpoint", "client", "outcome"],
        )?;
        let allowed = [Code::Bypass, Code::Bearer, Code::Session, Code::Certificate].map(|via| {
            let labels = [Outcome::Allow.as_str(), via.as_str()];
            (via, decisions.with_label_values(&labels))
        });
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(check_seconds.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(revocations.clone()))?;
        registry.register(Box::new(store_staleness.clone()))?;
        registry.register(Box::new(backchannel.clone()))?;
        registry.register(Box::new(revoked_token_ids.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(reload_ok.clone()))?;
        registry.register(Box::new(oidc_requests.clone()))?;
        Ok(Self {
            registry,
            decisions,
            allowed,
            check_seconds,
            logins,
            tokens,
            revocations,
            store_staleness,
            backchannel,
            revoked_token_ids,
            reloads,
            reload_ok,
            oidc_requests,
        })
    }

    /// Counts one OpenID Connect request. `client` must be a configured client id (or
    /// `None`: counted as `unknown`), never what a request claims, so the series stay bounded.
    pub fn oidc_request(&self, endpoint: OidcEndpoint, client: Option<&str>, outcome: OidcOutcome) {
        self.oidc_requests
            .with_label_values(&[
                endpoint.as_str(),
                client.unwrap_or("unknown"),
                outcome.as_str(),
            ])
            .inc();
    }

    /// Counts one `/verify` answer.
    pub fn decided(&self, result: Outcome, reason: Code) {
        let resolved = (result == Outcome::Allow)
            .then(|| self.allowed.iter().find(|(via, _)| *via == reason))
            .flatten();
        match resolved {
            Some((_, counter)) => counter.inc(),
            None => self
                .decisions
                .with_label_values(&[result.as_str(), reason.as_str()])
                .inc(),
        }
    }

    /// The exposition text: the registry, the revoked serials, the certificates' days to expiry.
    /// `revoked_serials` is `None` while a revocation source cannot be read; `revoked_in_store`
    /// says whether the revocation store revoked a serial (`certgate revoke --serial`), `None`
    /// when it cannot say (too stale to trust).
    pub fn render(
        &self,
        data_dir: &std::path::Path,
        now: i64,
        revoked_serials: Option<usize>,
        revoked_in_store: &dyn Fn(&str) -> Option<bool>,
    ) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        let mut out = String::from_utf8_lossy(&buf).into_owned();
        let (expiry, revoked) = cert_expiry(data_dir, now, revoked_in_store);
        out.push_str(&format!(
            "# HELP certgate_revocation_sources_ok 1 while every CRL and the built-in CA's revocation list can be read; 0 means certgate lets nobody in.\n\
             # TYPE certgate_revocation_sources_ok gauge\n\
             certgate_revocation_sources_ok {}\n\
             # HELP certgate_revoked_serials Certificates of the built-in CA that are revoked (ca revoke or certgate revoke --serial).\n\
             # TYPE certgate_revoked_serials gauge\n\
             certgate_revoked_serials {}\n",
            u8::from(revoked_serials.is_some()),
            revoked_serials.map_or(0, |_| revoked)
        ));
        out.push_str(&expiry);
        out
    }
}

/// Prometheus label value escaping.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Days to expiry of every valid certificate the built-in CA issued, per user and device, and
/// how many it issued are revoked (by its own list or the revocation store: one list). One
/// whose status is unknown (an unreadable revocation list) is left out, never shown as valid.
fn cert_expiry(
    data_dir: &std::path::Path,
    now: i64,
    revoked_in_store: &dyn Fn(&str) -> Option<bool>,
) -> (String, usize) {
    let store = CaStore::new(data_dir);
    let revoked = store.revoked().ok();
    let mut out = String::from(
        "# HELP certgate_client_cert_days_to_expiry Days until a certificate of the built-in CA expires (valid, unrevoked ones).\n\
         # TYPE certgate_client_cert_days_to_expiry gauge\n",
    );
    let mut revoked_count = 0;
    for r in store.list().unwrap_or_default() {
        let sources = [
            revoked.as_ref().map(|set| set.contains(&r.serial)),
            revoked_in_store(r.serial.as_str()),
        ];
        let days = match CertStatus::of(&r, &sources, now) {
            CertStatus::Valid { days_left } => days_left,
            CertStatus::Revoked => {
                revoked_count += 1;
                continue;
            }
            CertStatus::Unknown | CertStatus::Expired => continue,
        };
        out.push_str(&format!(
            "certgate_client_cert_days_to_expiry{{user=\"{}\",device=\"{}\",serial=\"{}\"}} {days}\n",
            label(&r.user),
            label(r.device.as_deref().unwrap_or("")),
            label(r.serial.as_str())
        ));
    }
    (out, revoked_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_with_its_labels() {
        let m = Metrics::new().unwrap();
        m.decisions.with_label_values(&["allow", "session"]).inc();
        m.logins.with_label_values(&["ok"]).inc();
        m.revocations.with_label_values(&["session"]).inc();
        m.reloads.with_label_values(&["failed"]).inc();
        m.check_seconds.observe(0.0003);
        m.oidc_request(OidcEndpoint::Token, Some("grafana"), OidcOutcome::Ok);
        m.oidc_request(
            OidcEndpoint::Introspect,
            None,
            OidcOutcome::Refused(Code::InvalidClient),
        );
        let dir = tempfile::tempdir().unwrap();
        let text = m.render(dir.path(), 0, Some(3), &|_| Some(false));
        for line in [
            "certgate_decisions_total{reason=\"session\",result=\"allow\"} 1",
            "certgate_logins_total{result=\"ok\"} 1",
            "certgate_tokens_minted_total 0",
            "certgate_revocations_total{kind=\"session\"} 1",
            "certgate_store_staleness_seconds 0",
            "certgate_config_reloads_total{result=\"failed\"} 1",
            "certgate_config_last_reload_successful 1",
            "certgate_revoked_serials 0",
            "certgate_revocation_sources_ok 1",
            "certgate_check_duration_seconds_bucket{le=\"0.0005\"} 1",
            "certgate_check_duration_seconds_count 1",
            "# TYPE certgate_client_cert_days_to_expiry gauge",
            "certgate_oidc_requests_total{client=\"grafana\",endpoint=\"token\",outcome=\"ok\"} 1",
            "certgate_oidc_requests_total{client=\"unknown\",endpoint=\"introspect\",outcome=\"invalid_client\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn a_decision_counts_in_its_series_whether_resolved_at_start_up_or_not() {
        let m = Metrics::new().unwrap();
        m.decided(Outcome::Allow, Code::Session);
        m.decided(Outcome::Allow, Code::Session);
        m.decided(Outcome::Allow, Code::Certificate);
        m.decided(Outcome::Unauthenticated, Code::NoCredentials);
        let count = |labels: &[&str]| m.decisions.with_label_values(labels).get();
        assert_eq!(count(&["allow", "session"]), 2);
        assert_eq!(count(&["allow", "certificate"]), 1);
        assert_eq!(count(&["allow", "bearer"]), 0);
        assert_eq!(count(&["unauthenticated", "no_credentials"]), 1);
    }
}
