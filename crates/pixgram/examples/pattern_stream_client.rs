//! The blog's webcam client, on the library: a live stream at 30 frames a second from a
//! camera (given its device, in a build with the `camera` feature) or the test pattern.
//!
//! `cargo run --example pattern_stream_client -- [SERVER_ADDR] [FRAMES] [/dev/videoN]`

use pixgram::source::LiveSource;
use pixgram::{Delivery, Sender};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    run(std::env::args().skip(1).collect())
}

pub fn run(args: Vec<String>) -> Result<(), Error> {
    let mut args = args.into_iter();
    let server = args.next().unwrap_or_else(|| "127.0.0.1:5000".into());
    let frames: u64 = args.next().map_or(Ok(90), |n| n.parse())?;
    let (size, fps, transcode) = ((640, 480), 30.0, Default::default());
    let source = match args.next() {
        Some(device) => LiveSource::Camera {
            device: device.into(),
            size,
            fps,
            transcode,
        },
        None => LiveSource::Pattern {
            width: size.0,
            height: size.1,
            fps,
            quality: 80,
        },
    };
    let mut tx = Sender::builder()
        .delivery(Delivery::live(fps)?)
        .connect(&server)?;
    let report = tx.stream(source, Some(frames))?;
    println!("{} of {frames} frames delivered live", report.acked);
    tx.finish()?;
    if report.acked == 0 {
        return Err("no frame was delivered".into());
    }
    Ok(())
}
