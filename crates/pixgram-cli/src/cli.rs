//! Command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Move images, camera frames and JSON messages between programs over UDP: every datagram
/// checked, every frame acknowledged, nothing half-delivered.
#[derive(Debug, Parser)]
#[command(name = "pixgram", version, propagate_version = true)]
#[command(after_help = "Try it: pixgram demo\n\
Receive: pixgram recv --listen 127.0.0.1:9000 --save received/\n\
Send:    pixgram send --to 127.0.0.1:9000 photo.jpg")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send image files (or any files) to a receiver, each acknowledged.
    Send(SendArgs),
    /// Receive frames and messages from any number of senders.
    Recv(RecvArgs),
    /// Send JSON messages to a receiver, each acknowledged.
    Msg(MsgArgs),
    /// Receive streams like recv does and serve every frame and message to subscribers
    /// (`pixgram recv --from ADDR`), each with its own queue and rate.
    Hub(HubArgs),
    /// Run a receiver and a sender on loopback, send the sample images and messages, and check
    /// every byte that arrives.
    Demo(DemoArgs),
    /// Write a new random pre-shared key to a file (mode 0600), for --key-file on both ends.
    Keygen(KeygenArgs),
    /// Relay UDP between clients and a destination through a bad network: seeded loss, loss
    /// bursts, delay, jitter, reordering, duplication, corruption and a rate limit.
    Impair(ImpairArgs),
}

/// How frames are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Every frame, whole: lost chunks are sent again until acknowledged.
    Reliable,
    /// Latest frame wins: frames have a deadline, a lost frame never delays a later one;
    /// optional forward error correction (--fec).
    Live,
}

/// Image formats to send in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JPEG (lossy, small; --quality sets the trade-off).
    Jpeg,
    /// PNG (lossless, large).
    Png,
}

/// Parses WIDTHxHEIGHT.
pub fn parse_size(what: &str, text: &str) -> anyhow::Result<(u32, u32)> {
    let parsed = text
        .split_once(['x', 'X'])
        .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((w, h)) if (16..=16_384).contains(&w) && (16..=16_384).contains(&h) => Ok((w, h)),
        _ => anyhow::bail!(
            "{what} takes WIDTHxHEIGHT between 16 and 16384, like 1280x720, not `{text}`"
        ),
    }
}

/// Wire formats other than pixgram's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compat {
    /// The original Python scripts: an 8-byte length, then 1024-byte chunks, "get message!!!"
    /// after each image; JSON datagrams answered "get the msg".
    Seed,
}

/// The exit codes of `send` and `msg` (crate::exit), for their --help.
macro_rules! exit_codes_help {
    () => {
        "\n\nExit codes:\n  \
0  every frame or message asked for was acknowledged (live streams: the loss --max-loss\n     \
allows; by default at least one frame delivered)\n  \
1  usage or local error (bad flag, unreadable or oversized file, invalid JSON)\n  \
2  some were not delivered (the summary names them), the receiver refused the session\n     \
(it serves as many senders as it takes), or interrupted by Ctrl-C or SIGTERM\n  \
3  the receiver never answered, or nothing is listening at the address"
    };
}

