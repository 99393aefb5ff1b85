//! The `pixgram` command. Flags and output live here; the protocol lives in pixgram-core and the
//! socket drivers in the pixgram library.

mod cli;
mod compat;
mod demo;
mod msg;
mod recv;
mod send;
mod summary;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Send(args) => send::run(args),
        cli::Command::Recv(args) => recv::run(args),
        cli::Command::Msg(args) => msg::run(args),
        cli::Command::Demo(args) => demo::run(args),
    };
    if let Err(e) = result {
        // One clear line: the error and its causes.
        eprintln!("pixgram: error: {e:#}");
        std::process::exit(1);
    }
}
