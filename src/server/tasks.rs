//! What runs beside the servers: SIGHUP reloads, and following the revocation store and the
//! signing keys on disk.

use actix_web::web;

use super::{with_config, Reloader};
use crate::http::Live;

/// SIGHUP re-reads the configuration file and swaps in a state built from it: settings, client
/// CA bundle, CRLs and rules. An invalid file, or one whose CA or CRL cannot be used, keeps the
/// state in force, logs every problem and sets `certgate_config_last_reload_successful` to 0.
/// (Without a handler, SIGHUP would end the process.)
#[cfg(unix)]
pub(super) fn reload_on_sighup(live: web::Data<Live>, reload: Option<Reloader>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; a reload needs a restart");
            return;
        }
    };
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(reload) = &reload else {
                tracing::info!("SIGHUP: the quickstart has no configuration file to reload");
                continue;
            };
            reload_once(&live, reload);
        }
    });
}

#[cfg(not(unix))]
pub(super) fn reload_on_sighup(_: web::Data<Live>, _: Option<Reloader>) {}

/// Brings the revocation view up to date four times a second (revocations by other processes
/// take effect within a second), and says when it cannot and when it can again; picks up
/// rotated signing keys.
pub(super) fn follow_revocations(live: web::Data<Live>) {
    actix_web::rt::spawn(async move {
        let mut failing = false;
        let mut tick = 0u32;
        loop {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(250)).await;
            let state = live.current();
            let now = state.clock.now();
            tick = tick.wrapping_add(1);
            // Keys shared through Redis, looked at twice a second (a version number); a
            // change is written to the key directories and read at once.
            let mut shared_changed = false;
            if let (Some(share), 0) = (&state.keyshare, tick % 2) {
                let share = std::sync::Arc::clone(share);
                match actix_web::rt::task::spawn_blocking(move || share.pull()).await {
                    Ok(Ok(changed)) => shared_changed = changed,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot take the signing keys shared through Redis; the ones in force stay")
                    }
                    Err(e) => tracing::warn!(error = %e, "the shared-keys task failed"),
                }
            }
            // Keys every 2 s: a rotation publishes the next key well ahead of its use.
            if tick % 8 == 0 || shared_changed {
                match state
                    .tokens
                    .reload_keys(&state.config.data_dir.join("keys"))
                {
                    Ok(true) => tracing::info!(
                        event = "keys_reloaded",
                        "signing keys changed on disk; now in force"
                    ),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot re-read the signing keys; the ones in force stay")
                    }
                }
                if let Some(provider) = &state.oidc {
                    match provider.keys.reload() {
                        Ok(true) => tracing::info!(
                            event = "keys_reloaded",
                            "OpenID Connect signing keys changed on disk; now in force"
                        ),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot re-read the OpenID Connect signing keys; the ones in force stay")
                        }
                    }
                }
            }
            // Pruning every minute, the first at start-up: off this thread, as it writes.
            if tick % 240 == 1 {
                prune(&state, now).await;
            }
            match state.revocations.sync(now) {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(event = "store_recovered", "revocation store readable again");
                }
                Err(why) if !failing => {
                    failing = true;
                    tracing::error!(event = "store_failed", %why, "cannot read the revocation store; checks answer 503 once it is older than store.max_staleness");
                }
                _ => {}
            }
            #[allow(clippy::cast_precision_loss)] // seconds: far below 2^52
            state
                .metrics
                .store_staleness
                .set(state.revocations.age(now) as f64);
            state
                .metrics
                .revoked_token_ids
                .set(i64::try_from(state.revocations.jti_count()).unwrap_or(i64::MAX));
        }
    });
}

/// Ends the OpenID Connect grants a revocation reached ([`crate::http::oidc::sweep`]), so
/// that their apps are sent logout tokens: when the revocation view took in news (looked at
/// ten times a second: an atomic read), and every second (a CRL file changes without any).
/// A task of its own, with the database work off this thread: a slow sweep never holds up
/// the revocation sync.
pub(super) fn sweep_grants(live: web::Data<Live>) {
    actix_web::rt::spawn(async move {
        let mut swept = None;
        let mut tick = 0u32;
        let mut failing = false;
        loop {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
            tick = tick.wrapping_add(1);
            let state = live.current();
            let generation = state.revocations.generation();
            if state.oidc.is_none() || (swept == Some(generation) && tick % 10 != 0) {
                continue;
            }
            swept = Some(generation);
            match web::block(move || crate::http::oidc::sweep(&state)).await {
                Ok(Ok(n)) => {
                    if failing {
                        failing = false;
                        tracing::info!("the OpenID Connect grants are writable again");
                    }
                    if n > 0 {
                        tracing::debug!(ended = n, "OpenID Connect grants ended by revocations");
                    }
                }
                Ok(Err(e)) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot end the OpenID Connect grants that revocations reached; tried again every second");
                }
                Ok(Err(_)) => {}
                Err(e) => tracing::warn!(error = %e, "the grant sweep did not run"),
            }
        }
    });
}

