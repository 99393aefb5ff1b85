//! The session description (RFC 8866, RTP/AVP profile RFC 3551) of a pixgram RTP/JPEG stream,
//! for `ffplay`, `ffmpeg -protocol_whitelist file,udp,rtp -i FILE` and VLC, and the few
//! attributes pixgram reads back from one: the port, the payload type and GStreamer's
//! `a=x-dimensions:W,H` (the exact size of frames over 2040 px).

use std::fmt::Write as _;
use std::net::IpAddr;

/// What a session description says about a stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SdpStream {
    /// Where the stream goes (the `c=` line).
    pub address: IpAddr,
    /// RTP port (the `m=` line); RTCP goes to the next one.
    pub port: u16,
    /// Payload type.
    pub payload_type: u8,
    /// Exact frame size, when the in-band fields cannot hold it.
    pub dimensions: Option<(u16, u16)>,
    /// Frames per second, if known.
    pub framerate: Option<f64>,
}

impl SdpStream {
    /// The description as text (CRLF line ends, as RFC 8866 wants).
    pub fn write(&self, session_id: u64) -> String {
        let ip = |a: &IpAddr| if a.is_ipv4() { "IP4" } else { "IP6" };
        let mut s = String::new();
        let _ = write!(
            s,
            "v=0\r\no=- {session_id} 1 IN {} {}\r\ns=pixgram RTP/JPEG\r\nc=IN {} {}\r\nt=0 0\r\n\
             m=video {} RTP/AVP {}\r\na=rtpmap:{} JPEG/90000\r\n",
            ip(&self.address),
            self.address,
            ip(&self.address),
            self.address,
            self.port,
            self.payload_type,
            self.payload_type
        );
        if let Some(f) = self.framerate {
            let _ = write!(s, "a=framerate:{f}\r\n");
        }
        if let Some((w, h)) = self.dimensions {
            let _ = write!(s, "a=x-dimensions:{w},{h}\r\n");
        }
        s
    }

    /// Reads the first video stream of `text`; `None` without a `c=` and `m=video` line.
    pub fn parse(text: &str) -> Option<SdpStream> {
        let mut address = None;
        let mut media = None;
        let mut dimensions = None;
        let mut framerate = None;
        for line in text.lines().map(str::trim) {
            if let Some(c) = line.strip_prefix("c=IN ") {
                address = c.split_whitespace().nth(1)?.split('/').next()?.parse().ok();
            } else if let Some(m) = line.strip_prefix("m=video ") {
                let mut f = m.split_whitespace();
                let port = f.next()?.split('/').next()?.parse().ok()?;
                let pt = f.nth(1)?.parse().ok()?;
                media.get_or_insert((port, pt));
            } else if let Some(d) = line.strip_prefix("a=x-dimensions:") {
                let (w, h) = d.trim().split_once(',')?;
                dimensions = Some((w.trim().parse().ok()?, h.trim().parse().ok()?));
            } else if let Some(f) = line.strip_prefix("a=framerate:") {
                framerate = f.trim().parse().ok();
            }
        }
        let (port, payload_type) = media?;
        Some(SdpStream {
            address: address?,
            port,
            payload_type,
            dimensions,
            framerate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_round_trips() {
        let s = SdpStream {
            address: "127.0.0.1".parse().unwrap(),
            port: 5004,
            payload_type: 96,
            dimensions: Some((4000, 3000)),
            framerate: Some(30.0),
        };
        let text = s.write(42);
        assert!(text.contains("m=video 5004 RTP/AVP 96\r\na=rtpmap:96 JPEG/90000\r\n"));
        assert_eq!(SdpStream::parse(&text), Some(s));
        assert_eq!(SdpStream::parse("v=0\r\n"), None);
    }
}
