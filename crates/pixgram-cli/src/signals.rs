//! Ctrl-C, SIGTERM and SIGHUP for the sending commands: the first asks the run to stop (it
//! then prints its summary and says what was not delivered); a second one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The flag the signal handler sets, installing the handler on first use (once per process).
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    if let Some(stop) = STOP.get() {
        return Ok(stop.clone());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || {
        if s.swap(true, Ordering::Relaxed) {
            // Asked twice: no more waiting.
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(STOP.get_or_init(|| stop).clone())
}

/// For `recv`: Ctrl-C (SIGINT), SIGTERM and SIGHUP set the returned flag instead of killing
/// the process, so the summary is printed (the `termination` feature of ctrlc adds SIGTERM and
/// SIGHUP); a second one does not exit at once.
pub fn receiving_stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::Relaxed))
        .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}
