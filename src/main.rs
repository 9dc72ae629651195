//! The `streamctl` binary: parses arguments and hands off to `cli`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
