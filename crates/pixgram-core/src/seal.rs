//! Authenticated encryption of whole datagrams with a pre-shared key (docs/PROTOCOL.md §7).
//!
//! Each endpoint seals what it sends with a key of its own, derived with HKDF-SHA256 from the
//! 32-byte pre-shared key and a 16-byte random salt it picks when it starts (the driver
//! supplies the randomness: the core reads no OS source). The salt travels in every sealed
//! datagram, so the peer derives the same key; since a restarted endpoint picks a new salt, a
//! (key, nonce) pair is never used twice even though the nonce is just a packet counter.
//! AES-256-GCM (aws-lc) seals the inner v1 datagram; the sealed header is the associated data.
//!
//! ```text
//! 0      2   3   4                20                  28              len-16    len
//! | "PG" | 1 | 16 | salt (16 bytes) | packet number u64 | ciphertext ... | tag (16) |
//! ```
//!
//! [`Opener`] keeps a key and a 1,024-packet replay window per salt it has authenticated a
//! datagram from (at most [`Opener::MAX_PEERS`] salts; the least recently used goes), so a
//! datagram seen before, or older than the window, is refused. Garbage can neither add nor
//! evict a salt: a salt is remembered only once a datagram under it has authenticated.

use std::collections::HashMap;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf;
use thiserror::Error;

use crate::wire;

/// Datagram type of a sealed datagram.
pub const SEALED_TYPE: u8 = 16;
/// Bytes of the sealed header (the associated data).
pub const SEALED_HEADER_LEN: usize = 28;
/// Bytes of the authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes sealing adds to a datagram.
pub const SEAL_OVERHEAD: usize = SEALED_HEADER_LEN + TAG_LEN;
/// Packets the replay window covers: 65,536, about 200 ms at 300,000 datagrams a second
/// (1,024 was 3.4 ms), 8 KiB per remembered salt.
pub const REPLAY_WINDOW: u64 = 65_536;
/// Packets sealed under one key before the sealer wants a new salt: AES-GCM's confidentiality
/// limit per key (RFC 9001 section 6.6, 2^23 packets).
pub const REKEY_AFTER: u64 = 1 << 23;
const INFO: &[u8] = b"pixgram v1 datagram key";

/// A 32-byte pre-shared key.
#[derive(Clone, PartialEq, Eq)]
pub struct Psk([u8; 32]);

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Psk(..)")
    }
}

/// Why a key could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not 64 hexadecimal characters.
    #[error("a key is 64 hexadecimal characters (32 bytes); this has {0} characters")]
    Length(usize),
    /// A character that is not hexadecimal.
    #[error("a key is 64 hexadecimal characters; found `{0}`")]
    NotHex(char),
}

impl Psk {
    /// The key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Psk(bytes)
    }

    /// Parses 64 hexadecimal characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(KeyError::Length(text.chars().count()));
        }
        let mut key = [0u8; 32];
        let digits: Vec<u8> = text
            .chars()
            .map(|c| c.to_digit(16).map(|d| d as u8).ok_or(KeyError::NotHex(c)))
            .collect::<Result<_, _>>()?;
        for (i, pair) in digits.chunks(2).enumerate() {
            key[i] = pair[0] << 4 | pair[1];
        }
        Ok(Psk(key))
    }

    /// The key as 64 lowercase hexadecimal characters.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The key's bytes, for the session keys derived from it.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn derive(&self, salt: &[u8; 16]) -> LessSafeKey {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&self.0);
        let okm = prk
            .expand(&[INFO], &AES_256_GCM)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        LessSafeKey::new(UnboundKey::from(okm))
    }
}

pub(crate) fn nonce(packet: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&packet.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Seals the datagrams one endpoint sends.
pub struct Sealer {
    key: LessSafeKey,
    salt: [u8; 16],
    next: u64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("next", &self.next).finish()
    }
}

impl Sealer {
    /// A sealer for `psk` whose key is derived with `salt`, which must be fresh random bytes.
    pub fn new(psk: &Psk, salt: [u8; 16]) -> Self {
        Sealer {
            key: psk.derive(&salt),
            salt,
            next: 0,
        }
    }

