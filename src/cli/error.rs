//! Why a subcommand failed, and the one place that becomes a message and an exit code.

use std::process::ExitCode;

use crate::config::Problems;
use crate::server::StartError;

/// Why a subcommand failed. Each names the command it came from (`certgate ca`, …), so the
/// message reads as it always has: `certgate ca: --days: must be between 1 and 3650`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration has problems, printed one per line, `key: problem (hint)`: exit 2,
    /// as `check-config`.
    #[error("{0}")]
    Config(#[from] Problems),
    /// The command line asks for something that cannot be done (a flag's value out of range, an
    /// unknown serial, a URL that is not one): exit 2.
    #[error("{command}: {problem}")]
    Usage {
        command: &'static str,
        problem: String,
    },
    /// The command could not do its work (a file, the CA, the revocation store): exit 1.
    #[error("{command}: {problem}")]
    Failed {
        command: &'static str,
        problem: String,
    },
    /// `serve`: certgate could not start, or its server failed: exit 1.
    #[error("certgate: {0}")]
    Start(#[from] StartError),
    /// `explain`: the rules deny; the explanation is printed already: exit 1, no message.
    #[error("denied")]
    Denied,
}

// === impl CliError ===

impl CliError {
    /// Bad input: `{command}: {problem}`.
    pub(crate) fn usage(command: &'static str, problem: impl Into<String>) -> Self {
        Self::Usage {
            command,
            problem: problem.into(),
        }
    }

    /// A flag's value is unusable: `{command}: {flag}: {problem}`.
    pub(crate) fn flag(command: &'static str, flag: &str, problem: impl std::fmt::Display) -> Self {
        Self::usage(command, format!("{flag}: {problem}"))
    }

    /// The work failed: `{command}: {problem}`.
    pub(crate) fn failed(command: &'static str, problem: impl std::fmt::Display) -> Self {
        Self::Failed {
            command,
            problem: problem.to_string(),
        }
    }

    /// The exit code: 2 for a bad configuration or command line, 1 for a failure or a denial.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Usage { .. } => 2,
            Self::Failed { .. } | Self::Start(_) | Self::Denied => 1,
        }
    }

    /// Prints the message on stderr (none for [`CliError::Denied`]) and gives the exit code.
    pub fn report(&self) -> ExitCode {
        if !matches!(self, Self::Denied) {
            eprintln!("{self}");
        }
        ExitCode::from(self.exit_code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_and_bad_config_exit_2_failures_and_denials_exit_1() {
        assert_eq!(CliError::Config(Problems(Vec::new())).exit_code(), 2);
        assert_eq!(CliError::flag("certgate ca", "--days", "no").exit_code(), 2);
        assert_eq!(CliError::failed("certgate ca", "no").exit_code(), 1);
        assert_eq!(CliError::Denied.exit_code(), 1);
    }

    #[test]
    fn messages_name_the_command_and_the_flag() {
        let e = CliError::flag("certgate ca", "--days", "must be between 1 and 3650");
        assert_eq!(
            e.to_string(),
            "certgate ca: --days: must be between 1 and 3650"
        );
        let e = CliError::failed("certgate keys", "no keys");
        assert_eq!(e.to_string(), "certgate keys: no keys");
    }
}
