//! `recv --publish nats://...` and `recv --from-nats nats://...` (issue 17): the flags, the
//! hook `recv` calls for every frame and message it delivers, and the loop that takes frames
//! back out of NATS into the sinks. Without the `nats` feature the flags exist and say which
//! build they need.

use clap::Args;

/// The NATS flags of `pixgram recv`.
#[derive(Args, Debug, Clone, Default)]
pub struct NatsArgs {
    /// Publish every delivered frame on NATS (nats://HOST:PORT) on PREFIX.frames.KEY, and
    /// every JSON message on PREFIX.messages.KEY (KEY: the sender's address and stream);
    /// the payload unchanged, the metadata as JSON in a Pixgram-Meta header. Needs a build
    /// with `--features nats`.
    #[arg(long, value_name = "URL", conflicts_with = "from_nats")]
    pub publish: Option<String>,
    /// With --publish: the subject prefix (default `pixgram`). With --from-nats: the subject
    /// to take, wildcards allowed (default `pixgram.frames.>`).
    #[arg(long, value_name = "SUBJECT")]
    pub subject: Option<String>,
    /// With --publish: publish into this JetStream stream (created over PREFIX.> if missing)
    /// and acknowledge a frame to its camera only once JetStream has stored it. With
    /// --from-nats: consume from this stream, acknowledging each frame once the sinks have it
    /// (at least once).
    #[arg(long, value_name = "STREAM")]
    pub jetstream: Option<String>,
    /// Take frames out of NATS (nats://HOST:PORT) into the sinks (--save, --stdout, --http,
    /// --window) instead of listening for senders.
    #[arg(long, value_name = "URL")]
    pub from_nats: Option<String>,
    /// With --from-nats: join this queue group (each frame goes to one member); with
    /// --jetstream, the name of the durable consumer the group shares.
    #[arg(long, value_name = "GROUP", requires = "from_nats")]
    pub queue: Option<String>,
    /// With --publish (core NATS): frames waiting for the NATS client at most; a frame that
    /// finds no room in time (--nats-wait) is not published, counted, and its sender told it
    /// was not taken. With --publish --jetstream: frames awaiting their JetStream
    /// acknowledgement at most (published one after another without waiting for each; a
    /// frame finding them all taken waits up to 5 s for one).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub nats_queue: usize,
    /// With --publish (core NATS): milliseconds a frame may wait for room in that queue
    /// before it counts as not taken (the receive loop waits with it).
    #[arg(long, value_name = "MS", default_value_t = 20)]
    pub nats_wait: u64,
    /// With --from-nats --jetstream: seconds a frame may stay unacknowledged before it goes
    /// to another worker.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub ack_wait: f64,
}

#[cfg(not(feature = "nats"))]
mod disabled {
    use super::NatsArgs;

    const NEEDS: &str = "need a build with the nats feature: cargo build --release -p \
                         pixgram-cli --features nats";

    /// Refuses NATS flags in a build without NATS.
    pub fn check(args: &NatsArgs) -> anyhow::Result<()> {
        if args.publish.is_some() || args.from_nats.is_some() || args.jetstream.is_some() {
            anyhow::bail!("--publish, --from-nats and --jetstream {NEEDS}");
        }
        Ok(())
    }
}

#[cfg(not(feature = "nats"))]
pub use disabled::*;

#[cfg(feature = "nats")]
mod consume;
#[cfg(feature = "nats")]
mod publish;

#[cfg(feature = "nats")]
pub use consume::from_nats;
#[cfg(feature = "nats")]
pub use publish::{check, Handed, Publisher};