    /// Whether [`REKEY_AFTER`] packets were sealed under this salt: the driver should call
    /// [`Sealer::rekey`] with fresh random bytes before the next datagram.
    pub fn needs_rekey(&self) -> bool {
        self.next >= REKEY_AFTER
    }

    /// Packets sealed under the current salt.
    pub fn sealed(&self) -> u64 {
        self.next
    }

    /// Starts over with a new key derived from `salt` (fresh random bytes) and packet
    /// number 0. Receivers see a new salt, as from a restarted sender, and keep a key and
    /// replay window for it.
    pub fn rekey(&mut self, psk: &Psk, salt: [u8; 16]) {
        *self = Sealer::new(psk, salt);
    }

    /// Seals `inner` into `out`, which must hold `inner.len() + SEAL_OVERHEAD` bytes; returns
    /// the sealed length.
    pub fn seal(&mut self, inner: &[u8], out: &mut [u8]) -> usize {
        out[SEALED_HEADER_LEN..SEALED_HEADER_LEN + inner.len()].copy_from_slice(inner);
        self.seal_in_place(out, inner.len())
    }

    /// Seals the `inner_len`-byte inner datagram already written at
    /// `buf[SEALED_HEADER_LEN..]` where it lies (no copy); `buf` must hold
    /// `inner_len + SEAL_OVERHEAD` bytes. Returns the sealed length.
    pub fn seal_in_place(&mut self, buf: &mut [u8], inner_len: usize) -> usize {
        let packet = self.next;
        self.next += 1;
        let key = &self.key;
        seal_in_place(
            buf,
            inner_len,
            SEALED_TYPE,
            &self.salt,
            packet,
            |head, body| key.seal_in_place_separate_tag(nonce(packet), Aad::from(head), body),
        )
    }
}

/// Writes the sealed header (magic, version, `ty`, `salt`, `packet`) before the inner
/// datagram at `buf[SEALED_HEADER_LEN..][..inner_len]`, encrypts it in place with `seal`
/// (given the header as associated data) and appends the tag; returns the sealed length.
pub(crate) fn seal_in_place(
    buf: &mut [u8],
    inner_len: usize,
    ty: u8,
    salt: &[u8; 16],
    packet: u64,
    seal: impl FnOnce(&[u8], &mut [u8]) -> Result<aws_lc_rs::aead::Tag, aws_lc_rs::error::Unspecified>,
) -> usize {
    let len = inner_len + SEAL_OVERHEAD;
    assert!(buf.len() >= len, "seal buffer too small");
    buf[0..2].copy_from_slice(&wire::MAGIC);
    buf[2] = wire::VERSION;
    buf[3] = ty;
    buf[4..20].copy_from_slice(salt);
    buf[20..28].copy_from_slice(&packet.to_be_bytes());
    let (head, rest) = buf.split_at_mut(SEALED_HEADER_LEN);
    let (body, tail) = rest.split_at_mut(inner_len);
    let tag = seal(head, body).expect("AES-GCM seals any datagram-sized input");
    tail[..TAG_LEN].copy_from_slice(tag.as_ref());
    len
}

/// Why a datagram was not opened. None of these is ever answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum OpenError {
    /// Not a sealed datagram (plain pixgram, another protocol, or too short).
    #[error("not sealed")]
    NotSealed,
    /// The tag did not verify: another key, or a modified datagram.
    #[error("authentication failed")]
    BadTag,
    /// Seen before, or older than the replay window.
    #[error("replayed")]
    Replayed,
    /// Sealed under a session key this endpoint does not hold.
    #[error("no such session key")]
    NoSessionKey,
    /// Under a salt key, a datagram that must be sealed under a session key.
    #[error("not sealed under a session key")]
    NotSessionSealed,
}

impl OpenStats {
    /// Counts one refusal.
    pub fn count(&mut self, e: OpenError) {
        match e {
            OpenError::NotSealed => self.not_sealed += 1,
            OpenError::BadTag => self.bad_tag += 1,
            OpenError::Replayed => self.replayed += 1,
            OpenError::NoSessionKey => self.no_session_key += 1,
            OpenError::NotSessionSealed => self.not_session_sealed += 1,
        }
    }
}

