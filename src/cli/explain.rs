//! `certgate explain --config FILE --url URL [--cert FILE | --token T | --user U]`: what the
//! rules decide for a request, and why; with `--client ID` instead of `--url`, whether that
//! person may sign in to the OpenID Connect client. Exit 0 allow, 1 deny, 2 a question it
//! cannot answer.

use std::path::PathBuf;

use super::common::load;
use super::CliError;
use crate::clock::{Clock as _, SystemClock};
use crate::explain::{explain, explain_oidc, Who};

// The options of `explain` (the variant's doc comment is its help).
#[derive(clap::Args)]
pub(super) struct ExplainArgs {
    /// The configuration file (TOML).
    #[arg(long, env = "CERTGATE_CONFIG")]
    config: PathBuf,
    /// The URL as the browser asks for it, e.g. https://grafana.example.com/admin.
    #[arg(
        long,
        required_unless_present = "client_id",
        conflicts_with = "client_id"
    )]
    url: Option<String>,
    /// An OpenID Connect client ([[oidc.clients]] id): may the person sign in to it?
    #[arg(long)]
    client_id: Option<String>,
    #[arg(long, default_value = "GET")]
    method: String,
    /// The client's address, for network rules.
    #[arg(long)]
    client: Option<std::net::IpAddr>,
    /// As the holder of this certificate (PEM).
    #[arg(long, conflicts_with_all = ["token", "user"])]
    cert: Option<PathBuf>,
    /// As the holder of this certgate token (bearer or session).
    #[arg(long, conflicts_with = "user")]
    token: Option<String>,
    /// As this user (from [[users]]).
    #[arg(long)]
    user: Option<String>,
}

pub(super) fn run(args: ExplainArgs) -> Result<(), CliError> {
    let config = load(&args.config, None)?;
    let text = std::fs::read_to_string(&args.config).unwrap_or_default();
    let who = match (args.cert, args.token, args.user) {
        (Some(c), _, _) => Who::Cert(c),
        (_, Some(t), _) => Who::Token(t),
        (_, _, Some(u)) => Who::User(u),
        _ => Who::Nobody,
    };
    let now = SystemClock.now();
    let explanation = match (&args.url, &args.client_id) {
        (Some(url), _) => explain(&config, &text, url, &args.method, args.client, &who, now),
        (None, Some(id)) => explain_oidc(&config, id, &who, now),
        (None, None) => Err("give --url, or --client-id for an OpenID Connect client".into()),
    }
    .map_err(|why| CliError::usage("certgate explain", why))?;
    println!("{}", explanation.text);
    if explanation.allowed {
        Ok(())
    } else {
        Err(CliError::Denied)
    }
}
