//! The `pixgram` command. Flags and output live here; the protocol lives in pixgram-core and the
//! socket drivers in the pixgram library.

/// Lines on stderr that never panic: with stderr closed (`2>&-`) or gone, std's `eprintln!`
/// panics; this one drops the line. Defined before the modules, it shadows std's in all of them.
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod cli;
mod compat;
mod demo;
mod exit;
mod flags;
mod hub;
mod impair;
mod keygen;
mod msg;
mod nats;
mod output;
mod quality;
mod recv;
mod recv_events;
mod report;
mod rtp_flags;
mod rtp_recv;
mod rtp_send;
mod send;
mod signals;
mod stream;
mod timing;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print and exit 0; a usage error is a local error: 1 (clap's
        // own 2 means "not delivered" for send and msg).
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            std::process::exit(1);
        }
        Err(e) => e.exit(),
    };
    let seed = Some(cli::Compat::Seed);
    // `--compat seed`, for every command that has it, is decided here and only here.
    let result = match cli.command {
        cli::Command::Send(args) if args.compat == seed => compat::send(&args),
        cli::Command::Send(args) if args.rtp.rtp => rtp_send::run(args),
        cli::Command::Send(args) if flags::is_live_source(&args) => stream::run(args),
        cli::Command::Send(args) => send::run(args),
        cli::Command::Recv(args) if args.compat == seed => compat::recv(&args),
        cli::Command::Recv(args) if args.rtp.rtp => rtp_recv::run(args),
        cli::Command::Recv(args) => recv::run(args),
        cli::Command::Msg(args) if args.compat == seed => compat::msg(&args),
        cli::Command::Msg(args) => msg::run(args),
        cli::Command::Hub(args) => hub::run(args),
        cli::Command::Demo(args) => demo::run(args),
        cli::Command::Impair(args) => impair::run(args),
        cli::Command::Keygen(args) => keygen::run(&args),
    };
    if let Err(e) = result {
        eprintln!("pixgram: error: {}", one_line(&e));
        std::process::exit(exit::code_of(&e));
    }
}

/// The error and its causes on one line, skipping a cause its message already includes.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
