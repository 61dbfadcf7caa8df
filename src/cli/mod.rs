//! The `certgate` command line: its subcommands (one module each), their options and, in
//! [`CliError`], their exit codes: 0 done, 1 failed (or `explain`: denied), 2 a bad
//! configuration or command line (as clap's own usage errors).

mod backup;
mod ca;
mod check_config;
mod common;
mod enroll;
mod error;
mod explain;
mod keys;
mod proxy_config;
mod revoke;
mod serve;
mod store;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::CliError;

use common::{Common, ConfigFile};

#[derive(Parser)]
#[command(
    name = "certgate",
    version,
    about = "Client-certificate single sign-on gateway"
)]
struct Cli {
    /// Log format on stderr; json writes one JSON object per line (audit events have
    /// `"target":"audit"`).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "pretty",
        env = "CERTGATE_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. Without --config: the quickstart with a demo CA in ./certgate-data.
    Serve {
        #[command(flatten)]
        common: Common,
    },
    /// Check a config file: exit 0 when valid, else print every problem and exit 2.
    CheckConfig {
        #[command(flatten)]
        file: ConfigFile,
    },
    /// The built-in CA: create it, issue client certificates (with .p12 for devices), list them.
    Ca {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: ca::CaCommand,
    },
    /// One-time enrollment links that install a certificate on a phone, watch or browser.
    Enroll {
        #[command(subcommand)]
        command: enroll::EnrollCommand,
    },
    /// Signing keys: list them, or rotate (publish the next key now, sign with it later).
    Keys {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Revoke a user's tokens, a certificate serial or one token id: every certgate using the
    /// same data directory (or, with store.backend = "redis", the same Redis) refuses it within
    /// a second, and after restarts.
    Revoke(revoke::RevokeArgs),
    /// Lock a user out at run time (disable), or let them back in (enable): every certgate
    /// sharing the store refuses their certificates, sessions and tokens within a second.
    User {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// What the rules decide for a URL, and why: exit 0 allow, 1 deny.
    Explain(explain::ExplainArgs),
    /// Copy the database (revocations, the CA's records, enrollment links) to FILE while
    /// certgate runs: a consistent snapshot of every change committed before it started.
    Backup(backup::BackupArgs),
    /// Print a tested proxy configuration for your hosts (config/proxies/ with your names);
    /// --config fills in the CA bundle, certgate's listener and the sign-in host from certgate's
    /// config.
    ProxyConfig(proxy_config::ProxyConfigArgs),
}

/// Parses the command line, runs the subcommand and turns its outcome into the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve { common } => serve::run(common),
        Command::CheckConfig { file } => check_config::run(&file),
        Command::Ca { common, command } => ca::run(&common, command),
        Command::Enroll {
            command: enroll::EnrollCommand::Create(args),
        } => enroll::create(args),
        Command::Keys { common, command } => keys::run(&common, command),
        Command::Revoke(args) => revoke::run(args),
        Command::User { common, command } => user::run(&common, command),
        Command::Explain(args) => explain::run(args),
        Command::Backup(args) => backup::run(&args),
        Command::ProxyConfig(args) => proxy_config::run(args),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: a log file or journald gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(e) = installed {
        eprintln!("certgate: no log: {e}");
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_and_data_dir_go_before_or_after_a_ca_subcommand() {
        for args in [
            ["certgate", "ca", "--data-dir", "d", "list"],
            ["certgate", "ca", "list", "--data-dir", "d"],
        ] {
            let cli = Cli::try_parse_from(args).map_err(|e| e.to_string());
            let Ok(Cli {
                command: Command::Ca { common, .. },
                ..
            }) = cli
            else {
                panic!("{args:?} is not `ca`");
            };
            assert_eq!(common.data_dir, Some("d".into()));
        }
    }
}
