//! Exit codes of `pixgram send` and `pixgram msg`, carried through `anyhow` to `main`.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every frame and message asked for was acknowledged (live: the loss allowed) |
//! | 1 | usage or local error (bad flag, unreadable file, ...) |
//! | 2 | some were not delivered (each is named) |
//! | 3 | the receiver never answered, or nothing is listening there |

use std::fmt;

use pixgram::error::SilenceHint;
use pixgram::publish::PublishError;
use pixgram::DriverError;

/// Some frames or messages were not delivered.
pub const UNDELIVERED: i32 = 2;
/// The receiver never answered at all, or the kernel says nothing listens there.
pub const UNREACHABLE: i32 = 3;

/// A failure with its exit code; `main` prints the message and exits with the code.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

pub fn undelivered(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: UNDELIVERED,
        message: message.into(),
    }
    .into()
}

pub fn unreachable(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: UNREACHABLE,
        message: message.into(),
    }
    .into()
}

/// An error that ended a run, with the exit code it deserves: the receiver unreachable or
/// never heard from (3), gone after answering (2), anything else as it is (1).
pub fn classify(e: anyhow::Error, heard: bool) -> anyhow::Error {
    match e.downcast_ref::<DriverError>() {
        Some(DriverError::Unreachable { addr }) => unreachable(format!(
            "nothing is listening at {addr} (the kernel refused the datagrams): is `pixgram \
             recv` running there?"
        )),
        Some(&DriverError::PeerGone { addr, secs, hint }) => {
            let hint = match hint {
                SilenceHint::MayNeedKey => {
                    " The receiver may require --key-file: a receiver with a key drops \
                     datagrams without one, without answering."
                }
                other => other.text(),
            };
            let message = format!(
                "no answer from {addr} for {secs:.1} s: is `pixgram recv` running there?{hint}"
            );
            if heard {
                undelivered(message)
            } else {
                unreachable(message)
            }
        }
        Some(DriverError::Refused { .. }) => undelivered(e.to_string()),
        _ => e,
    }
}

/// The exit code for an error that reached `main`.
pub fn code_of(e: &anyhow::Error) -> i32 {
    e.downcast_ref::<Exit>().map_or(1, |x| x.code)
}

/// A publishing error as `anyhow`, a driver error kept as itself (so [`classify`] sees it).
pub fn from_publish(e: PublishError) -> anyhow::Error {
    match e {
        PublishError::Driver(d) => d.into(),
        other => other.into(),
    }
}
