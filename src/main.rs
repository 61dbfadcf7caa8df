//! The `certgate` command line; it lives in the library ([`certgate::cli`]).

fn main() -> std::process::ExitCode {
    certgate::cli::main()
}
