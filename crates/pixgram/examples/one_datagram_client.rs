//! The blog's first client, on the library: one small image in one datagram, and the reply.
//!
//! `cargo run --example one_datagram_client -- [SERVER_ADDR] [IMAGE]` (without an image, a
//! 600-byte test image is made).

use pixgram::{codec, FrameMeta, Sender};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    run(std::env::args().skip(1).collect())
}

/// The example, with its arguments (a test runs it against its counterpart).
pub fn run(args: Vec<String>) -> Result<(), Error> {
    let mut args = args.into_iter();
    let server = args.next().unwrap_or_else(|| "127.0.0.1:5000".into());
    let image = match args.next() {
        Some(path) => std::fs::read(path)?,
        None => codec::encode_jpeg(&pixgram::pattern::render(32, 24, 0, ""), 50)?,
    };
    // pixgram's header and metadata fit beside it in one 1,472-byte datagram.
    if image.len() > 1200 {
        return Err(format!("{} bytes do not fit one datagram", image.len()).into());
    }
    let mut tx = Sender::builder().datagram_size(1472).connect(&server)?;
    tx.send_image(image.clone(), FrameMeta::named("small.jpg"))?;
    let sent = tx.finish()?;
    println!(
        "sent {} bytes in one datagram: {} acknowledged",
        image.len(),
        sent.acked
    );
    if sent.acked != 1 {
        return Err("no reply".into());
    }
    Ok(())
}
