//! Every reliable frame exactly once through a lossy relay, through the real binaries: many
//! small frames with a wide window at 20% loss both ways (issue 10: frames whose ACKs were
//! lost used to fall out of the receiver's memory and stay stuck until the sender gave up).

mod support;

use std::time::Duration;

use support::{json_lines, run, Recv, Relay, TempDir};

#[test]
fn ten_thousand_small_reliable_frames_through_20_percent_loss_arrive_exactly_once() {
    let tmp = TempDir::new("exactly-once");
    let file = tmp.path().join("f.bin");
    std::fs::write(&file, [42u8; 100]).unwrap();
    let rx = Recv::start(&["--duration", "90"]);
    let relay = Relay::start(&rx.addr, &["--loss", "20", "--seed", "3"]);
    let out = run(
        &[
            "send",
            "--to",
            &relay.addr,
            file.to_str().unwrap(),
            "--loop",
            "10000",
            "--window",
            "64",
            "--timeout",
            "10",
        ],
        Duration::from_secs(80),
    );
    drop(relay);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("acked 10000, lost 0"), "{stderr}");
    let (_, stdout, _) = {
        let mut rx = rx;
        let _ = rx.child.kill();
        rx.finish(Duration::from_secs(5))
    };
    let mut ids: Vec<u64> = json_lines(&stdout)
        .iter()
        .filter(|l| l["event"] == "frame")
        .map(|l| l["frame"].as_u64().unwrap())
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "a frame was delivered twice");
    assert_eq!(ids, (0..10_000).collect::<Vec<u64>>());
}

/// A NAT that rebinds mid-stream: a relay forwarding the sender's datagrams from one source
/// port, then from another, while the receiver's replies to the old port are lost from then
/// on. Every frame is saved exactly once (issue 10: frame 7 used to be delivered twice).
#[test]
fn a_nat_rebinding_mid_stream_delivers_every_frame_once() {
    use std::net::UdpSocket;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let tmp = TempDir::new("rebind");
    let save = tmp.path().join("out");
    let rx = Recv::start(&["--save", save.to_str().unwrap(), "--duration", "40", "-q"]);
    let to: std::net::SocketAddr = rx.addr.parse().unwrap();
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let front_addr = front.local_addr().unwrap().to_string();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let relay = std::thread::spawn(move || {
        let old = UdpSocket::bind("127.0.0.1:0").unwrap();
        let new = UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&front, &old, &new] {
            s.set_nonblocking(true).unwrap();
        }
        let mut client = None;
        let mut forwarded = 0u64;
        let mut buf = vec![0u8; 65_536];
        while !flag.load(Ordering::Relaxed) {
            let mut idle = true;
            while let Ok((n, from)) = front.recv_from(&mut buf) {
                idle = false;
                client = Some(from);
                forwarded += 1;
                // The rebinding: after 150 datagrams the sender's traffic leaves by another port.
                let out = if forwarded <= 150 { &old } else { &new };
                let _ = out.send_to(&buf[..n], to);
            }
            while let Ok((n, _)) = old.recv_from(&mut buf) {
                idle = false;
                if forwarded <= 150 {
                    if let Some(c) = client {
                        let _ = front.send_to(&buf[..n], c);
                    }
                }
            }
            while let Ok((n, _)) = new.recv_from(&mut buf) {
                idle = false;
                if let Some(c) = client {
                    let _ = front.send_to(&buf[..n], c);
                }
            }
            if idle {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    });
    let file = tmp.path().join("f.bin");
    std::fs::write(&file, vec![3u8; 20_000]).unwrap();
    let out = run(
        &[
            "send",
            "--to",
            &front_addr,
            file.to_str().unwrap(),
            "--loop",
            "40",
            // 1,200-byte datagrams, so the rebinding after 150 of them falls mid-stream (with
            // path MTU discovery each 20 KB frame would be one datagram, 40 in all).
            "--datagram-size",
            "1200",
        ],
        Duration::from_secs(30),
    );
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    relay.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("acked 40, lost 0"), "{stderr}");
    let saved = std::fs::read_dir(&save).unwrap().count();
    let _ = std::process::Command::new("kill")
        .args(["-INT", &rx.child.id().to_string()])
        .status();
    let (_, stdout, _) = rx.finish(Duration::from_secs(10));
    assert_eq!(saved, 40, "a frame was saved twice or not at all");
    let stats = json_lines(&stdout)
        .into_iter()
        .find(|l| l["event"] == "stats")
        .expect("stats line");
    println!("{stats}");
    // The move happened: a second address of the session was served.
    assert!(
        stats["sessions_moved"].as_u64().unwrap() + stats["sessions_started"].as_u64().unwrap()
            >= 2,
        "{stats}"
    );
}
