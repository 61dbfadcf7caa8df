//! The integration suite, one binary (as ripgrep does): real certgate processes, real nginx,
//! curl as the client. Tools missing locally skip a test; under `CI=true` they fail it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod architecture;
mod binding;
mod browser;
mod ca;
mod config_errors;
mod database;
mod direct;
mod explain;
mod harness;
mod home_assistant;
mod home_assistant_sso;
mod lockout;
mod oidc;
mod oidc_apps;
mod oidc_bad_input;
mod oidc_introspect;
mod oidc_logout;
mod oidc_redis;
mod oidc_rp;
mod one_list;
mod operations;
mod proxies;
mod quickstart;
mod replicas;
mod revocation;
mod routes;
mod serials;
mod slow_clients;
mod upgrade;
