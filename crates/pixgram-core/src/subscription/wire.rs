//! The subscription datagrams (docs/PROTOCOL.md §10): checked parsing and emitting.
//!
//! They share the common header and CRC32C trailer of every pixgram datagram (types 9-14), so a
//! driver tells them from the protocol's own with [`is_subscription`] before handing the rest
//! to a [`crate::Receiver`]. The session id of the header is the subscriber's (random) id.

use crate::ids::SessionId;
use crate::wire::{
    checksum, ParseError, Token, COMMON_HEADER_LEN, MAGIC, TOKEN_LEN, TRAILER_LEN, VERSION,
};

/// Type of SUBSCRIBE: subscriber to hub.
pub const SUBSCRIBE: u8 = 9;
/// Type of SUBSCRIBE-TOKEN: hub to an unvalidated subscriber.
pub const SUBSCRIBE_TOKEN: u8 = 10;
/// Type of SUBSCRIBED: hub to a validated subscriber (accepted, or refused because full).
pub const SUBSCRIBED: u8 = 11;
/// Type of KEEPALIVE: subscriber to hub, every second.
pub const KEEPALIVE: u8 = 12;
/// Type of UNSUBSCRIBE: subscriber to hub, on exit.
pub const UNSUBSCRIBE: u8 = 13;
/// Type of BEHIND: hub to a subscriber whose backlog overflowed.
pub const BEHIND: u8 = 14;

/// The subscription exchange's version, carried in SUBSCRIBE.
pub const SUBSCRIPTION_VERSION: u8 = 1;
/// Smallest SUBSCRIBE: larger than SUBSCRIBE-TOKEN, the only answer an unvalidated address gets.
pub const MIN_SUBSCRIBE_LEN: usize = 64;
/// Bytes of a SUBSCRIBE-TOKEN.
pub const SUBSCRIBE_TOKEN_LEN: usize = COMMON_HEADER_LEN + TOKEN_LEN + TRAILER_LEN;
/// Bytes of a SUBSCRIBED.
pub const SUBSCRIBED_LEN: usize = COMMON_HEADER_LEN + 4 + TRAILER_LEN;
/// Bytes of a KEEPALIVE: no smaller than the SUBSCRIBE-TOKEN a hub that forgot the subscriber
/// answers it with.
pub const KEEPALIVE_LEN: usize = 48;
/// Bytes of an UNSUBSCRIBE.
pub const UNSUBSCRIBE_LEN: usize = COMMON_HEADER_LEN + TRAILER_LEN;
/// Bytes of a BEHIND.
pub const BEHIND_LEN: usize = COMMON_HEADER_LEN + 8 + TRAILER_LEN;
/// Most stream filters one SUBSCRIBE carries.
pub const MAX_FILTERS: usize = 8;
/// Longest stream filter, in bytes.
pub const MAX_FILTER_LEN: usize = 100;
/// Largest subscription datagram (a SUBSCRIBE with every filter at its longest).
pub const MAX_CONTROL_LEN: usize = 44 + MAX_FILTERS * (1 + MAX_FILTER_LEN) + TRAILER_LEN;

const FLAG_TOKEN: u8 = 0x01;

// No answer a hub sends to an unvalidated address is larger than what asked for it (§10.3).
const _: () =
    assert!(SUBSCRIBE_TOKEN_LEN <= MIN_SUBSCRIBE_LEN && SUBSCRIBE_TOKEN_LEN <= KEEPALIVE_LEN);

/// How a subscriber wants frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Every frame, as fast as the path allows, up to a bounded backlog (then the backlog is
    /// skipped to its newest frame and the subscriber told: BEHIND).
    #[default]
    Reliable,
    /// The latest frame of each stream: a newer frame replaces one still waiting.
    Latest,
}

/// Whether the hub had room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeStatus {
    /// The subscription is held; frames follow from the hub's sender.
    Accepted,
    /// Every place (max subscribers) is taken.
    Full,
}

