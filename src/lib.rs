//! certgate turns a TLS client certificate into single sign-on for self-hosted apps.
//!
//! A person proves who they are once, with a certificate, at `/auth` and gets a short-lived
//! signed session cookie; the reverse proxy then asks `/verify` about every other request
//! (forward auth). Scripts and WebSocket clients use a bearer token from `/token`.
//!
//! Data flows one way: listener ▶ [`http::extract`] ▶ the credential ([`cert`], [`jwt`]) ▶
//! [`revocation`] ▶ [`identity`] ▶ [`policy`] ▶ response, with the CA and the stores below
//! them; no two modules import each other, directly or round about (`tests/it/architecture.rs`
//! checks). Errors are typed ([`error`]) and become answers in one place, `http::answer`.
//!
//! - [`cli`]: the `certgate` command line, one module per subcommand (`src/main.rs` only calls
//!   [`cli::main`]); [`explain`] and [`proxy_config`] are the logic of two of them.
//! - [`server`]: start-up: the state built from a [`config::Config`], the listeners and their
//!   servers, SIGHUP reloads and following the revocation store.
//! - [`config`]: reads the TOML file and `CERTGATE__…` overrides and puts the sections
//!   together into a validated `Config`; each module validates its own section, reporting
//!   into [`settings`] (every problem named by its key).
//! - [`tls`]: the mTLS listener (rustls), the client certificate captured per connection.
//! - [`cert`]: client certificates parsed and verified; proxy headers; CRLs; serials.
//! - [`identity`]: certificate or token ▶ user, groups, email, name.
//! - [`policy`]: the canonical request, `[[rules]]` (first match wins, default deny), scopes.
//! - [`jwt`]: signing keys and their rotation, mint, verify (with a cache), JWKS.
//! - [`revocation`]: the in-memory revocation view, its table in the database, and Redis.
//! - [`db`]: `data_dir/certgate.db` (SQLite): schema, migrations, backup, the import of old files.
//! - [`http`]: one module per endpoint (`/verify` in stages: credentials, holder, decision),
//!   the route table, pages, and `answer`, where an [`error::AppError`] becomes an answer.
//! - [`error`]: what went wrong, with its data, its stable [`error::Code`] and its status.
//! - [`ca`]: the built-in CA (issue, PKCS#12, CRL, enrollment); [`quickstart`]: `serve`
//!   without a config.
//! - [`session`]: the session cookie's and bearer tokens' settings, and what was issued to
//!   whom (for the status page).
//! - [`settings`]: what every module's settings share (problems named by key, durations).
//! - [`oidc`]: the OpenID Connect provider (`[oidc]`): settings, signing keys, grants.
//! - [`metrics`] (Prometheus), [`audit`] (the audit log), [`clock`] (time as a parameter).

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
pub mod db;
pub mod error;
pub mod explain;
pub mod http;
pub mod identity;
pub mod jwt;
pub mod keyshare;
pub mod metrics;
pub mod oidc;
pub mod policy;
pub mod proxy_config;
pub mod quickstart;
pub mod revocation;
pub mod server;
pub mod session;
pub mod settings;
pub mod tls;