#[derive(Debug, Args)]
#[command(after_help = concat!("Examples:\n  \
pixgram send --to 127.0.0.1:9000 a.jpg b.png\n  \
pixgram send --to 127.0.0.1:9000 --dir photos/ --loop 10 --window 16\n  \
pixgram send --to 127.0.0.1:9000 cam.jpg --meta '{\"camera\":\"front\",\"ts\":1700000000}'\n  \
pixgram send --to 127.0.0.1:9000 --dir frames/ --mode live --fps 30 --fec 10\n  \
pixgram send --to 127.0.0.1:9000 --dir frames/ --mode live --fec auto --rate 20\n  \
pixgram send --compat seed --to 127.0.0.1:9999 a.jpg\n  \
pixgram send --to 127.0.0.1:9000 --pattern --size 1280x720 --fps 30 --count 300\n  \
ffmpeg -f lavfi -i testsrc2 -f mjpeg - | pixgram send --to 127.0.0.1:9000 --stdin\n  \
pixgram send --to 127.0.0.1:9000 --camera /dev/video0 --size 1280x720 --fps 30   (--features camera)\n  \
pixgram send --to 127.0.0.1:9000 --dir photos/ --resize 640x480 --quality 70\n  \
pixgram send --to 127.0.0.1:9000 --pattern --count 600 --max-loss 5\n  \
pixgram send --rtp --to 127.0.0.1:5000 --dir photos/ --fps 30 --sdp stream.sdp   (RTP/JPEG)", exit_codes_help!()))]
pub struct SendArgs {
    /// Receiver address, HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
    /// Files to send; a quoted pattern such as 'frames/*.jpg' is expanded in name order.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Send every file in this folder (name order, not recursive). Repeatable.
    #[arg(long, value_name = "DIR")]
    pub dir: Vec<PathBuf>,
    /// Send the whole list this many times.
    #[arg(long = "loop", value_name = "N", default_value_t = 1)]
    pub repeat: u32,
    /// Frames in flight before waiting for an acknowledgement (1 = stop-and-wait).
    #[arg(long, value_name = "W", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub window: u32,
    /// JSON object delivered with every frame (pixgram adds "file": the file's name).
    #[arg(long, value_name = "JSON")]
    pub meta: Option<String>,
    /// Bytes per datagram including headers, exactly: no path MTU discovery. 1200 is safe on
    /// any network. Default: start at 1200 and use the largest size the path carries (see
    /// --max-datagram-size).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(576..=65507))]
    pub datagram_size: Option<u32>,
    /// Path MTU discovery: start at 1200 (or --datagram-size) and probe larger datagrams up
    /// to BYTES, using the largest the receiver confirms (65507 on loopback, 8972 on jumbo
    /// frames, 1472 on Ethernet) and falling back if the path stops carrying it. Default
    /// 65507; with --datagram-size, discovery only if this is given too.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(576..=65507))]
    pub max_datagram_size: Option<u32>,
    /// Seconds without any answer before the receiver is declared gone. Counted from its
    /// last answer: a slow transfer waits as long as the receiver makes progress.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// Largest file (frame body, metadata included) to send, in bytes; checked for every
    /// file before anything is sent. The receiver has its own --max-frame-size.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_frame_size: u64,
    /// Live mode: fail (exit 2) if more than PCT percent of the frames sent were not
    /// delivered. Default: fail only if none was delivered. Reliable mode always requires
    /// every frame.
    #[arg(long, value_name = "PCT")]
    pub max_loss: Option<f64>,
    /// Highest sending rate in Mbit/s, at least 0.1 (default: found by congestion control).
    #[arg(long, value_name = "MBIT", value_parser = parse_send_rate)]
    pub rate: Option<f64>,
    /// Delivery mode; the receiver follows the sender. Default: reliable for files and
    /// folders, live for --pattern, --stdin and --camera.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Send a generated moving test pattern (frame number and send time drawn in and carried
    /// in the metadata, so the receiver can measure latency).
    #[arg(long, conflicts_with_all = ["stdin", "camera"])]
    pub pattern: bool,
    /// Send the JPEG frames of an MJPEG stream read from stdin, e.g.
    /// `ffmpeg -i cam.mp4 -f mjpeg - | pixgram send --to HOST:PORT --stdin`.
    #[arg(long, conflicts_with = "camera")]
    pub stdin: bool,
    /// Send frames from a V4L2 camera such as /dev/video0 (needs a build with `--features
    /// camera`).
    #[arg(long, value_name = "DEV")]
    pub camera: Option<PathBuf>,
    /// Frame size of --pattern and --camera, WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH")]
    pub size: Option<String>,
    /// Stop after this many frames (--pattern, --stdin, --camera).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Re-encode as JPEG of this quality (1-100). Without --quality, --resize or --format,
    /// files are sent exactly as they are.
    #[arg(long, value_name = "Q", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: Option<u8>,
    /// Scale images to WIDTHxHEIGHT before sending (re-encodes them).
    #[arg(long, value_name = "WxH")]
    pub resize: Option<String>,
    /// Send images in this format (re-encodes those in another).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Live mode: frames per second to send at (default 30).
    #[arg(long, value_name = "N")]
    pub fps: Option<f64>,
    /// Live mode: a frame not delivered this many milliseconds after it was sent is dropped
    /// (default: three frame intervals, at least 50).
    #[arg(long, value_name = "MS")]
    pub deadline: Option<u64>,
    /// Live mode: forward error correction, as parity overhead in percent (e.g. 10), or `auto`
    /// to follow the loss the receiver reports.
    #[arg(long, value_name = "PERCENT|auto")]
    pub fec: Option<String>,
    /// Pre-shared key file (from `pixgram keygen`): every datagram is encrypted and
    /// authenticated; both ends need the same key.
    #[arg(long, value_name = "PATH", env = "PIXGRAM_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Print one line per frame.
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub rtp: crate::rtp_flags::RtpSendFlags,
    /// Speak another wire format.
    #[arg(long, value_enum)]
    pub compat: Option<Compat>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Output: one JSON line per frame, message or loss on stdout; progress \
and the summary on stderr.\n\nExamples:\n  \
pixgram recv --listen 0.0.0.0:9000 --save received/\n  \
pixgram recv --listen 127.0.0.1:9000 --count 100\n  \
pixgram recv --listen 0.0.0.0:9000 --http 127.0.0.1:8080 --save received/\n  \
pixgram recv --listen 0.0.0.0:9000 --stdout | ffplay -f mjpeg -\n  \
pixgram recv --listen 0.0.0.0:9000 --window   (built with --features window)\n  \
pixgram recv --compat seed --listen 127.0.0.1:9999 --msg-listen 127.0.0.1:6666 --save out/\n  \
pixgram recv --rtp --listen 127.0.0.1:5000 --save frames/   (RTP/JPEG from GStreamer, FFmpeg)"
)]
pub struct RecvArgs {
    /// Address to listen on, HOST:PORT (0.0.0.0:PORT for every interface).
    #[arg(
        long,
        value_name = "ADDR",
        required_unless_present_any = ["from_nats", "from"],
        default_value = ""
    )]
    pub listen: String,
    /// Save every frame into this folder (created if missing), atomically.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Exit after this many frames and messages (first answering the senders' last
    /// retransmissions until they close, for 2 s at most).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Exit after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Largest frame accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_frame_size: u64,
    /// Senders served at once; datagrams from more addresses are dropped and counted.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_peers: usize,
    /// Streams per sender.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_streams_per_peer: usize,
    /// Frames per stream in reassembly at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_frames_in_flight: usize,
    /// Bytes buffered for one sender address (all its sessions together), charged as chunks
    /// arrive.
    #[arg(long, value_name = "BYTES", default_value_t = 72 << 20)]
    pub max_peer_bytes: u64,
    /// Bytes buffered for all senders together: the receiver's memory cap for frames in
    /// reassembly. Past three quarters of it, each sender is held to an equal share.
    #[arg(long, value_name = "BYTES", default_value_t = 96 << 20)]
    pub max_total_bytes: u64,
    /// Datagrams per second one sender may send (0: no limit). The default, 4 million
    /// (4.8 GB/s of 1,200-byte datagrams), is about half of what one core reassembles, so a
    /// batched sender at default flags is not cut off by it.
    #[arg(long, value_name = "N", default_value_t = pixgram::ReceiverConfig::default().max_peer_datagrams_per_sec.unwrap_or(0))]
    pub max_peer_rate: u32,
    /// Receive buffer to ask the kernel for, in bytes. Past `net.core.rmem_max` only as root;
    /// at the default, a grant of 4 MiB or more is taken without a warning.
    #[arg(long, value_name = "BYTES", default_value_t = pixgram::socket::DEFAULT_RECV_BUFFER)]
    pub recv_buffer: usize,
    /// Pre-shared key file (from `pixgram keygen`): every datagram is encrypted and
    /// authenticated; both ends need the same key.
    #[arg(long, value_name = "PATH", env = "PIXGRAM_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Quiet: no JSON line per frame and none per loss (losses still count in the summary);
    /// messages are still printed.
    #[arg(short, long)]
    pub quiet: bool,
    /// With --save: most files one source IP address may have saved per second (0: no
    /// limit). Frames over it are not saved, and their senders are told so.
    #[arg(long, value_name = "N", default_value_t = 500.0)]
    pub max_saves_per_sec: f64,
    /// With --save: most megabytes one source IP address may have saved per second (0: no
    /// limit; a single larger file passes when that source has saved nothing for a second).
    #[arg(long, value_name = "MB", default_value_t = 500.0)]
    pub max_save_mbytes_per_sec: f64,
    /// With --save: threads that write and fsync files off the receive loop, a few files
    /// sharing one folder fsync (0: save on the receive loop, one file at a time). A frame is
    /// still acknowledged only once its file is on disk.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub save_threads: usize,
    /// Speak another wire format.
    #[arg(long, value_enum)]
    pub compat: Option<Compat>,
    /// With --compat seed: also listen for JSON messages on this address.
    #[arg(long, value_name = "ADDR")]
    pub msg_listen: Option<String>,
    /// Serve a page showing every stream live, with its figures, at http://ADDR/ (also
    /// /stats.json, and /stream/KEY.mjpg for players). Requests must name this machine in
    /// Host: localhost, a loopback IP or the listen IP (any IP literal when ADDR is 0.0.0.0
    /// or [::]), or a --http-allow-host name; others get 403, so that no web page can read
    /// the frames through DNS rebinding.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// With --http: also serve requests whose Host is this name (repeatable), e.g. the
    /// name the machine is reached by on the LAN.
    #[arg(long, value_name = "HOST")]
    pub http_allow_host: Vec<String>,
    /// Write JPEG frames to stdout as an MJPEG stream (the JSON lines go to stderr instead).
    #[arg(long)]
    pub stdout: bool,
    /// Show each stream in a desktop window (needs a build with `--features window`).
    #[arg(long)]
    pub window: bool,
    /// Decode every frame (on a thread of its own) and report the decode time in the
    /// latency summary; frames the decoder is too busy for are skipped and counted.
    #[arg(long)]
    pub decode: bool,
    #[command(flatten)]
    pub rtp: crate::rtp_flags::RtpRecvFlags,

    /// Subscribe to a hub (`pixgram hub`) at ADDR instead of serving senders: the hub sends
    /// every frame and message it receives (--stream: some), to every sink chosen here.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["compat", "msg_listen"])]
    pub from: Option<String>,
    /// With --from: only streams whose key SENDER-SESSION-STREAM (as in the viewer's
    /// /stream/KEY.mjpg, e.g. 10.0.0.5_40000-1f19d67e-1) starts with KEY, e.g. `10.0.0.5_` for
    /// one camera's streams; repeatable, up to 8.
    #[arg(long = "stream", value_name = "KEY", requires = "from")]
    pub streams: Vec<String>,
    /// With --from: the latest frame of each stream (a newer frame replaces one still waiting
    /// at the hub) instead of every frame.
    #[arg(long, requires = "from")]
    pub latest: bool,

    // Issue 17 (NATS): --publish, --subject, --jetstream, --from-nats, --queue.
    #[command(flatten)]
    pub nats: crate::nats::NatsArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