/// Counters of an [`Opener`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenStats {
    /// Datagrams opened.
    pub opened: u64,
    /// Dropped: not sealed.
    pub not_sealed: u64,
    /// Dropped: the tag did not verify (wrong key, tampering, garbage).
    pub bad_tag: u64,
    /// Dropped: a packet number seen before or older than the window.
    pub replayed: u64,
    /// Salts forgotten to make room for new ones.
    pub salts_evicted: u64,
    /// Dropped: sealed under a session key this endpoint does not hold (a session of a
    /// receiver that restarted, of another receiver, or recorded before the first exchange).
    pub no_session_key: u64,
    /// Dropped: a datagram other than HELLO or CHALLENGE sealed under a salt key (after the
    /// first exchange everything else is sealed under session keys).
    pub not_session_sealed: u64,
}

/// [`REPLAY_WINDOW`] packet numbers: the highest seen and which of the ones below it were
/// seen.
#[derive(Debug, Clone)]
pub(crate) struct ReplayWindow {
    highest: u64,
    seen: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl ReplayWindow {
    pub(crate) fn new(first: u64) -> Self {
        let mut w = ReplayWindow {
            highest: first,
            seen: [0; (REPLAY_WINDOW / 64) as usize],
        };
        w.set(first);
        w
    }

    fn bit(pn: u64) -> (usize, u64) {
        let i = pn % REPLAY_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn set(&mut self, pn: u64) {
        let (w, b) = Self::bit(pn);
        self.seen[w] |= b;
    }

    /// Whether `pn` may be accepted (not marked).
    pub(crate) fn fresh(&self, pn: u64) -> bool {
        if pn > self.highest {
            return true;
        }
        if self.highest - pn >= REPLAY_WINDOW {
            return false;
        }
        let (w, b) = Self::bit(pn);
        self.seen[w] & b == 0
    }

    /// Marks `pn`, sliding the window forward if it is the new highest.
    pub(crate) fn mark(&mut self, pn: u64) {
        if pn > self.highest {
            let advance = pn - self.highest;
            if advance >= REPLAY_WINDOW {
                self.seen = [0; (REPLAY_WINDOW / 64) as usize];
            } else {
                for p in self.highest + 1..pn {
                    let (w, b) = Self::bit(p);
                    self.seen[w] &= !b;
                }
            }
            self.highest = pn;
        }
        self.set(pn);
    }
}

struct PeerKey {
    key: LessSafeKey,
    window: ReplayWindow,
    last_used: u64,
}

/// Opens sealed datagrams from any number of peers sharing the key.
pub struct Opener {
    psk: Psk,
    peers: HashMap<[u8; 16], PeerKey>,
    clock: u64,
    stats: OpenStats,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("stats", &self.stats)
            .finish()
    }
}

impl Opener {
    /// Salts (peer sessions) remembered at once.
    pub const MAX_PEERS: usize = 256;

    /// An opener for datagrams sealed under `psk`.
    pub fn new(psk: &Psk) -> Self {
        Opener {
            psk: psk.clone(),
            peers: HashMap::new(),
            clock: 0,
            stats: OpenStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &OpenStats {
        &self.stats
    }

    /// Checks and decrypts `datagram` in place; returns the inner datagram.
    pub fn open<'a>(&mut self, datagram: &'a mut [u8]) -> Result<&'a [u8], OpenError> {
        let result = self.open_inner(datagram);
        match result {
            Ok(_) => self.stats.opened += 1,
            Err(e) => self.stats.count(e),
        }
        result.map(|range| &datagram[range])
    }