/// One subscription datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Subscribe (or renew): the streams wanted (empty: all), the mode, and a token once the
    /// hub gave one.
    Subscribe {
        /// The subscriber's id.
        session: SessionId,
        /// How frames are wanted.
        mode: Mode,
        /// A token the hub issued to this address and session.
        token: Option<Token>,
        /// Stream-key prefixes; empty: every stream.
        filters: Vec<String>,
    },
    /// The hub's token for an address it has not validated.
    SubscribeToken {
        /// The subscriber's id, from the datagram answered.
        session: SessionId,
        /// The token.
        token: Token,
    },
    /// The hub's verdict on a SUBSCRIBE with a valid token.
    Subscribed {
        /// The subscriber's id.
        session: SessionId,
        /// Held or refused.
        status: SubscribeStatus,
    },
    /// The subscriber is still there.
    Keepalive {
        /// The subscriber's id.
        session: SessionId,
    },
    /// The subscriber leaves.
    Unsubscribe {
        /// The subscriber's id.
        session: SessionId,
    },
    /// Frames were skipped for this subscriber: `skipped` in all so far.
    Behind {
        /// The subscriber's id.
        session: SessionId,
        /// Frames skipped since the subscription started.
        skipped: u64,
    },
}

/// Whether `buf` is a subscription datagram (types 9-14 under pixgram's magic and version):
/// the cheap test a driver makes before the protocol's own parser.
pub fn is_subscription(buf: &[u8]) -> bool {
    buf.len() >= 4
        && buf[0..2] == MAGIC
        && buf[2] == VERSION
        && (SUBSCRIBE..=BEHIND).contains(&buf[3])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses and verifies one subscription datagram; never panics.
pub fn parse(buf: &[u8]) -> Result<Control, ParseError> {
    if buf.len() < COMMON_HEADER_LEN + TRAILER_LEN {
        return Err(ParseError::Truncated);
    }
    if buf[0..2] != MAGIC {
        return Err(ParseError::BadMagic);
    }
    if buf[2] != VERSION {
        return Err(ParseError::UnsupportedVersion(buf[2]));
    }
    let ty = buf[3];
    if !(SUBSCRIBE..=BEHIND).contains(&ty) {
        return Err(ParseError::UnknownType(ty));
    }
    let end = buf.len() - TRAILER_LEN;
    if checksum(&buf[..end]) != u32_at(buf, end) {
        return Err(ParseError::BadChecksum);
    }
    let b = &buf[..end];
    let session = SessionId(u32_at(b, 4));
    let exact = |len: usize| {
        if buf.len() == len {
            Ok(())
        } else {
            Err(ParseError::BadHeader("subscription datagram length"))
        }
    };
    match ty {
        SUBSCRIBE => parse_subscribe(b, session, buf.len()),
        SUBSCRIBE_TOKEN => {
            exact(SUBSCRIBE_TOKEN_LEN)?;
            let mut token = [0u8; TOKEN_LEN];
            token.copy_from_slice(&b[8..8 + TOKEN_LEN]);
            Ok(Control::SubscribeToken { session, token })
        }
        SUBSCRIBED => {
            exact(SUBSCRIBED_LEN)?;
            let status = match b[8] {
                0 => SubscribeStatus::Accepted,
                1 => SubscribeStatus::Full,
                _ => return Err(ParseError::BadHeader("subscribed status")),
            };
            if b[9..12] != [0, 0, 0] {
                return Err(ParseError::BadHeader("subscribed reserved"));
            }
            Ok(Control::Subscribed { session, status })
        }
        KEEPALIVE => {
            exact(KEEPALIVE_LEN)?;
            if b[8..].iter().any(|&x| x != 0) {
                return Err(ParseError::BadHeader("keepalive padding"));
            }
            Ok(Control::Keepalive { session })
        }
        UNSUBSCRIBE => {
            exact(UNSUBSCRIBE_LEN)?;
            Ok(Control::Unsubscribe { session })
        }
        _ => {
            exact(BEHIND_LEN)?;
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[8..16]);
            Ok(Control::Behind {
                session,
                skipped: u64::from_be_bytes(n),
            })
        }
    }
}

