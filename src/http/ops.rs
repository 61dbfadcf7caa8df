//! Health, readiness and metrics. `/healthz` and `/readyz` are public (load balancers call
//! them through anything) and say only yes or no; `/metrics` and `/readyz/details` are
//! operator-only ([`super::routes::Class::Operator`]) and live on `listen.metrics` alone.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

use super::answer;
use super::{AppState, State};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body("ok\n")
}

/// Ready when the revocation view is current and every revocation source can be read: a
/// load balancer should send checks elsewhere otherwise (they would answer 503 here). Why
/// not is for the operator: `/readyz/details` on the metrics listener, and the log.
pub async fn readyz(state: State) -> HttpResponse {
    match problem(&state) {
        None => answer::json(StatusCode::OK, &serde_json::json!({"ready": true})),
        Some(_) => answer::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"ready": false}),
        ),
    }
}

/// `/readyz` with the reason (store errors name files and hosts).
pub async fn readyz_details(state: State) -> HttpResponse {
    match problem(&state) {
        None => answer::json(StatusCode::OK, &serde_json::json!({"ready": true})),
        Some(why) => answer::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"ready": false, "reason": why}),
        ),
    }
}

fn problem(state: &AppState) -> Option<String> {
    state.stale().or_else(|| {
        state
            .trust
            .revoked_serial_count()
            .is_none()
            .then(|| "a CRL or the built-in CA's revocation list cannot be read".to_string())
    })
}

/// Prometheus text. It names every user and device, so it is served only on the metrics
/// listener, to whoever can connect there.
pub async fn metrics(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render(
            &state.config.data_dir,
            state.clock.now(),
            state.trust.revoked_serial_count(),
            &|serial| {
                Some(state.revocations.is_serial_revoked(serial))
                    .filter(|revoked| *revoked || state.stale().is_none())
            },
        ))
}
