//! The blog's server, on the library: images on one port (saved), JSON lists on another
//! (printed). The original's reply is pixgram's acknowledgement.
//!
//! `cargo run --example image_and_json_server -- [IMAGE_ADDR] [JSON_ADDR] [ITEMS]`

use pixgram::{Incoming, Receiver};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    run(std::env::args().skip(1).collect())
}

pub fn run(args: Vec<String>) -> Result<(), Error> {
    let mut args = args.into_iter();
    let images = Receiver::bind(args.next().as_deref().unwrap_or("127.0.0.1:5000"))?;
    let lists = Receiver::bind(args.next().as_deref().unwrap_or("127.0.0.1:5001"))?;
    let items: usize = args.next().map_or(Ok(usize::MAX), |n| n.parse())?;
    let out = std::env::temp_dir().join("pixgram-example-images");
    std::fs::create_dir_all(&out)?;
    let (a, b) = (images.local_addr()?, lists.local_addr()?);
    println!("images on {a}, lists on {b}");
    // A thread per port; what arrives on either comes here.
    let (arrived, incoming) = std::sync::mpsc::channel();
    for mut port in [images, lists] {
        let arrived = arrived.clone();
        std::thread::spawn(move || {
            for item in port.incoming() {
                if arrived.send(item).is_err() {
                    break; // the main loop is done
                }
            }
        });
    }
    for item in incoming.iter().take(items) {
        match item? {
            Incoming::Frame(f) => {
                let name = f.meta.file.unwrap_or_else(|| format!("{}.jpg", f.id.0));
                std::fs::write(out.join(pixgram::sink::sanitise(&name)), &f.bytes)?;
                println!("image {name}: {} bytes from {}", f.bytes.len(), f.peer);
            }
            Incoming::Message(m) => println!("list from {}: {}", m.peer, m.json()?),
        }
    }
    Ok(())
}