/// Sends back-channel logout tokens from the queue, on a thread of its own (a slow app never
/// holds up a request or the revocation sync), looking for due ones ten times a second (one
/// indexed read).
pub(super) fn deliver_logouts(live: web::Data<Live>) {
    let spawned = std::thread::Builder::new()
        .name("backchannel-logout".into())
        .spawn(move || {
            let sender = crate::oidc::backchannel::Sender::new();
            let mut failing = false;
            loop {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let state = live.current();
                let Some(provider) = &state.oidc else {
                    continue;
                };
                let round = crate::oidc::backchannel::deliver_due(provider, &sender, state.clock.now_ms());
                if let Ok(tally) = &round {
                    let count = |outcome: &str, n: u64| {
                        if n > 0 {
                            state.metrics.backchannel.with_label_values(&[outcome]).inc_by(n);
                        }
                    };
                    count("delivered", tally.delivered);
                    count("retry", tally.retry);
                    count("gave_up", tally.gave_up);
                    count("dropped", tally.dropped);
                }
                match round {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("the back-channel logout queue is readable again");
                    }
                    Err(e) if !failing => {
                        failing = true;
                        tracing::error!(error = %e, "cannot read the back-channel logout queue; logout tokens wait until it can be");
                    }
                    _ => {}
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the back-channel logout thread: apps are not told of logouts");
    }
}

/// Deletes what can no longer decide anything: revocations of expired tokens and covered
/// cut-offs, expired enrollment links, OpenID Connect codes and tokens that expired. A failure is said and tried again in a minute.
async fn prune(state: &crate::http::AppState, now: i64) {
    let revocations = std::sync::Arc::clone(&state.revocations);
    let links = crate::ca::enroll::EnrollStore::new(&state.config.data_dir);
    let oidc = state.oidc.clone();
    let pruned = web::block(move || {
        (
            revocations.prune(now),
            links.prune(now).map_err(|e| e.to_string()),
            oidc.map(|p| p.grants.prune(now).map_err(|e| e.to_string())),
        )
    })
    .await;
    let (revocations, links, grants) = match pruned {
        Ok(all) => all,
        Err(e) => (Err(e.to_string()), Err(e.to_string()), None),
    };
    if let Some(Err(e)) = grants {
        tracing::warn!(error = %e, "cannot prune the OpenID Connect grants; it is tried again in a minute");
    }
    match revocations {
        Ok(p) if p.expired + p.superseded > 0 => tracing::info!(
            event = "store_pruned",
            expired = p.expired,
            superseded = p.superseded,
            "revocations that can no longer decide anything removed"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot prune the revocation store; it is tried again in a minute")
        }
    }
    match links {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            event = "enrollments_pruned",
            links = n,
            "expired enrollment links removed"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot prune the enrollment links; it is tried again in a minute")
        }
    }
}

fn reload_once(live: &Live, reload: &Reloader) {
    let old = live.current();
    let metrics = &old.metrics;
    let failed = |problems: Vec<String>| {
        for problem in &problems {
            tracing::error!(event = "reload_failed", %problem, "SIGHUP: configuration not reloaded; the previous one stays in force");
        }
        metrics.reloads.with_label_values(&["failed"]).inc();
        metrics.reload_ok.set(0);
    };
    let mut config = match reload() {
        Ok(config) => config,
        Err(problems) => return failed(problems.0.iter().map(ToString::to_string).collect()),
    };
    let kept = config.keep_restart_only(&old.config);
    let rules = config.policy.rules.len();
    match with_config(&old, config) {
        Ok(state) => {
            live.replace(state);
            metrics.reloads.with_label_values(&["ok"]).inc();
            metrics.reload_ok.set(1);
            tracing::info!(
                event = "reload",
                rules,
                "SIGHUP: configuration reloaded (users, client CA, CRLs, rules)"
            );
            if !kept.is_empty() {
                tracing::warn!(keys = %kept.join(", "), "SIGHUP: these keys changed but take effect only on restart");
            }
        }
        Err(e) => failed(vec![e.to_string()]),
    }
}