    fn open_inner(&mut self, d: &mut [u8]) -> Result<std::ops::Range<usize>, OpenError> {
        if d.len() < SEAL_OVERHEAD
            || d[0..2] != wire::MAGIC
            || d[2] != wire::VERSION
            || d[3] != SEALED_TYPE
        {
            return Err(OpenError::NotSealed);
        }
        let salt: [u8; 16] = d[4..20].try_into().expect("16 bytes");
        let packet = u64::from_be_bytes(d[20..28].try_into().expect("8 bytes"));
        self.clock += 1;
        let (head, body) = d.split_at_mut(SEALED_HEADER_LEN);
        let inner_len = body.len() - TAG_LEN;
        if let Some(peer) = self.peers.get_mut(&salt) {
            if !peer.window.fresh(packet) {
                return Err(OpenError::Replayed);
            }
            peer.key
                .open_in_place(nonce(packet), Aad::from(&head[..]), body)
                .map_err(|_| OpenError::BadTag)?;
            peer.window.mark(packet);
            peer.last_used = self.clock;
            return Ok(SEALED_HEADER_LEN..SEALED_HEADER_LEN + inner_len);
        }
        let key = self.psk.derive(&salt);
        key.open_in_place(nonce(packet), Aad::from(&head[..]), body)
            .map_err(|_| OpenError::BadTag)?;
        if self.peers.len() >= Self::MAX_PEERS {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, p)| p.last_used)
                .map(|(s, _)| *s);
            if let Some(s) = oldest {
                self.peers.remove(&s);
                self.stats.salts_evicted += 1;
            }
        }
        self.peers.insert(
            salt,
            PeerKey {
                key,
                window: ReplayWindow::new(packet),
                last_used: self.clock,
            },
        );
        Ok(SEALED_HEADER_LEN..SEALED_HEADER_LEN + inner_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11: a sealer wants a new key before AES-GCM's usage limit, and a receiver opens
    /// datagrams under the old and the new key.
    #[test]
    fn a_sealer_rekeys_at_the_usage_limit_and_both_keys_open() {
        let psk = Psk::from_bytes([5; 32]);
        let mut sealer = Sealer::new(&psk, [1; 16]);
        let mut opener = Opener::new(&psk);
        let mut out = [0u8; 128];
        sealer.next = REKEY_AFTER - 1;
        assert!(!sealer.needs_rekey());
        let n = sealer.seal(b"PG last", &mut out);
        let mut old = out[..n].to_vec();
        assert!(sealer.needs_rekey());
        sealer.rekey(&psk, [2; 16]);
        assert_eq!(sealer.sealed(), 0);
        let n = sealer.seal(b"PG first", &mut out);
        assert_eq!(&out[4..20], &[2; 16]);
        let mut new = out[..n].to_vec();
        assert_eq!(opener.open(&mut old), Ok(&b"PG last"[..]));
        assert_eq!(opener.open(&mut new), Ok(&b"PG first"[..]));
    }

    /// The replay window covers 65,536 packets: reordering that deep is accepted once, and
    /// anything older or repeated is refused.
    #[test]
    fn the_replay_window_is_sized_for_the_datagram_rate() {
        let psk = Psk::from_bytes([6; 32]);
        let mut sealer = Sealer::new(&psk, [3; 16]);
        let mut opener = Opener::new(&psk);
        let mut out = [0u8; 128];
        let mut sealed = Vec::new();
        for _ in 0..3 {
            let n = sealer.seal(b"PG x", &mut out);
            sealed.push(out[..n].to_vec());
        }
        sealer.next = 70_000;
        let n = sealer.seal(b"PG y", &mut out);
        assert!(opener.open(&mut out[..n].to_vec()).is_ok());
        // 70,000 - 2 is past the window; 70,000 - 65,535 is not.
        assert_eq!(opener.open(&mut sealed[2]), Err(OpenError::Replayed));
        sealer.next = 70_000 - 65_535;
        let n = sealer.seal(b"PG z", &mut out);
        let mut late = out[..n].to_vec();
        assert!(opener.open(&mut late.clone()).is_ok());
        assert_eq!(opener.open(&mut late), Err(OpenError::Replayed));
    }

    fn psk(b: u8) -> Psk {
        Psk::from_bytes([b; 32])
    }

    fn sealed(s: &mut Sealer, inner: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; inner.len() + SEAL_OVERHEAD];
        let n = s.seal(inner, &mut out);
        out.truncate(n);
        out
    }

    /// Sealing in place (the inner datagram written where the sealed one carries it) gives
    /// the same bytes as sealing a copy.
    #[test]
    fn sealing_in_place_equals_sealing_a_copy() {
        let inner = b"PG\x03\x01 an inner datagram";
        let (mut a, mut b) = (Sealer::new(&psk(2), [5; 16]), Sealer::new(&psk(2), [5; 16]));
        let copied = sealed(&mut a, inner);
        let mut buf = vec![0u8; inner.len() + SEAL_OVERHEAD];
        buf[SEALED_HEADER_LEN..SEALED_HEADER_LEN + inner.len()].copy_from_slice(inner);
        let n = b.seal_in_place(&mut buf, inner.len());
        assert_eq!(&buf[..n], &copied[..]);
        assert_eq!(Opener::new(&psk(2)).open(&mut buf[..n]), Ok(&inner[..]));
    }

