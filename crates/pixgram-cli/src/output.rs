//! Writing to stdout without ever panicking on a reader that went away.

use std::io::Write;

/// Writes `bytes` to stdout and flushes. `Ok(false)` when the reader has gone away (EPIPE:
/// `| head`, a player that quit; Rust ignores SIGPIPE, so the write returns the error instead
/// of killing the process); other write errors are errors.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}

/// One line on stdout for a person or a script; dropped once nobody reads stdout (never a
/// broken-pipe panic).
pub fn print_line(line: &str) {
    let _ = write_stdout(format!("{line}\n").as_bytes());
}
