//! Each example in `examples/` runs against its counterpart over loopback: the clients against
//! the image-and-JSON server, each bounded in time. The examples are compiled in here through
//! their `run` (their `main` is only `run` with the command line).

use std::net::UdpSocket;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

#[allow(dead_code)]
#[path = "../examples/image_and_json_server.rs"]
mod image_and_json_server;

#[allow(dead_code)]
#[path = "../examples/one_datagram_client.rs"]
mod one_datagram_client;

#[allow(dead_code)]
#[path = "../examples/chunked_client.rs"]
mod chunked_client;

#[allow(dead_code)]
#[path = "../examples/pattern_stream_client.rs"]
mod pattern_stream_client;

type Run = fn(Vec<String>) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Runs `example` on its own thread; its result, or a failure after `limit`.
fn run_within(example: Run, args: &[&str], limit: Duration) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    thread::spawn(move || {
        let _ = tx.send(example(args).map_err(|e| e.to_string()));
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| Err(format!("still running after {limit:?}")))
}

/// A loopback address with a port free a moment ago.
fn free_addr() -> String {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().to_string()
}

#[test]
fn every_client_example_is_served_by_the_server_example() {
    let (images, lists) = (free_addr(), free_addr());
    let frames = 30u64;
    // One small image, one large image, one JSON list, and the live frames.
    let items = (3 + frames).to_string();
    let server = {
        let args = [images.as_str(), lists.as_str(), items.as_str()];
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        thread::spawn(move || image_and_json_server::run(args).map_err(|e| e.to_string()))
    };
    thread::sleep(Duration::from_millis(200));
    let limit = Duration::from_secs(60);
    run_within(one_datagram_client::run, &[&images], limit).expect("one datagram");
    run_within(chunked_client::run, &[&images, &lists], limit).expect("chunked");
    let frames = frames.to_string();
    run_within(pattern_stream_client::run, &[&images, &frames], limit).expect("stream");
    let saved = std::env::temp_dir().join("pixgram-example-images");
    assert!(saved.join("small.jpg").exists() && saved.join("big.jpg").exists());
    // The server stops once it has had every item; a live frame may be late and never come,
    // so it may still be waiting: then it has failed at nothing so far.
    thread::sleep(Duration::from_millis(500));
    if server.is_finished() {
        server.join().unwrap().expect("the server");
    }
}
