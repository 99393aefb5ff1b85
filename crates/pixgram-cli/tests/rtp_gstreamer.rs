//! RTP/JPEG against GStreamer 1.22 (Debian's gstreamer1.0-tools, -plugins-base, -plugins-good,
//! installed by .ci/run): its `rtpjpegpay` into `pixgram recv --rtp`, `pixgram send --rtp`
//! into its `rtpjpegdepay ! jpegdec`, a 4000x3000 frame both ways (`x-dimensions`), and
//! restart-marker frames (types 64/65). Loopback only; every peer bounded in time.

mod rtp_peers;
mod support;

use std::time::Duration;

use rtp_peers::*;
use support::{bin, Recv, TempDir};

const GST: &str = "gst-launch-1.0";

/// Runs a GStreamer receiver on `port` that writes every decoded frame (raw I420) to `dir`.
fn gst_decoder(port: u16, dims: Option<(u32, u32)>, dir: &std::path::Path) -> std::process::Child {
    let caps = gst_caps(dims);
    let location = format!("location={}/f-%05d.yuv", dir.display());
    let port = format!("port={port}");
    let child = spawn(
        GST,
        &[
            "-q",
            "udpsrc",
            &port,
            "address=127.0.0.1",
            "buffer-size=8388608",
            &format!("caps={caps}"),
            "!",
            "rtpjpegdepay",
            "!",
            "jpegdec",
            "!",
            "multifilesink",
            &location,
        ],
    );
    // udpsrc is bound once the pipeline is playing; give it a moment.
    std::thread::sleep(Duration::from_millis(700));
    child
}

/// Checks `dir` holds `n` decoded I420 frames of `w` x `h`.
fn decoded_frames(dir: &std::path::Path, n: usize, w: u64, h: u64, stderr: &str) {
    let got = files(dir);
    assert_eq!(
        got.len(),
        n,
        "GStreamer decoded {} of {n} frames; its stderr: {stderr}",
        got.len()
    );
    for f in got {
        let len = std::fs::metadata(&f).unwrap().len();
        assert_eq!(
            len,
            w * h * 3 / 2,
            "{}: not a {w}x{h} I420 frame",
            f.display()
        );
    }
}

#[test]
fn gstreamer_rtpjpegpay_into_pixgram_recv() {
    if !have(GST) {
        return;
    }
    let tmp = TempDir::new("rtp-gst-in");
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
    let port = rx.addr.rsplit(':').next().unwrap().to_string();
    run_ok(
        GST,
        &[
            "-q",
            "videotestsrc",
            "num-buffers=20",
            "!",
            "video/x-raw,format=I420,width=640,height=480,framerate=30/1",
            "!",
            "jpegenc",
            "!",
            "rtpjpegpay",
            "!",
            "udpsink",
            "host=127.0.0.1",
            &format!("port={port}"),
        ],
        Duration::from_secs(30),
    );
    let (ok, stdout, stderr) = rx.finish(Duration::from_secs(30));
    assert!(ok, "pixgram recv failed: {stderr}");
    assert_eq!(all_decode(&save, 640, 480), 20, "{stdout}\n{stderr}");
    assert!(stderr.contains("0 frames lost"), "{stderr}");
}

