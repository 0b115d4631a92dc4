//! `jupiter-host`: parse the arguments, run, print the error chain.

use std::process::ExitCode;

fn main() -> ExitCode {
    match jupiter_host::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if jupiter_host::cli::is_cancelled(&e) => {
            eprintln!("cancelled; no output written");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
