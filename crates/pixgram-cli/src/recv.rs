//! `pixgram recv`: serve any number of senders, print what arrives, optionally save it. The
//! flags become a receiver config and sinks; the library's receive loop runs; this prints.

use std::time::{Duration, Instant};

use anyhow::bail;
use pixgram::receive::{receive, ReceiverDriver, Until};
use pixgram::save_budget::{SaveBudget, SaveLimits};
use pixgram::sink::saver::{SaverConfig, SaverPool};
use pixgram::sink::{self, FolderSink, MjpegStdout, Sinks};
use pixgram::stats_json::receiver_stats_json;
use pixgram::{ReceiverConfig, UdpReceiver};

use crate::cli::{resolve, RecvArgs};
use crate::flags;
use crate::recv_events::RecvEvents;
use crate::signals::receiving_stop_flag;

// impair.rs (rewritten on another branch, not here) takes these two from recv.
pub use crate::flags::deadline_after;
pub use crate::signals::receiving_stop_flag as stop_flag;

pub fn run(args: RecvArgs) -> anyhow::Result<()> {
    // Issue 17: frames out of NATS instead of from senders.
    #[cfg(feature = "nats")]
    if args.nats.from_nats.is_some() {
        return crate::nats::from_nats(args);
    }
    if args.from.is_some() {
        return crate::hub::subscribe(args);
    }
    let events = prepare(&args)?;
    let key = flags::key(args.key_file.as_deref())?;
    let mut rx = bind(&args, key.as_ref())?;
    announce(&args, &rx, key.is_some(), "listening on")?;
    serve(&args, &mut rx, events)
}

/// The checks made before listening, and the handler the flags ask for (sinks, NATS).
pub(crate) fn prepare(args: &RecvArgs) -> anyhow::Result<RecvEvents> {
    crate::nats::check(&args.nats)?;
    // Connected before listening: a NATS server that is not there fails now, in one line.
    #[cfg(feature = "nats")]
    let nats = crate::nats::Publisher::from_args(&args.nats)?;
    if args.msg_listen.is_some() {
        bail!("--msg-listen belongs to --compat seed: pixgram's own protocol carries messages on --listen");
    }
    if let Some(dir) = &args.save {
        // Before listening: a folder that cannot take files fails now, in one line, not at
        // the first frame.
        sink::check_writable(dir)?;
    }
    #[allow(unused_mut)]
    let mut events = RecvEvents::new(sinks(args)?, args.quiet, args.count);
    #[cfg(feature = "nats")]
    {
        events.nats = nats;
    }
    if args.decode {
        events.timing.decoder = Some(crate::timing::DecodeWorker::start());
    }
    Ok(events)
}

/// The receiver config the limit flags ask for.
pub(crate) fn receiver_config(args: &RecvArgs) -> ReceiverConfig {
    ReceiverConfig {
        max_frame_len: args.max_frame_size,
        max_peers: args.max_peers.max(1),
        max_streams_per_peer: args.max_streams_per_peer.max(1),
        max_frames_in_flight: args.max_frames_in_flight.max(1),
        max_peer_bytes: args.max_peer_bytes,
        max_total_bytes: args.max_total_bytes,
        max_peer_datagrams_per_sec: (args.max_peer_rate > 0).then_some(args.max_peer_rate),
        // An ACK means the sinks have the frame: saved, printed, shown.
        confirm_deliveries: true,
        ..Default::default()
    }
}

/// Listens on --listen with the limits and key asked for.
pub(crate) fn bind(args: &RecvArgs, key: Option<&pixgram::Psk>) -> anyhow::Result<UdpReceiver> {
    let listen = resolve("--listen", &args.listen)?;
    let rx = UdpReceiver::bind_keyed(listen, receiver_config(args), args.recv_buffer, key)?;
    if let Some(w) = rx.buffer_grant().warning() {
        eprintln!("pixgram: warning: {w}");
    }
    Ok(rx)
}

