//! The audit log: one event per sign-in, token, denial, revocation and lock-out, on the tracing target
//! `audit` (one JSON line each with `--log-format json`; filter with `RUST_LOG=audit=info`).
//! Each says who, with which device and certificate serial, why, and from which client
//! address. Token ids (`jti`) are logged so a session can be revoked; tokens, keys and
//! passwords never are.

use std::net::IpAddr;

/// Who acted, as far as certgate knows.
#[derive(Debug, Default, Clone, Copy)]
pub struct Actor<'a> {
    pub user: Option<&'a str>,
    pub device: Option<&'a str>,
    pub serial: Option<&'a str>,
    pub client: Option<IpAddr>,
}

fn client(a: &Actor<'_>) -> String {
    a.client.map(|c| c.to_string()).unwrap_or_default()
}

/// A session cookie was issued at `/auth`.
pub fn login(a: &Actor<'_>, jti: &str) {
    tracing::info!(
        target: "audit", event = "login", user = a.user.unwrap_or(""),
        device = a.device.unwrap_or(""), serial = a.serial.unwrap_or(""),
        client = %client(a), jti, "session issued"
    );
}

/// `/auth` refused to sign someone in.
pub fn login_refused(a: &Actor<'_>, reason: &str) {
    tracing::info!(
        target: "audit", event = "login_refused", user = a.user.unwrap_or(""),
        device = a.device.unwrap_or(""), serial = a.serial.unwrap_or(""),
        client = %client(a), reason, "sign-in refused"
    );
}

/// A bearer token was minted at `/token`.
pub fn token(a: &Actor<'_>, jti: &str, scope: &str, ttl_secs: u64) {
    tracing::info!(
        target: "audit", event = "token", user = a.user.unwrap_or(""),
        device = a.device.unwrap_or(""), serial = a.serial.unwrap_or(""),
        client = %client(a), jti, scope, ttl_secs, "bearer token issued"
    );
}

/// A known user was refused by the rules or a token's scope (`/verify` 403).
pub fn deny(a: &Actor<'_>, url: &str, reason: &str) {
    tracing::info!(
        target: "audit", event = "deny", user = a.user.unwrap_or(""),
        device = a.device.unwrap_or(""), serial = a.serial.unwrap_or(""),
        client = %client(a), url, reason, "access denied"
    );
}

/// Something was revoked: `kind` is session, user or serial; `what` names it.
pub fn revoke(a: &Actor<'_>, kind: &str, what: &str, reason: &str) {
    tracing::info!(
        target: "audit", event = "revoke", user = a.user.unwrap_or(""),
        device = a.device.unwrap_or(""), serial = a.serial.unwrap_or(""),
        client = %client(a), kind, what, reason, "revoked"
    );
}

/// A user was locked out (`locked`) or let back in; `via` says how (command, admin page).
pub fn lock(a: &Actor<'_>, user: &str, locked: bool, via: &str) {
    let event = if locked { "lock" } else { "unlock" };
    tracing::info!(
        target: "audit", event, user = a.user.unwrap_or(""),
        client = %client(a), target_user = user, via,
        "{}", if locked { "user locked out" } else { "user let back in" }
    );
}

// === OpenID Connect ===
//
// `client_id` is the relying party (a configured client id, or empty when the request named
// none that is configured); `client` stays the address, as in every other event. `grant` is the
// grant's id: `certgate revoke --jti <grant>` ends it.

/// An authorization code was issued at `/oidc/authorize`.
pub fn oidc_code(a: &Actor<'_>, client_id: &str, grant: &str) {
    tracing::info!(
        target: "audit", event = "oidc_code", user = a.user.unwrap_or(""),
        device = a.device.unwrap_or(""), serial = a.serial.unwrap_or(""),
        client = %client(a), client_id, grant, "authorization code issued"
    );
}

/// Tokens were issued at `/oidc/token`, for a code or (`refresh`) a refresh token.
pub fn oidc_token(a: &Actor<'_>, client_id: &str, grant: &str, refresh: bool) {
    tracing::info!(
        target: "audit", event = "oidc_token", user = a.user.unwrap_or(""),
        client = %client(a), client_id, grant, refresh, "tokens issued"
    );
}

/// `/oidc/authorize` or `/oidc/token` (`endpoint`) refused a request: `error` is the OAuth
/// error code, `reason` its description.
pub fn oidc_refused(a: &Actor<'_>, endpoint: &str, client_id: &str, error: &str, reason: &str) {
    tracing::info!(
        target: "audit", event = "oidc_refused", user = a.user.unwrap_or(""),
        device = a.device.unwrap_or(""), serial = a.serial.unwrap_or(""),
        client = %client(a), endpoint, client_id, error, reason, "OpenID Connect request refused"
    );
}

/// A used code or refresh token (`what`) was presented again: its grant is revoked now.
pub fn oidc_replayed(a: &Actor<'_>, client_id: &str, what: &str) {
    let event = if what == "code" {
        "oidc_code_replayed"
    } else {
        "oidc_refresh_reused"
    };
    tracing::warn!(
        target: "audit", event, client = %client(a), client_id, what,
        "a used {what} was presented again: its grant is revoked"
    );
}

/// A client introspected a token (RFC 7662): whether it counts, and whose it is (`user`,
/// `grant` and `kind` are empty unless it is this client's token).
pub fn oidc_introspect(a: &Actor<'_>, client_id: &str, active: bool, kind: &str, grant: &str) {
    tracing::info!(
        target: "audit", event = "oidc_introspect", user = a.user.unwrap_or(""),
        client = %client(a), client_id, active, kind, grant, "token introspected"
    );
}

/// A client revoked a token (RFC 7009): `kind` `access` (that token), `refresh` (its whole
/// grant), or empty (not one of this client's tokens: nothing changed).
pub fn oidc_revoke(a: &Actor<'_>, client_id: &str, kind: &str, grant: &str) {
    tracing::info!(
        target: "audit", event = "oidc_revoke", user = a.user.unwrap_or(""),
        client = %client(a), client_id, kind, grant, "token revocation"
    );
}
