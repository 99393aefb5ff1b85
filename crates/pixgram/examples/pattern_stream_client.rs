//! The blog's webcam client, on the library: a live stream at 30 frames a second of the
//! moving test pattern (for a webcam: `pixgram::source::LiveSource::Camera`).
//!
//! `cargo run --example pattern_stream_client -- [SERVER_ADDR] [FRAMES]`

use std::time::{Duration, Instant};

use pixgram::{codec, pattern, Delivery, FrameMeta, Sender};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    run(std::env::args().skip(1).collect())
}

/// The example, with its arguments (a test runs it against its counterpart).
pub fn run(args: Vec<String>) -> Result<(), Error> {
    let mut args = args.into_iter();
    let server = args.next().unwrap_or_else(|| "127.0.0.1:5000".into());
    let frames: u64 = args.next().map_or(Ok(90), |n| n.parse())?;
    let fps = 30.0;
    let mut tx = Sender::builder()
        .delivery(Delivery::live(fps)?)
        .connect(&server)?;
    let start = Instant::now();
    for n in 0..frames {
        let jpeg = codec::encode_jpeg(&pattern::render(640, 480, n, &n.to_string()), 80)?;
        let meta = FrameMeta::named(format!("pattern-{n:06}.jpg")).captured_now();
        tx.send_image(jpeg, meta)?;
        let due = start + Duration::from_secs_f64((n + 1) as f64 / fps);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let sent = tx.finish()?;
    println!("{} of {frames} frames delivered live", sent.acked);
    if sent.acked == 0 {
        return Err("no frame was delivered".into());
    }
    Ok(())
}
