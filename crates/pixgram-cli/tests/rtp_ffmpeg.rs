//! RTP/JPEG against FFmpeg 5.1 (Debian's ffmpeg, installed by .ci/run): its `-f rtp` into
//! `pixgram recv --rtp`, `pixgram send --rtp --sdp FILE` into `ffmpeg -i FILE`, MJPEG from
//! ffmpeg on stdin, and the JPEGs RFC 2435 cannot carry (FFmpeg's default optimised Huffman
//! tables, 4:4:4) refused with the reason or re-encoded with --transcode. Loopback only;
//! every peer bounded in time.

mod rtp_peers;
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use rtp_peers::*;
use support::{bin, wait_bounded, Recv, TempDir};

const FFMPEG: &str = "ffmpeg";

#[test]
fn ffmpeg_rtp_into_pixgram_recv() {
    if !have(FFMPEG) {
        return;
    }
    let tmp = TempDir::new("rtp-ff-in");
    let save = tmp.path().join("saved");
    let save_s = save.display().to_string();
    let rx = Recv::start(&[
        "--rtp",
        "--save",
        &save_s,
        "--count",
        "20",
        "--duration",
        "30",
    ]);
    let url = format!("rtp://{}", rx.addr);
    run_ok(
        FFMPEG,
        &[
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x480:rate=30",
            "-frames:v",
            "20",
            "-pix_fmt",
            "yuvj420p",
            "-huffman",
            "default",
            "-c:v",
            "mjpeg",
            "-f",
            "rtp",
            &url,
        ],
        Duration::from_secs(30),
    );
    let (ok, _, stderr) = rx.finish(Duration::from_secs(30));
    assert!(ok, "pixgram recv failed: {stderr}");
    assert_eq!(all_decode(&save, 640, 480), 20, "{stderr}");
    assert!(stderr.contains("sender reports heard"), "{stderr}");
}

#[test]
fn pixgram_send_into_ffmpeg_through_its_sdp() {
    if !have(FFMPEG) {
        return;
    }
    let Some(photo) = corpus("fallenleaf_1920x1080.jpg") else {
        return;
    };
    let tmp = TempDir::new("rtp-ff-out");
    let sdp = tmp.path().join("stream.sdp");
    let (sdp_s, photo_s) = (sdp.display().to_string(), photo.display().to_string());
    let to = format!("127.0.0.1:{}", free_port_pair());
    // A stream of 4 s; ffmpeg joins once the SDP is written, as a player would.
    let sender = Command::new(bin())
        .args([
            "send", "--rtp", "--to", &to, &photo_s, "--loop", "60", "--fps", "15", "--pt", "96",
        ])
        .args(["--sdp", &sdp_s])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !sdp.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&sdp).expect("pixgram wrote no SDP");
    assert!(text.contains("a=rtpmap:96 JPEG/90000"), "{text}");
    let out_pattern = tmp.path().join("f-%03d.png").display().to_string();
    run_ok(
        FFMPEG,
        &[
            "-v",
            "error",
            "-protocol_whitelist",
            "file,udp,rtp",
            "-buffer_size",
            "8388608",
            "-i",
            &sdp_s,
            "-frames:v",
            "10",
            &out_pattern,
        ],
        Duration::from_secs(30),
    );
    let sent = wait_bounded(sender, Duration::from_secs(30));
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let pngs: Vec<_> = files(tmp.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert_eq!(pngs.len(), 10, "ffmpeg decoded {} of 10 frames", pngs.len());
    for p in pngs {
        let img = pixgram::codec::decode(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!((img.width, img.height), (1920, 1080));
    }
}

/// MJPEG from ffmpeg on stdin, sent as RTP: with ffmpeg's default (optimised) Huffman tables
/// the first frame is refused with the reason; with --transcode every frame arrives.
#[test]
fn stdin_mjpeg_is_refused_with_the_reason_or_transcoded() {
    if !have(FFMPEG) {
        return;
    }
    let mjpeg = |extra: &[&str]| {
        let mut c = Command::new(FFMPEG);
        c.args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-frames:v",
            "12",
        ])
        .args(extra)
        .args(["-c:v", "mjpeg", "-f", "mjpeg", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        c.spawn().unwrap()
    };
    let send = |ff: &mut std::process::Child, to: &str, extra: &[&str]| {
        let child = Command::new(bin())
            .args(["send", "--rtp", "--to", to, "--stdin", "--count", "12"])
            .args(extra)
            .stdin(Stdio::from(ff.stdout.take().unwrap()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_bounded(child, Duration::from_secs(30))
    };
    // Optimised Huffman tables (ffmpeg's default): refused, exit 1, the reason in one line.
    let mut ff = mjpeg(&["-pix_fmt", "yuvj420p"]);
    let out = send(&mut ff, "127.0.0.1:9", &[]);
    let _ = ff.kill();
    let _ = ff.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("non-standard (optimised) Huffman tables"),
        "{err}"
    );
    assert!(err.contains("--transcode"), "{err}");
    // 4:4:4 with standard tables: re-encoded with --transcode, every frame arrives and decodes.
    let tmp = TempDir::new("rtp-ff-stdin");
    let save = tmp.path().join("saved");
    let save_s = save.display().to_string();
    let rx = Recv::start(&[
        "--rtp",
        "--save",
        &save_s,
        "--count",
        "12",
        "--duration",
        "30",
    ]);
    let mut ff = mjpeg(&["-pix_fmt", "yuvj444p", "-huffman", "default"]);
    let out = send(&mut ff, &rx.addr, &["--transcode"]);
    let _ = ff.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("sent 12 frames (12 re-encoded)"), "{err}");
    let (ok, _, stderr) = rx.finish(Duration::from_secs(30));
    assert!(ok, "{stderr}");
    assert_eq!(all_decode(&save, 320, 240), 12);
    // And without --transcode, 4:4:4 is named as the reason.
    let mut ff = mjpeg(&["-pix_fmt", "yuvj444p", "-huffman", "default"]);
    let out = send(&mut ff, "127.0.0.1:9", &[]);
    let _ = ff.kill();
    let _ = ff.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4:4:4 chroma sampling"), "{err}");
}
