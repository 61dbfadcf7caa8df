//! certgate turns a TLS client certificate into single sign-on for self-hosted apps.
//!
//! A person proves who they are once, with a certificate, at `/auth` and gets a short-lived
//! signed session cookie; the reverse proxy then asks `/verify` about every other request
//! (forward auth). Scripts and WebSocket clients use a bearer token from `/token`.
//!
//! Data flows one way: listener ▶ [`http::extract`] ▶ [`cert`] ▶ [`identity`] ▶
//! [`revocation`] ▶ response, with errors turned into answers in one place, [`error`].

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod ca;
pub mod cert;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod explain;
pub mod http;
pub mod identity;
pub mod jwt;
pub mod metrics;
pub mod policy;
pub mod proxy_config;
pub mod quickstart;
pub mod revocation;
pub mod server;
pub mod sessions;
pub mod tls;