    #[test]
    fn round_trip_and_ciphertext_hides_the_datagram() {
        let mut s = Sealer::new(&psk(1), [7; 16]);
        let mut o = Opener::new(&psk(1));
        let inner = b"PG\x01\x01 a datagram with a recognisable body";
        let mut d = sealed(&mut s, inner);
        assert!(!d.windows(10).any(|w| w == &inner[10..20]));
        assert_eq!(o.open(&mut d).unwrap(), inner);
        assert_eq!(o.stats().opened, 1);
    }

    #[test]
    fn wrong_key_and_tampering_are_refused() {
        let mut s = Sealer::new(&psk(1), [7; 16]);
        let mut o = Opener::new(&psk(2));
        let mut d = sealed(&mut s, b"hello");
        assert_eq!(o.open(&mut d), Err(OpenError::BadTag));
        let mut o = Opener::new(&psk(1));
        for i in 0..SEAL_OVERHEAD + 5 {
            let mut t = sealed(&mut Sealer::new(&psk(1), [7; 16]), b"hello");
            t[i] ^= 0x01;
            assert!(o.open(&mut t).is_err(), "flipped byte {i} accepted");
        }
        assert!(o.peers.is_empty(), "a failed datagram must not add a salt");
    }

    #[test]
    fn replays_and_old_packets_are_refused() {
        let mut s = Sealer::new(&psk(1), [7; 16]);
        let mut o = Opener::new(&psk(1));
        let first = sealed(&mut s, b"one");
        assert!(o.open(&mut first.clone()).is_ok());
        assert_eq!(o.open(&mut first.clone()), Err(OpenError::Replayed));
        let w = REPLAY_WINDOW as usize;
        let mut later: Vec<Vec<u8>> = (0..w + 976).map(|_| sealed(&mut s, b"x")).collect();
        // Out of order within the window is fine.
        assert!(o.open(&mut later[5]).is_ok());
        assert!(o.open(&mut later[3]).is_ok());
        assert!(o.open(&mut later[w + 975]).is_ok());
        // Packet 4 is now more than the window behind the highest.
        assert_eq!(o.open(&mut later[4]), Err(OpenError::Replayed));
        assert!(o.open(&mut later[w + 476]).is_ok());
        assert_eq!(
            o.open(&mut later[w + 476].clone()),
            Err(OpenError::Replayed)
        );
        assert_eq!(o.stats().replayed, 3);
    }

    #[test]
    fn salts_give_distinct_keys_and_plain_datagrams_are_not_sealed() {
        let a = sealed(&mut Sealer::new(&psk(1), [1; 16]), b"same");
        let b = sealed(&mut Sealer::new(&psk(1), [2; 16]), b"same");
        assert_ne!(a[SEALED_HEADER_LEN..], b[SEALED_HEADER_LEN..]);
        let mut o = Opener::new(&psk(1));
        assert_eq!(
            o.open(&mut b"PG\x01\x01 plain".to_vec()),
            Err(OpenError::NotSealed)
        );
        assert_eq!(o.open(&mut Vec::new()), Err(OpenError::NotSealed));
    }

    #[test]
    fn keys_parse_from_hex() {
        let k = Psk::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(k.to_hex(), "ab".repeat(32));
        assert_eq!(Psk::from_hex("abc"), Err(KeyError::Length(3)));
        assert_eq!(
            Psk::from_hex(&format!("{}zz", "0".repeat(62))),
            Err(KeyError::NotHex('z'))
        );
    }

    #[test]
    fn remembered_salts_are_bounded() {
        let mut o = Opener::new(&psk(1));
        for i in 0..Opener::MAX_PEERS + 10 {
            let mut salt = [0u8; 16];
            salt[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let mut d = sealed(&mut Sealer::new(&psk(1), salt), b"x");
            o.open(&mut d).unwrap();
        }
        assert_eq!(o.peers.len(), Opener::MAX_PEERS);
        assert_eq!(o.stats().salts_evicted, 10);
    }
}
