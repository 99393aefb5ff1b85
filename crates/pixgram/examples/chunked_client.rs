//! The blog's second client, on the library: a large image in chunks, the reply, and a JSON
//! list to the server's other port.
//!
//! `cargo run --example chunked_client -- [IMAGE_ADDR] [JSON_ADDR] [IMAGE]` (without an image,
//! a 1280x720 test image is made).

use pixgram::{codec, Sender};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    run(std::env::args().skip(1).collect())
}

pub fn run(args: Vec<String>) -> Result<(), Error> {
    let mut args = args.into_iter();
    let images = args.next().unwrap_or_else(|| "127.0.0.1:5000".into());
    let lists = args.next().unwrap_or_else(|| "127.0.0.1:5001".into());
    let mut tx = Sender::connect(&images)?;
    match args.next() {
        Some(path) => tx.send_file(path)?,
        None => {
            let big = codec::encode_jpeg(&pixgram::pattern::render(1280, 720, 1, "big"), 95)?;
            tx.send_image(big, pixgram::FrameMeta::named("big.jpg"))?
        }
    };
    let sent = tx.finish()?;
    println!(
        "image: {} acknowledged, {} lost",
        sent.acked,
        sent.lost.len()
    );
    let mut json = Sender::connect(&lists)?;
    json.send_json(&serde_json::json!([1, 2, 3, {"battery": 0.87}]))?;
    let replied = json.finish()?;
    println!("list: {} acknowledged", replied.acked);
    if sent.acked + replied.acked != 2 {
        return Err("not everything was acknowledged".into());
    }
    Ok(())
}