#[test]
fn pixgram_send_into_gstreamer_rtpjpegdepay() {
    if !have(GST) {
        return;
    }
    let Some(photo) = corpus("bythewater_1920x1080.jpg") else {
        return;
    };
    let tmp = TempDir::new("rtp-gst-out");
    let port = free_port_pair();
    let gst = gst_decoder(port, None, tmp.path());
    let photo = photo.display().to_string();
    let to = format!("127.0.0.1:{port}");
    let out = support::run(
        &[
            "send", "--rtp", "--to", &to, &photo, "--loop", "15", "--fps", "30",
        ],
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "pixgram send --rtp failed: {err}");
    wait_for_files(tmp.path(), 15, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let gst_err = stop(gst);
    decoded_frames(tmp.path(), 15, 1920, 1080, &gst_err);
    assert!(err.contains("sent 15 frames"), "{err}");
}

/// 4000 x 3000: 0 x 0 in the RFC 2435 header, the size in `x-dimensions` (GStreamer's caps,
/// pixgram's --sdp), both ways.
#[test]
fn a_frame_over_2040_px_goes_through_gstreamer_with_x_dimensions() {
    if !have(GST) {
        return;
    }
    let Some(big) = corpus("kleiber_4000x3000.jpg") else {
        return;
    };
    let tmp = TempDir::new("rtp-gst-big");
    let big_s = big.display().to_string();
    // pixgram -> GStreamer.
    let dec = tmp.path().join("decoded");
    std::fs::create_dir_all(&dec).unwrap();
    let port = free_port_pair();
    let gst = gst_decoder(port, Some((4000, 3000)), &dec);
    let sdp = tmp.path().join("out.sdp");
    let sdp_s = sdp.display().to_string();
    let to = format!("127.0.0.1:{port}");
    let out = support::run(
        &[
            "send", "--rtp", "--to", &to, &big_s, "--loop", "3", "--fps", "4", "--sdp", &sdp_s,
        ],
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&sdp)
        .unwrap()
        .contains("a=x-dimensions:4000,3000"));
    wait_for_files(&dec, 3, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    decoded_frames(&dec, 3, 4000, 3000, &stop(gst));
    // GStreamer -> pixgram, the size from the SDP.
    let save = tmp.path().join("saved");
    let save_s = save.display().to_string();
    let rx = Recv::start(&[
        "--rtp",
        "--sdp",
        &sdp_s,
        "--save",
        &save_s,
        "--count",
        "3",
        "--duration",
        "30",
    ]);
    let port = rx.addr.rsplit(':').next().unwrap().to_string();
    run_ok(
        GST,
        &[
            "-q",
            "multifilesrc",
            "do-timestamp=true",
            &format!("location={big_s}"),
            "num-buffers=3",
            "caps=image/jpeg,framerate=4/1,width=4000,height=3000",
            "!",
            "rtpjpegpay",
            "!",
            "udpsink",
            "host=127.0.0.1",
            &format!("port={port}"),
        ],
        Duration::from_secs(30),
    );
    let (ok, _, stderr) = rx.finish(Duration::from_secs(30));
    assert!(ok, "pixgram recv failed: {stderr}");
    assert_eq!(all_decode(&save, 4000, 3000), 3, "{stderr}");
}

/// JPEGs with restart markers: pixgram sends type 65 cut on interval boundaries and
/// GStreamer decodes them; GStreamer sends type 65 and pixgram rebuilds the DRI.
#[test]
fn restart_marker_frames_both_ways_with_gstreamer() {
    if !have(GST) {
        return;
    }
    let tmp = TempDir::new("rtp-gst-dri");
    let frames = pattern_jpegs(&tmp.path().join("src"), 10, 640, 480, Some(40));
    let dec = tmp.path().join("decoded");
    std::fs::create_dir_all(&dec).unwrap();
    let port = free_port_pair();
    let gst = gst_decoder(port, None, &dec);
    let to = format!("127.0.0.1:{port}");
    let mut args: Vec<String> = ["send", "--rtp", "--to", &to, "--fps", "30"]
        .map(String::from)
        .to_vec();
    args.extend(frames.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::run(&args, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_files(&dec, 10, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    decoded_frames(&dec, 10, 640, 480, &stop(gst));
    // GStreamer's rtpjpegpay with the same files (untimestamped: every frame gets the same
    // RTP timestamp, told apart by sequence number).
    let save = tmp.path().join("saved");
    let save_s = save.display().to_string();
    let rx = Recv::start(&[
        "--rtp",
        "--save",
        &save_s,
        "--count",
        "10",
        "--duration",
        "30",
    ]);
    let port = rx.addr.rsplit(':').next().unwrap().to_string();
    let pattern = format!(
        "location={}/frame-%03d.jpg",
        tmp.path().join("src").display()
    );
    run_ok(
        GST,
        &[
            "-q",
            "multifilesrc",
            &pattern,
            "index=0",
            "stop-index=9",
            "caps=image/jpeg,framerate=30/1,width=640,height=480",
            "!",
            "rtpjpegpay",
            "!",
            "udpsink",
            "host=127.0.0.1",
            &format!("port={port}"),
        ],
        Duration::from_secs(30),
    );
    let (ok, _, stderr) = rx.finish(Duration::from_secs(30));
    assert!(ok, "pixgram recv failed: {stderr}");
    assert_eq!(all_decode(&save, 640, 480), 10, "{stderr}");
    for f in files(&save) {
        let bytes = std::fs::read(&f).unwrap();
        let dri = bytes.windows(6).any(|w| w == [0xFF, 0xDD, 0, 4, 0, 40]);
        assert!(
            dri,
            "{}: GStreamer's type 65 should rebuild with DRI 40",
            f.display()
        );
    }
    let _ = bin();
}

/// A grayscale JPEG from GStreamer's jpegenc: refused, naming the reason; re-encoded with
/// --transcode and then decoded by GStreamer.
#[test]
fn grayscale_is_refused_or_transcoded() {
    if !have(GST) {
        return;
    }
    let tmp = TempDir::new("rtp-gst-gray");
    let gray = tmp.path().join("gray.jpg");
    run_ok(
        GST,
        &[
            "-q",
            "videotestsrc",
            "num-buffers=1",
            "!",
            "video/x-raw,format=GRAY8,width=320,height=240",
            "!",
            "jpegenc",
            "!",
            "filesink",
            &format!("location={}", gray.display()),
        ],
        Duration::from_secs(20),
    );
    let g = gray.display().to_string();
    let out = support::run(
        &["send", "--rtp", "--to", "127.0.0.1:9", &g],
        Duration::from_secs(20),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("gray.jpg: grayscale JPEG"), "{err}");
    let dec = tmp.path().join("decoded");
    std::fs::create_dir_all(&dec).unwrap();
    let port = free_port_pair();
    let gst = gst_decoder(port, None, &dec);
    let to = format!("127.0.0.1:{port}");
    let out = support::run(
        &[
            "send",
            "--rtp",
            "--to",
            &to,
            &g,
            "--loop",
            "3",
            "--fps",
            "20",
            "--transcode",
        ],
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_files(&dec, 3, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    decoded_frames(&dec, 3, 320, 240, &stop(gst));
}
