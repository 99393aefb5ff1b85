//! The blog's webcam client, on the library: a live stream at 30 frames a second, from a
//! camera (built with the `camera` feature and given a device) or the moving test pattern.
//!
//! `cargo run --example pattern_stream_client -- [SERVER_ADDR] [FRAMES] [/dev/videoN]`

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use pixgram::publish::Publisher;
use pixgram::source::LiveSource;
use pixgram::{Delivery, FrameMeta, SenderConfig, UdpSender};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    run(std::env::args().skip(1).collect())
}

/// The example, with its arguments (a test runs it against its counterpart).
pub fn run(args: Vec<String>) -> Result<(), Error> {
    let mut args = args.into_iter();
    let server = args.next().unwrap_or_else(|| "127.0.0.1:5000".into());
    let frames: u64 = args.next().map_or(Ok(90), |n| n.parse())?;
    let source = match args.next() {
        Some(device) => LiveSource::Camera {
            device: device.into(),
            size: (640, 480),
            fps: 30.0,
            transcode: Default::default(),
        },
        None => LiveSource::Pattern {
            width: 640,
            height: 480,
            fps: 30.0,
            quality: 80,
        },
    };
    let live = Delivery::live(30.0)?;
    let mut tx = UdpSender::connect(server.parse()?, live.tune(SenderConfig::default()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (queue, running) = source.start(Some(frames), stop.clone())?;
    let report = Publisher::new(&mut tx, FrameMeta::default().with("client", "example"))
        .with_delivery(live)
        .with_stop(stop)
        .send_stream(queue, Some(frames), |_, _| {});
    running.join().end.result?;
    println!(
        "{} of {} frames delivered live",
        report.acked,
        report.asked()
    );
    if report.acked == 0 {
        return Err("no frame was delivered".into());
    }
    Ok(())
}