/// The first line: where it listens, whether encrypted, where it saves.
pub(crate) fn announce(
    args: &RecvArgs,
    rx: &UdpReceiver,
    keyed: bool,
    what: &str,
) -> anyhow::Result<()> {
    eprintln!(
        "pixgram: {what} {}{}{}; Ctrl-C to stop",
        rx.local_addr()?,
        if keyed {
            ", encrypted (only senders with the key are heard)"
        } else {
            ""
        },
        args.save
            .as_ref()
            .map(|d| format!(", saving into {}", d.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// Runs the receive loop on `rx` until Ctrl-C, --duration or --count, then prints the
/// summaries.
pub(crate) fn serve<S: ReceiverDriver>(
    args: &RecvArgs,
    rx: &mut S,
    mut events: RecvEvents,
) -> anyhow::Result<()> {
    let stop = receiving_stop_flag()?;
    let deadline = flags::deadline_after(args.duration);
    // The savers wake this receiver when files are durable: attached once it is bound.
    if let Some(folder) = events.sinks.folder.take() {
        events.sinks.folder = Some(with_savers(folder, args, rx.udp())?);
    }
    // JetStream's acknowledgements wake it too, so their frames are confirmed at once.
    #[cfg(feature = "nats")]
    if let Some(p) = &events.nats {
        p.wake(rx.udp().waker()?);
    }
    let until = Until {
        stop: Some(stop.clone()),
        deadline,
        poll: Duration::from_millis(200),
        tick: Some(Duration::from_millis(250)),
    };
    receive(rx, &until, &mut events)?;
    // Stopped by Ctrl-C or --duration: what the savers have is still saved and confirmed.
    events.finish_pending(rx.udp_mut(), SAVE_DRAIN)?;
    if args.count.is_some_and(|n| events.items() >= n) {
        // Reached --count: the last frames' acknowledgements may still be lost on the way,
        // so keep answering retransmissions until every sender has closed, for 2 s at most.
        events.lingering = true;
        let linger = Until {
            stop: Some(stop),
            deadline: Some(Instant::now() + LINGER),
            ..Until::default()
        };
        receive(rx, &linger, &mut events)?;
        events.finish_pending(rx.udp_mut(), SAVE_DRAIN)?;
    }
    let rx = rx.udp();
    events.finish_progress();
    if events.stdout_closed() {
        eprintln!("pixgram: stdout was closed by its reader; stopped receiving");
    }
    eprintln!("{}", events.summary(rx.stats()));
    if let Some(s) = events.sinks.folder.as_ref().and_then(|f| f.saver_stats()) {
        eprintln!(
            "savers: {} files saved, {} failed, in {} folder fsyncs; {} waits for room in their \
             queue, {} refused for lack of it; at most {} files ({:.1} MB) queued",
            s.saved,
            s.failed,
            s.commits,
            s.waited_for_room,
            s.refused_behind,
            s.max_queued_frames,
            s.max_queued_bytes as f64 / 1e6
        );
    }
    #[cfg(feature = "nats")]
    if let Some(p) = &mut events.nats {
        eprintln!("{}", p.finish());
    }
    if let Some(d) = &mut events.timing.decoder {
        d.finish();
    }
    #[cfg(feature = "window")]
    if let Some(w) = &mut events.sinks.window {
        w.finish();
        eprintln!(
            "window: {} frames shown, {} skipped (busy or not decodable)",
            w.shown(),
            w.skipped()
        );
    }
    if let Some(line) = events.timing.line() {
        eprintln!("{line}");
    }
    eprintln!("{}", limits_line(rx.stats()));
    eprintln!("{}", first_exchange_line(rx.stats()));
    events.emit(&receiver_stats_json(rx.stats(), rx.open_stats().as_ref()))?;
    if let Some(o) = rx.open_stats() {
        eprintln!(
            "key: {} datagrams authenticated; dropped unanswered: {} failing authentication \
             (wrong key or tampered), {} replayed, {} not encrypted, {} under a session key \
             this receiver does not hold (recorded before a restart, or for another \
             receiver), {} not under a session key",
            o.opened, o.bad_tag, o.replayed, o.not_sealed, o.no_session_key, o.not_session_sealed
        );
    }
    Ok(())
}

/// What the first exchange (docs/PROTOCOL.md 8) answered and refused.
fn first_exchange_line(s: &pixgram::ReceiverStats) -> String {
    format!(
        "first exchange: {} HELLOs, {} CHALLENGEs sent, {} withheld over budget, {} HELLOs with \
         an invalid or expired token, {} datagrams from addresses not validated ({} used once \
         their HELLO came), {} moves of an active session refused",
        s.hellos,
        s.challenges_sent,
        s.challenges_limited,
        s.tokens_invalid,
        s.unvalidated,
        s.early_data_used,
        s.moves_refused,
    )
}

/// What the limits refused (docs/PROTOCOL.md 3.7).
fn limits_line(s: &pixgram::ReceiverStats) -> String {
    format!(
        "limits: refused {} sessions over --max-peers, {} over --max-streams-per-peer, {} over \
         --max-frames-in-flight, {} over the memory budget (--max-peer-bytes, \
         --max-total-bytes), {} over --max-frame-size, {} over --max-peer-rate; {} replies held \
         back (a sender may not get more bytes back than it sent)",
        s.over_peers,
        s.over_streams,
        s.over_frames_in_flight,
        s.over_budget,
        s.over_frame_limit,
        s.over_rate,
        s.replies_limited,
    )
}

/// How long `recv --count N` keeps answering after the N-th item, while senders are open.
const LINGER: Duration = Duration::from_secs(2);

/// How long recv waits at the end for the savers to finish the files they have.
const SAVE_DRAIN: Duration = Duration::from_secs(30);

/// `folder` saving on `--save-threads` savers that wake `rx` when files are durable (none:
/// on the receive loop).
fn with_savers(
    folder: FolderSink,
    args: &RecvArgs,
    rx: &UdpReceiver,
) -> anyhow::Result<FolderSink> {
    if args.save_threads == 0 {
        return Ok(folder);
    }
    let waker = rx.waker()?;
    let config = SaverConfig {
        threads: args.save_threads,
        // The savers hold at most as many bytes as reassembly may (--max-total-bytes): frames
        // handed to them have left the receiver's own budget.
        queue_bytes: usize::try_from(args.max_total_bytes).unwrap_or(usize::MAX),
        ..SaverConfig::default()
    };
    let pool = SaverPool::for_folder(folder.dir(), config, move || waker.wake())?;
    Ok(folder.with_savers(pool))
}

/// The sinks the flags ask for: --save (within --max-saves-per-sec and
/// --max-save-mbytes-per-sec), --stdout, --http, --window.
pub(crate) fn sinks(args: &RecvArgs) -> anyhow::Result<Sinks> {
    let mut sinks = Sinks {
        folder: args.save.as_ref().map(|dir| {
            FolderSink::new(dir).with_budget(SaveBudget::new(SaveLimits {
                files_per_sec: args.max_saves_per_sec.max(0.0),
                bytes_per_sec: args.max_save_mbytes_per_sec.max(0.0) * 1e6,
            }))
        }),
        stdout: args.stdout.then(MjpegStdout::new),
        ..Sinks::default()
    };
    if let Some(addr) = &args.http {
        let viewer = pixgram::viewer::Viewer::bind_allowing(
            resolve("--http", addr)?,
            &args.http_allow_host,
        )?;
        eprintln!(
            "pixgram: viewer on http://{}/ (open it in a browser)",
            viewer.local_addr()
        );
        sinks.viewer = Some(viewer);
    }
    if args.window {
        #[cfg(feature = "window")]
        {
            sinks.window = Some(pixgram::window::WindowSink::start());
        }
        #[cfg(not(feature = "window"))]
        bail!(
            "--window needs a build with the window feature: cargo build --release \
             --features window (and a desktop); --http ADDR shows the streams in a browser"
        );
    }
    Ok(sinks)
}
