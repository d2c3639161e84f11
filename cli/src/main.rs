//! `cimg`: the command-line tool for compressed-image (.cimg) files.
//!
//! Each subcommand lives in its own module and returns an [`Outcome`]; this file parses
//! the command line, installs the interrupt handler and turns the outcome into one line
//! on stderr and an exit status.

mod args;
mod chunk_io;
mod compact;
mod describe;
mod export;
mod failure;
mod import;
mod info;
mod interrupt;
mod ls;
mod npy;
mod output;
mod preview;
mod progress;
mod verify;

use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::args::{Cli, Command};
use crate::failure::{Failure, Outcome, Status};
use crate::interrupt::Interrupt;
use crate::progress::{Display, Reporter};

/// What every subcommand gets besides its arguments.
pub struct Context {
    display: Display,
    interrupt: Interrupt,
}

impl Context {
    /// A progress observer for the operation `label` (say `compact scan.cimg`).
    pub fn reporter(&self, label: String) -> Reporter<'_> {
        Reporter::new(label, self.display, &self.interrupt)
    }

    /// Stop before working on `path` if an interrupt arrived.
    pub fn check_interrupt(&self, path: &Path) -> Result<(), Failure> {
        if self.interrupt.requested() {
            return Err(Failure::interrupted(path));
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    // First, so that an interrupt at any later point is seen.
    let interrupt = match Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(e) => {
            eprintln!("cimg: cannot install the interrupt handler: {e}");
            return Status::Failed.into();
        }
    };
    let cli = Cli::parse();
    let ctx = Context {
        display: Display::choose(cli.quiet),
        interrupt,
    };
    match run(&ctx, cli.command) {
        Ok(status) => status,
        Err(failure) => failure.report(),
    }
    .into()
}

/// Run one subcommand.
fn run(ctx: &Context, command: Command) -> Outcome {
    match command {
        Command::Info(args) => info::run(ctx, args),
        Command::Verify(args) => verify::run(ctx, args),
        Command::Compact(args) => compact::run(ctx, args),
        Command::Ls(args) => ls::run(ctx, args),
        Command::Get(args) => chunk_io::get(ctx, args),
        Command::Set(args) => chunk_io::set(ctx, args),
        Command::Import(args) => import::run(ctx, args),
        Command::Export(args) => export::run(ctx, args),
        Command::Preview(args) => preview::run(ctx, args),
        Command::Completions(args) => {
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "cimg", &mut out);
            output::emit(&String::from_utf8_lossy(&out))?;
            Ok(Status::Success)
        }
    }
}