fn parse_subscribe(b: &[u8], session: SessionId, len: usize) -> Result<Control, ParseError> {
    if len < MIN_SUBSCRIBE_LEN {
        return Err(ParseError::Truncated);
    }
    if len > MAX_CONTROL_LEN {
        return Err(ParseError::BadHeader("subscribe too long"));
    }
    let flags = b[8];
    if flags & !FLAG_TOKEN != 0 {
        return Err(ParseError::BadHeader("subscribe flags"));
    }
    if b[9] != SUBSCRIPTION_VERSION {
        return Err(ParseError::UnsupportedVersion(b[9]));
    }
    let mode = match b[10] {
        0 => Mode::Reliable,
        1 => Mode::Latest,
        _ => return Err(ParseError::BadHeader("subscribe mode")),
    };
    let count = usize::from(b[11]);
    if count > MAX_FILTERS {
        return Err(ParseError::BadHeader("too many stream filters"));
    }
    let mut token = [0u8; TOKEN_LEN];
    token.copy_from_slice(&b[12..12 + TOKEN_LEN]);
    let token = if flags & FLAG_TOKEN != 0 {
        Some(token)
    } else if token != [0; TOKEN_LEN] {
        return Err(ParseError::BadHeader("token without its flag"));
    } else {
        None
    };
    let mut at = 12 + TOKEN_LEN;
    let mut filters = Vec::with_capacity(count);
    for _ in 0..count {
        let n = usize::from(*b.get(at).ok_or(ParseError::Truncated)?);
        let bytes = b.get(at + 1..at + 1 + n).ok_or(ParseError::Truncated)?;
        if n == 0 || n > MAX_FILTER_LEN {
            return Err(ParseError::BadHeader("stream filter length"));
        }
        let text =
            std::str::from_utf8(bytes).map_err(|_| ParseError::BadHeader("stream filter utf-8"))?;
        filters.push(text.to_owned());
        at += 1 + n;
    }
    if b[at..].iter().any(|&x| x != 0) {
        return Err(ParseError::BadHeader("subscribe padding"));
    }
    Ok(Control::Subscribe {
        session,
        mode,
        token,
        filters,
    })
}

/// Writes `c` at the start of `buf` and returns its length; a SUBSCRIBE is padded to
/// [`MIN_SUBSCRIBE_LEN`]. Filters beyond [`MAX_FILTERS`], and any longer than
/// [`MAX_FILTER_LEN`] bytes, are left out (the caller checks them first).
///
/// # Panics
/// If `buf` is shorter than [`MAX_CONTROL_LEN`].
pub fn emit(buf: &mut [u8], c: &Control) -> usize {
    let (ty, session) = match c {
        Control::Subscribe { session, .. } => (SUBSCRIBE, session),
        Control::SubscribeToken { session, .. } => (SUBSCRIBE_TOKEN, session),
        Control::Subscribed { session, .. } => (SUBSCRIBED, session),
        Control::Keepalive { session } => (KEEPALIVE, session),
        Control::Unsubscribe { session } => (UNSUBSCRIBE, session),
        Control::Behind { session, .. } => (BEHIND, session),
    };
    let buf = &mut buf[..MAX_CONTROL_LEN];
    buf.fill(0);
    buf[0..2].copy_from_slice(&MAGIC);
    buf[2] = VERSION;
    buf[3] = ty;
    buf[4..8].copy_from_slice(&session.0.to_be_bytes());
    let body = match c {
        Control::Subscribe {
            mode,
            token,
            filters,
            ..
        } => {
            buf[8] = if token.is_some() { FLAG_TOKEN } else { 0 };
            buf[9] = SUBSCRIPTION_VERSION;
            buf[10] = match mode {
                Mode::Reliable => 0,
                Mode::Latest => 1,
            };
            if let Some(t) = token {
                buf[12..12 + TOKEN_LEN].copy_from_slice(t);
            }
            let mut at = 12 + TOKEN_LEN;
            let mut count = 0u8;
            for f in filters.iter().filter(|f| valid_filter(f)).take(MAX_FILTERS) {
                buf[at] = f.len() as u8;
                buf[at + 1..at + 1 + f.len()].copy_from_slice(f.as_bytes());
                at += 1 + f.len();
                count += 1;
            }
            buf[11] = count;
            at.max(MIN_SUBSCRIBE_LEN - TRAILER_LEN)
        }
        Control::SubscribeToken { token, .. } => {
            buf[8..8 + TOKEN_LEN].copy_from_slice(token);
            SUBSCRIBE_TOKEN_LEN - TRAILER_LEN
        }
        Control::Subscribed { status, .. } => {
            buf[8] = match status {
                SubscribeStatus::Accepted => 0,
                SubscribeStatus::Full => 1,
            };
            SUBSCRIBED_LEN - TRAILER_LEN
        }
        Control::Keepalive { .. } => KEEPALIVE_LEN - TRAILER_LEN,
        Control::Unsubscribe { .. } => UNSUBSCRIBE_LEN - TRAILER_LEN,
        Control::Behind { skipped, .. } => {
            buf[8..16].copy_from_slice(&skipped.to_be_bytes());
            BEHIND_LEN - TRAILER_LEN
        }
    };
    let crc = checksum(&buf[..body]);
    buf[body..body + TRAILER_LEN].copy_from_slice(&crc.to_be_bytes());
    body + TRAILER_LEN
}