pixgram hub --listen 0.0.0.0:9000\n  \
pixgram send --to HUB:9000 --pattern --fps 30      (a publisher)\n  \
pixgram recv --from HUB:9000 --save frames/        (every frame)\n  \
pixgram recv --from HUB:9000 --latest --http 127.0.0.1:8080   (latest frame wins)")]
pub struct HubArgs {
    /// Every flag of recv: --listen, limits, --key-file (subscribers need it too), and sinks
    /// of the hub's own (--save ...: the hub then acknowledges a frame once they have it).
    #[command(flatten)]
    pub recv: RecvArgs,
    /// Subscribers served at once; more are told the hub is full.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_subscribers: usize,
    /// Frames and messages waiting for one subscriber at most; past it a reliable subscriber
    /// skips to the newest frame (counted, and it is told).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_backlog_frames: usize,
    /// Bytes waiting for one subscriber at most (same rule).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_backlog_bytes: usize,
    /// A subscriber not heard from for this many seconds is dropped (they renew every second).
    #[arg(long, value_name = "SECS", default_value_t = 4.0)]
    pub keepalive_timeout: f64,
}

#[derive(Debug, Args)]
#[command(after_help = concat!("Examples:\n  \
pixgram msg --to 127.0.0.1:9000 '{\"cmd\":\"start\",\"speed\":0.5}'\n  \
printf '%s\\n' '[1,2,3]' '\"hi\"' | pixgram msg --to 127.0.0.1:9000 -\n  \
pixgram msg --compat seed --to 127.0.0.1:6666 '[1,2,3]'", exit_codes_help!()))]
pub struct MsgArgs {
    /// Receiver address, HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
    /// JSON documents to send, in order; `-` reads one JSON document per line from stdin.
    #[arg(value_name = "JSON", required = true)]
    pub json: Vec<String>,
    /// Seconds without any answer before the receiver is declared gone.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// Pre-shared key file (from `pixgram keygen`): every datagram is encrypted and
    /// authenticated; both ends need the same key.
    #[arg(long, value_name = "PATH", env = "PIXGRAM_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Speak another wire format.
    #[arg(long, value_enum)]
    pub compat: Option<Compat>,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  pixgram demo\n  pixgram demo --dir my-photos/ --loop 5")]
pub struct DemoArgs {
    /// Images to send (default: ../shared/corpus if present, else generated frames).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Send the images this many times.
    #[arg(long = "loop", value_name = "N", default_value_t = 1)]
    pub repeat: u32,
    /// Frames in flight.
    #[arg(long, value_name = "W", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub window: u32,
    /// Bytes per datagram.
    #[arg(long, value_name = "BYTES", default_value_t = 1200, value_parser = clap::value_parser!(u32).range(576..=65507))]
    pub datagram_size: u32,
    /// Keep the received files (the folder is printed) instead of deleting them.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
pixgram keygen ~/.pixgram.key && scp ~/.pixgram.key robot:.pixgram.key\n  \
pixgram recv --listen 0.0.0.0:9000 --key-file ~/.pixgram.key\n  \
PIXGRAM_KEY_FILE=~/.pixgram.key pixgram send --to 192.0.2.10:9000 photo.jpg")]
pub struct KeygenArgs {
    /// Where to write the key (refused if it exists, unless --force).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Replace an existing key file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Clients send to --listen; each gets its own socket towards --to, so \
replies come back through the relay. Both directions are impaired alike unless --forward-only.\n\n\
Examples:\n  \
pixgram impair --listen 127.0.0.1:9001 --to 127.0.0.1:9000 --loss 10 --delay 20 --jitter 5\n  \
pixgram impair --listen 127.0.0.1:9001 --to 127.0.0.1:9000 --burst 1,30,80 --rate 20 --queue 131072\n  \
pixgram impair --listen 127.0.0.1:9001 --to 127.0.0.1:9000 --reorder 2 --duplicate 1 --corrupt 0.5 -v\n\
Then: pixgram send --to 127.0.0.1:9001 photo.jpg   (with pixgram recv --listen 127.0.0.1:9000)"
)]
pub struct ImpairArgs {
    /// Address clients send to, HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Where datagrams are forwarded, HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
    /// Random loss, percent of datagrams.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    pub loss: f64,
    /// Burst loss (Gilbert-Elliott), three percentages: chance per datagram to enter a bad
    /// spell, chance to leave it, and loss while in it. `1,30,80`: bursts of about 3.
    #[arg(long, value_name = "ENTER,LEAVE,LOSS")]
    pub burst: Option<String>,
    /// One-way delay in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    pub delay: f64,
    /// Extra random delay, 0 to this many milliseconds per datagram (reorders them).
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    pub jitter: f64,
    /// Percent of datagrams held back by --reorder-delay so later ones overtake them.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    pub reorder: f64,
    /// How long a reordered datagram is held back, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10.0)]
    pub reorder_delay: f64,
    /// Percent of datagrams delivered twice.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    pub duplicate: f64,
    /// Percent of datagrams with one bit flipped.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    pub corrupt: f64,
    /// Percent of datagrams cut short.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    pub truncate: f64,
    /// Link rate in Mbit/s (each direction); datagrams queue behind it.
    #[arg(long, value_name = "MBIT")]
    pub rate: Option<f64>,
    /// Bytes that may queue behind --rate before datagrams are dropped.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    pub queue: u64,
    /// Seed of the randomness: the same seed and traffic give the same fate to each datagram.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Leave the destination's replies unimpaired.
    #[arg(long)]
    pub forward_only: bool,
    /// Exit after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Print the counters every second.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Resolves HOST:PORT (names allowed) to one socket address, preferring IPv4.
pub fn resolve(what: &str, addr: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    let all: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("{what} `{addr}` is not a HOST:PORT address ({e})"))?
        .collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| anyhow::anyhow!("{what} `{addr}` resolves to no address"))
}

/// `--timeout`: seconds, at least 0.1; longer than a day (`inf`) waits a day.
fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v >= 0.1 => Ok(v.min(86_400.0)),
        _ => Err(format!(
            "--timeout is in seconds, at least 0.1, not `{text}`"
        )),
    }
}

/// `send --rate`: Mbit/s, from 0.1 to 1,000,000.
fn parse_send_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.1..=1e6).contains(&v) => Ok(v),
        _ => Err(format!(
            "--rate is in Mbit/s, at least 0.1 and at most 1000000, not `{text}`"
        )),
    }
}
