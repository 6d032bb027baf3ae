//! `pravega-webhook`: see `pravega-webhook --help` and the crate's README.

use std::error::Error;
use std::process::ExitCode;

use clap::Parser;
use pravega_webhook::cli::{Cli, run};

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Report once, with every cause that the message does not already include.
            let mut message = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                let text = cause.to_string();
                if !message.contains(&text) {
                    message.push_str(": ");
                    message.push_str(&text);
                }
                source = cause.source();
            }
            eprintln!("pravega-webhook: {message}");
            ExitCode::FAILURE
        }
    }
}