/// Whether `f` can travel as a stream filter: 1 to [`MAX_FILTER_LEN`] bytes.
pub fn valid_filter(f: &str) -> bool {
    !f.is_empty() && f.len() <= MAX_FILTER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(c: Control) -> usize {
        let mut buf = [0u8; MAX_CONTROL_LEN];
        let n = emit(&mut buf, &c);
        assert!(is_subscription(&buf[..n]));
        assert_eq!(parse(&buf[..n]), Ok(c));
        n
    }

    #[test]
    fn every_datagram_round_trips_at_its_documented_size() {
        let s = SessionId(0xDEAD_BEEF);
        let sub = Control::Subscribe {
            session: s,
            mode: Mode::Latest,
            token: Some([7; TOKEN_LEN]),
            filters: vec!["10.0.0.1".into(), "cam-2".into()],
        };
        assert_eq!(round_trip(sub), MIN_SUBSCRIBE_LEN);
        let bare = Control::Subscribe {
            session: s,
            mode: Mode::Reliable,
            token: None,
            filters: vec![],
        };
        assert_eq!(round_trip(bare), MIN_SUBSCRIBE_LEN);
        let long = Control::Subscribe {
            session: s,
            mode: Mode::Reliable,
            token: None,
            filters: vec!["x".repeat(MAX_FILTER_LEN); MAX_FILTERS],
        };
        assert_eq!(round_trip(long), MAX_CONTROL_LEN);
        let token = Control::SubscribeToken {
            session: s,
            token: [3; TOKEN_LEN],
        };
        assert_eq!(round_trip(token), SUBSCRIBE_TOKEN_LEN);
        for status in [SubscribeStatus::Accepted, SubscribeStatus::Full] {
            let c = Control::Subscribed { session: s, status };
            assert_eq!(round_trip(c), SUBSCRIBED_LEN);
        }
        assert_eq!(round_trip(Control::Keepalive { session: s }), KEEPALIVE_LEN);
        assert_eq!(
            round_trip(Control::Unsubscribe { session: s }),
            UNSUBSCRIBE_LEN
        );
        let behind = Control::Behind {
            session: s,
            skipped: 1 << 40,
        };
        assert_eq!(round_trip(behind), BEHIND_LEN);
    }

    #[test]
    fn damaged_or_odd_datagrams_are_refused_without_panicking() {
        let mut buf = [0u8; MAX_CONTROL_LEN];
        let n = emit(
            &mut buf,
            &Control::Subscribe {
                session: SessionId(1),
                mode: Mode::Reliable,
                token: None,
                filters: vec!["a".into()],
            },
        );
        for cut in 0..n {
            assert!(parse(&buf[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = buf;
        flipped[20] ^= 1;
        assert_eq!(parse(&flipped[..n]), Err(ParseError::BadChecksum));
        // Every single-byte value at every offset: errors or a datagram, never a panic.
        for at in 0..n {
            for v in [0u8, 1, 9, 14, 0x7F, 0xFF] {
                let mut b = buf;
                b[at] = v;
                let body = n - TRAILER_LEN;
                let crc = checksum(&b[..body]);
                b[body..n].copy_from_slice(&crc.to_be_bytes());
                let _ = parse(&b[..n]);
            }
        }
        assert!(
            !is_subscription(b"PG\x03\x01"),
            "DATA is not a subscription datagram"
        );
    }
}
