//! The blog's server, on the library: images on one port, JSON lists on another; each image
//! saved, each list printed. The reply the original sent ("get message!!!") is pixgram's
//! acknowledgement, sent once the image is on disk.
//!
//! `cargo run --example image_and_json_server -- [IMAGE_ADDR] [JSON_ADDR] [ITEMS]`

use std::time::{Duration, Instant};

use pixgram::{Incoming, Receiver};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    run(std::env::args().skip(1).collect())
}

/// The example, with its arguments (a test runs it against its counterpart).
pub fn run(args: Vec<String>) -> Result<(), Error> {
    let mut args = args.into_iter();
    let mut images = Receiver::bind(args.next().as_deref().unwrap_or("127.0.0.1:5000"))?;
    let mut lists = Receiver::bind(args.next().as_deref().unwrap_or("127.0.0.1:5001"))?;
    let items: usize = args.next().map_or(Ok(usize::MAX), |n| n.parse())?;
    let out = std::env::temp_dir().join("pixgram-example-images");
    std::fs::create_dir_all(&out)?;
    println!(
        "images on {}, JSON lists on {}",
        images.local_addr()?,
        lists.local_addr()?
    );
    let mut served = 0;
    while served < items {
        // Both ports in turn, each for a moment: one thread serves them both.
        let soon = || Some(Instant::now() + Duration::from_millis(20));
        let got = match images.next(soon())? {
            Some(image) => Some(image),
            None => lists.next(soon())?,
        };
        let Some(got) = got else { continue };
        served += 1;
        match got {
            Incoming::Frame(f) => {
                let name = f
                    .meta
                    .file
                    .unwrap_or_else(|| format!("frame-{}.jpg", f.id.0));
                std::fs::write(out.join(pixgram::sink::sanitise(&name)), &f.bytes)?;
                println!("image {name}: {} bytes from {}", f.bytes.len(), f.peer);
            }
            Incoming::Message(m) => println!("list from {}: {}", m.peer, m.json()?),
        }
    }
    Ok(())
}
