//! The session cookie: `__Host-` (or `__Secure-` with a Domain for SSO), HttpOnly, Lax.

use std::time::Duration;

use cookie::{Cookie, SameSite};

use crate::session;

pub fn session(cfg: &session::Settings, value: &str, ttl: Duration) -> String {
    build(
        cfg,
        value.to_string(),
        i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
    )
}

/// An expired cookie that makes the browser forget the session.
pub fn clear(cfg: &session::Settings) -> String {
    build(cfg, String::new(), 0)
}

fn build(cfg: &session::Settings, value: String, max_age: i64) -> String {
    let mut c = Cookie::build((cfg.cookie_name.clone(), value))
        .path("/")
        .secure(cfg.secure)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age));
    if let Some(domain) = &cfg.cookie_domain {
        c = c.domain(domain.clone());
    }
    c.build().to_string()
}
