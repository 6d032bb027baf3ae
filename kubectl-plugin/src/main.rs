//! `kubectl-pravega`: run as `kubectl pravega ...` once on the `PATH`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use kubectl_pravega::cli::Cli;
use kubectl_pravega::commands::{self, Terminal};
use kubectl_pravega::render::Style;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let interactive = std::io::stdout().is_terminal();
    let no_color = std::env::var("NO_COLOR").ok();
    let terminal = Terminal {
        style: Style::detect(interactive, no_color.as_deref()),
        interactive,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli, terminal)) {
        Ok(()) => ExitCode::SUCCESS,
        // The plan already shows the denial on stdout.
        Err(kubectl_pravega::Error::Denied(_)) => ExitCode::FAILURE,
        Err(e @ kubectl_pravega::Error::Server { .. }) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
