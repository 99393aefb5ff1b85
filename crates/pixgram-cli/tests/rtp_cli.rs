//! `send --rtp` / `recv --rtp` between two pixgram processes, no other tool: frames through a
//! lossy, reordering relay (`pixgram impair`) whole or, with restart markers and --partial,
//! in part; a sender restarting (new SSRC); JPEGs RFC 2435 cannot carry refused in one line
//! naming the reason; PNGs re-encoded with --transcode.

mod rtp_peers;
mod support;

use std::time::Duration;

use rtp_peers::*;
use support::{json_lines, run, Recv, Relay, TempDir};

fn send(to: &str, files: &[std::path::PathBuf], extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = ["send", "--rtp", "--to", to].map(String::from).to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args, Duration::from_secs(60))
}

fn field(stderr: &str, after: &str) -> u64 {
    let tail = stderr.split(after).next().unwrap_or("");
    tail.rsplit(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no figure before `{after}` in {stderr}"))
}

/// 4% loss, reordering and duplicates on the way: with --partial every frame whose first
/// packet arrived is delivered, missing restart intervals grey; without it, frames with a
/// gap are dropped and counted. Every saved frame decodes.
#[test]
fn loss_gives_partial_frames_with_restart_markers_or_counted_drops_without() {
    let tmp = TempDir::new("rtp-partial");
    let frames = pattern_jpegs(&tmp.path().join("src"), 30, 640, 480, Some(40));
    for partial in [true, false] {
        let save = tmp.path().join(format!("saved-{partial}"));
        let save_s = save.display().to_string();
        let mut flags = vec!["--rtp", "--save", &save_s, "--duration", "6"];
        if partial {
            flags.push("--partial");
        }
        let rx = Recv::start(&flags);
        let relay = Relay::start(
            &rx.addr,
            &[
                "--loss",
                "4",
                "--reorder",
                "5",
                "--duplicate",
                "2",
                "--seed",
                "7",
                "--forward-only",
            ],
        );
        let out = send(&relay.addr, &frames, &["--mtu", "600", "--fps", "20"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, stdout, stderr) = rx.finish(Duration::from_secs(30));
        drop(relay);
        let lines = json_lines(&stdout);
        let got = lines.iter().filter(|l| l["event"] == "frame").count();
        let part = lines.iter().filter(|l| l["partial"] == true).count();
        let lost = lines.iter().filter(|l| l["event"] == "lost").count();
        assert_eq!(all_decode(&save, 640, 480), got, "{stderr}");
        assert!(
            field(&stderr, " duplicate") > 0,
            "the relay duplicated: {stderr}"
        );
        if partial {
            assert!(part > 0, "some frames should be partial: {stderr}");
            assert!(got > 20, "most frames delivered in part or whole: {stderr}");
        } else {
            assert_eq!(part, 0);
            assert!(lost > 0 && got + lost == 30, "{got} + {lost}: {stderr}");
        }
    }
}

/// Two senders one after the other (each its own SSRC): both streams arrive whole.
#[test]
fn a_new_sender_is_a_new_source() {
    let tmp = TempDir::new("rtp-ssrc");
    let frames = pattern_jpegs(&tmp.path().join("src"), 5, 320, 240, None);
    let rx = Recv::start(&["--rtp", "--count", "10", "--duration", "20"]);
    for _ in 0..2 {
        let out = send(&rx.addr, &frames, &["--fps", "50"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (ok, stdout, stderr) = rx.finish(Duration::from_secs(30));
    assert!(ok, "{stderr}");
    let ssrcs: std::collections::BTreeSet<String> = json_lines(&stdout)
        .iter()
        .map(|l| l["ssrc"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ssrcs.len(), 2, "{stdout}");
    assert!(stderr.contains("1 SSRC changes"), "{stderr}");
}

/// A progressive or 12-bit JPEG stops the send before anything is sent, in one line naming
/// the file and the reason; a PNG is re-encoded with --transcode.
#[test]
fn jpegs_rfc_2435_cannot_carry_are_named_and_pngs_transcoded() {
    let tmp = TempDir::new("rtp-refuse");
    let good = pattern_jpegs(tmp.path(), 1, 320, 240, None).remove(0);
    let bytes = std::fs::read(&good).unwrap();
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    for (name, at, value, reason) in [
        ("progressive.jpg", sof + 1, 0xC2, "progressive JPEG"),
        ("twelve.jpg", sof + 4, 12, "12-bit JPEG"),
    ] {
        let mut b = bytes.clone();
        b[at] = value;
        let p = tmp.path().join(name);
        std::fs::write(&p, b).unwrap();
        let out = send("127.0.0.1:9", &[p], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        let line = err
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or_default();
        assert!(line.contains(name) && line.contains(reason), "{err}");
        assert_eq!(
            err.lines().filter(|l| l.contains("error")).count(),
            1,
            "{err}"
        );
    }
    // Flags of pixgram's own protocol are refused, not ignored.
    let out = send("127.0.0.1:9", std::slice::from_ref(&good), &["--fec", "10"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not --rtp"));
    let img = pixgram::pattern::render(320, 240, 1, "png");
    let png = tmp.path().join("frame.png");
    std::fs::write(&png, pixgram::codec::encode_png(&img).unwrap()).unwrap();
    let out = send("127.0.0.1:9", std::slice::from_ref(&png), &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--transcode"));
    let save = tmp.path().join("saved");
    let save_s = save.display().to_string();
    let rx = Recv::start(&[
        "--rtp",
        "--save",
        &save_s,
        "--count",
        "1",
        "--duration",
        "20",
    ]);
    let out = send(&rx.addr, &[png], &["--transcode"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, _, stderr) = rx.finish(Duration::from_secs(30));
    assert!(ok, "{stderr}");
    assert_eq!(all_decode(&save, 320, 240), 1);
}

/// `recv --rtp --stdout`: the frames as an MJPEG stream on stdout (the JSON lines on stderr).
#[test]
fn rtp_frames_go_to_the_mjpeg_stdout_sink() {
    let tmp = TempDir::new("rtp-stdout");
    let frames = pattern_jpegs(&tmp.path().join("src"), 4, 320, 240, None);
    let rx = Recv::start(&["--rtp", "--stdout", "--count", "4", "--duration", "20"]);
    let out = send(&rx.addr, &frames, &["--fps", "20"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, stdout, stderr) = rx.finish_bytes(Duration::from_secs(30));
    assert!(ok, "{stderr}");
    let mut split = pixgram::mjpeg::MjpegSplitter::new(1 << 20);
    split.push(&stdout);
    let mut n = 0;
    while let Some(f) = split.next_frame() {
        assert_eq!(pixgram::codec::decode(&f).unwrap().width, 320);
        n += 1;
    }
    assert_eq!(n, 4, "{stderr}");
    assert_eq!(stderr.matches("\"event\":\"frame\"").count(), 4, "{stderr}");
}

/// RTP has no acknowledgement: when the receiver's RTCP report says packets were lost, the
/// send exits 2 saying so (here a fake receiver answers the first sender report with one), and
/// prints the round trip the report's echo of the sender report measured.
#[test]
fn a_receiver_report_of_loss_makes_the_send_fail() {
    use pixgram_core::rtp_jpeg::rtcp::{self, ReportBlock, RtcpPacket};
    let tmp = TempDir::new("rtp-rr");
    let frames = pattern_jpegs(&tmp.path().join("src"), 6, 160, 120, None);
    let port = free_port_pair();
    let _rtp = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let rtcp_socket = std::net::UdpSocket::bind(("127.0.0.1", port + 1)).unwrap();
    rtcp_socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let fake = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let (n, from) = rtcp_socket.recv_from(&mut buf).expect("a sender report");
        let Some(RtcpPacket::SenderReport(info, _)) =
            rtcp::parse_compound(&buf[..n]).and_then(|p| p.into_iter().next())
        else {
            panic!("not a sender report first");
        };
        let block = ReportBlock {
            ssrc: info.ssrc,
            fraction_lost: 26,
            cumulative_lost: 5,
            // The middle 32 bits of the sender report's NTP time: the sender measures its RTT.
            last_sr: (info.ntp >> 16) as u32,
            ..ReportBlock::default()
        };
        let mut rr = Vec::new();
        rtcp::write_receiver_report(77, &[block], &mut rr);
        rtcp_socket.send_to(&rr, from).unwrap();
    });
    let out = send(&format!("127.0.0.1:{port}"), &frames, &["--fps", "10"]);
    fake.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the receiver reported 5 packets lost"),
        "{err}"
    );
    assert!(err.contains("10.2% lost in its interval"), "{err}");
    assert!(err.contains("round trip at most "), "{err}");
}
