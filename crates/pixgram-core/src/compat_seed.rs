//! The original Python scripts' wire format ("seed"), without I/O: a receiver that cannot be
//! hung, crashed or made to over-allocate, and the datagrams a sender of that format emits.
//!
//! The format has no magic, checksum or sequence number, so a receiver can only guess where an
//! image starts. The rules below are normative for pixgram (docs/PROTOCOL.md §6 points here).
//!
//! **Image port.** A client sends either
//! - (a) a whole image in one datagram (a JPEG from its SOI marker `FF D8` to its EOI marker
//!   `FF D9`, or a PNG from its signature to its IEND chunk), or
//! - (b) an 8-byte header holding the length, packed with Python's `struct.pack('l', n)` on
//!   64-bit Linux (little-endian, signed 64-bit), then the image in chunks of at most
//!   [`CHUNK_LEN`] bytes.
//!
//! After each whole image the receiver replies [`IMAGE_REPLY`] to the sender's address.
//!
//! **Resynchronisation.** Per peer address the receiver is either idle or collecting an image
//! of a declared length. While idle, an 8-byte datagram is a header, a datagram holding a whole
//! image is that image, and anything else is counted as stray and dropped. While
//! collecting:
//! - an 8-byte datagram is the last chunk if exactly 8 bytes are missing (and, for a JPEG, it
//!   ends with the EOI marker `FF D9`), otherwise a new header: the image being collected lost
//!   a chunk ([`BrokenReason::Interrupted`]);
//! - a datagram longer than [`CHUNK_LEN`] is a whole image if it holds one (the image
//!   being collected is broken), otherwise it breaks the image ([`BrokenReason::OversizeChunk`]);
//! - a chunk that would take the image past its declared length breaks it
//!   ([`BrokenReason::Overrun`]) and is dropped;
//! - no datagram for [`SeedConfig::idle_timeout`] breaks it ([`BrokenReason::Stalled`]);
//! - an image that reaches its declared length is delivered only if it is one whole JPEG (SOI
//!   `FF D8` to EOI `FF D9`) or PNG (signature to IEND), and a JPEG is given up as soon as a
//!   chunk follows one that ended in `FF D9` ([`BrokenReason::NotWholeImage`]): its first chunk
//!   was lost, or chunks of two images were spliced. Like the original scripts, which decode
//!   what they receive, this mode carries images, not arbitrary bytes.
//!
//! The format has no checksum or chunk number, so these rules catch one lost datagram per image
//! (the common case, and what the property tests check) but not every combination of several
//! losses, duplicates or reordering: chunks swapped in transit, or a middle chunk lost and
//! another duplicated, go unnoticed. pixgram's own protocol has neither weakness.
//!
//! A header declaring a negative length or more than [`SeedConfig::max_image_len`] is counted
//! and ignored before anything is allocated; the chunks that follow it are counted as stray.
//! Buffers grow with the bytes that actually arrive, never to a declared length up front, and
//! all images being collected together hold at most [`SeedConfig::max_buffered`] bytes.
//!
//! **Message port.** One UTF-8 JSON document per datagram, answered with [`MESSAGE_REPLY`].
//! The core does not parse JSON: [`SeedReceiver::handle_message`] reports the datagram and the
//! driver calls [`SeedReceiver::acknowledge_message`] for the ones that parse.
//!
//! **Replies and amplification.** Every original client is answered, including one whose
//! datagram is shorter than the reply (a message `[1]` or `1`, shorter than the 11 bytes of
//! [`MESSAGE_REPLY`]; an 8-byte header announcing an empty image, shorter than the 14 bytes of
//! [`IMAGE_REPLY`]), and the receiver still cannot be used as an amplifier beyond a fixed
//! number of bytes per second, however many (spoofed) source addresses send to it:
//!
//! 1. Each address has a *credit*: the bytes received from it minus the bytes already sent to
//!    it. A reply is paid from the credit first.
//! 2. What the credit does not cover (the *shortfall*, at most the reply's length) is paid from
//!    two token buckets, both of which must hold it: the address's own allowance
//!    ([`SeedConfig::reply_allowance_per_peer`], default 512 bytes, refilled at that many bytes
//!    per second; an address seen for the first time starts with a full bucket) and the
//!    receiver's allowance shared by all addresses ([`SeedConfig::reply_allowance_total`],
//!    default 8,192 bytes, refilled at 8,192 bytes per second).
//! 3. A reply that cannot be paid now is *deferred*: it waits, in arrival order, until both
//!    buckets have refilled enough, and is then sent (a stop-and-wait client is answered late,
//!    never left waiting forever). At most [`MAX_DEFERRED_PER_PEER`] replies per address and
//!    [`MAX_DEFERRED`] in all wait; a reply beyond that, or one whose address was forgotten
//!    meanwhile, is dropped and counted in [`SeedStats::replies_limited`].
//!
//! Hence, over any stretch of `T` seconds, one receiver sends at most
//! `received + reply_allowance_total × (1 + T)` bytes of replies, where `received` is what it
//! received in that stretch ([`SeedConfig::reply_bound`]), and one address gets at most
//! `reply_allowance_per_peer × (1 + T)` bytes more than it sent. `pixgram recv --compat seed`
//! runs one receiver per port (images, messages), so its bound is twice that: 16 KiB/s beyond
//! what it receives, with the defaults.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use crate::time::Timestamp;
use crate::transmit::Transmit;

/// The length header's size.
pub const HEADER_LEN: usize = 8;
/// The largest chunk the original client sends.
pub const CHUNK_LEN: usize = 1024;
/// The reply to a whole image.
pub const IMAGE_REPLY: &[u8] = b"get message!!!";
/// The reply to a message.
pub const MESSAGE_REPLY: &[u8] = b"get the msg";

/// The longest reply a [`SeedReceiver`] sends: the buffer `poll_transmit` needs.
pub const MAX_SEED_REPLY_LEN: usize = max_len(IMAGE_REPLY, MESSAGE_REPLY);

const fn max_len(a: &[u8], b: &[u8]) -> usize {
    if a.len() > b.len() {
        a.len()
    } else {
        b.len()
    }
}
/// Replies waiting for the allowance, per address.
pub const MAX_DEFERRED_PER_PEER: u32 = 4;
/// Replies waiting for the allowance, in all.
pub const MAX_DEFERRED: usize = 1024;

/// The 8-byte header announcing an image of `len` bytes.
pub fn header(len: usize) -> [u8; HEADER_LEN] {
    (len as i64).to_le_bytes()
}

/// The datagrams that follow [`header`] in format (b): `image` in chunks of [`CHUNK_LEN`].
pub fn chunks(image: &[u8]) -> std::slice::Chunks<'_, u8> {
    image.chunks(CHUNK_LEN)
}

/// Whether `datagram` is a whole image: a JPEG from its SOI to its EOI marker, or a PNG from
/// its signature to its IEND chunk. (The first chunk of a larger JPEG starts like one but does
/// not end like one.)
pub fn is_whole_image(datagram: &[u8]) -> bool {
    let jpeg = datagram.len() >= 4
        && datagram.starts_with(&[0xFF, 0xD8])
        && datagram.ends_with(&[0xFF, 0xD9]);
    let png =
        datagram.starts_with(b"\x89PNG\r\n\x1a\n") && datagram.ends_with(b"IEND\xAE\x42\x60\x82");
    jpeg || png
}

/// Limits of a [`SeedReceiver`].
#[derive(Debug, Clone, PartialEq)]
pub struct SeedConfig {
    /// Largest image accepted, in bytes.
    pub max_image_len: u64,
    /// Peer addresses tracked at once; the least recently heard idle one is forgotten first.
    pub max_peers: usize,
    /// Bytes held in all images being collected together.
    pub max_buffered: u64,
    /// Silence after which an image being collected is given up.
    pub idle_timeout: Duration,
    /// Bytes per second (and bucket size) by which replies to one address may exceed what it
    /// sent (see the module documentation).
    pub reply_allowance_per_peer: u32,
    /// Bytes per second (and bucket size) by which replies to all addresses together may
    /// exceed what they sent.
    pub reply_allowance_total: u32,
}

impl SeedConfig {
    /// The most bytes of replies a receiver with this configuration sends over `elapsed`
    /// during which it received `received` bytes: `received + total × (1 + elapsed)`.
    pub fn reply_bound(&self, received: u64, elapsed: Duration) -> u64 {
        let total = f64::from(self.reply_allowance_total);
        received.saturating_add((total * (1.0 + elapsed.as_secs_f64())).ceil() as u64)
    }
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig {
            max_image_len: 64 << 20,
            max_peers: 256,
            max_buffered: 256 << 20,
            idle_timeout: Duration::from_secs(2),
            reply_allowance_per_peer: 512,
            reply_allowance_total: 8192,
        }
    }
}

/// Why an image was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrokenReason {
    /// The header declared a negative length.
    NegativeLength,
    /// The header declared more than [`SeedConfig::max_image_len`].
    TooLarge,
    /// A new header or whole image came before this image was complete (a chunk was lost).
    Interrupted,
    /// A chunk would have taken the image past its declared length.
    Overrun,
    /// A datagram longer than [`CHUNK_LEN`] that is not an image arrived mid-image.
    OversizeChunk,
    /// Nothing arrived for [`SeedConfig::idle_timeout`].
    Stalled,
    /// Buffering the image would exceed [`SeedConfig::max_buffered`].
    NoRoom,
    /// The bytes collected are not one whole JPEG or PNG.
    NotWholeImage,
    /// Its place was given to a new sender while the table was full: nothing but its header
    /// had arrived, or nothing had for [`SEED_EVICT_QUIET`].
    Evicted,
}

/// How long an image being collected must have gained nothing before a new sender may take
/// its place in a full table. An image that only announced itself (a header, no chunk) gives
/// way at once: 256 cheap headers cannot hold every place.
pub const SEED_EVICT_QUIET: Duration = Duration::from_secs(1);

/// What a [`SeedReceiver`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SeedEvent {
    /// A whole image.
    Image {
        /// Who sent it.
        peer: SocketAddr,
        /// Its bytes.
        bytes: Vec<u8>,
        /// True if it came in one datagram (format (a)).
        single_datagram: bool,
    },
    /// An image given up.
    Broken {
        /// Who sent it.
        peer: SocketAddr,
        /// Why.
        reason: BrokenReason,
        /// Bytes received of it.
        received: u64,
        /// The length its header declared, if any.
        declared: Option<i64>,
    },
    /// A datagram on the message port; the driver checks it and acknowledges it.
    Message {
        /// Who sent it.
        peer: SocketAddr,
        /// Its bytes.
        bytes: Vec<u8>,
    },
}

/// Counters of a [`SeedReceiver`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedStats {
    /// Datagrams handled.
    pub datagrams: u64,
    /// Bytes in those datagrams.
    pub bytes: u64,
    /// Images delivered.
    pub images: u64,
    /// Of which in one datagram.
    pub images_single_datagram: u64,
    /// Images given up, by reason.
    pub broken_negative_length: u64,
    /// See [`BrokenReason::TooLarge`].
    pub broken_too_large: u64,
    /// See [`BrokenReason::Interrupted`].
    pub broken_interrupted: u64,
    /// See [`BrokenReason::Overrun`].
    pub broken_overrun: u64,
    /// See [`BrokenReason::OversizeChunk`].
    pub broken_oversize_chunk: u64,
    /// See [`BrokenReason::Stalled`].
    pub broken_stalled: u64,
    /// See [`BrokenReason::NoRoom`].
    pub broken_no_room: u64,
    /// See [`BrokenReason::NotWholeImage`].
    pub broken_not_whole_image: u64,
    /// See [`BrokenReason::Evicted`].
    pub broken_evicted: u64,
    /// Datagrams that belonged to no image, dropped.
    pub stray_datagrams: u64,
    /// Messages reported.
    pub messages: u64,
    /// Messages the driver refused (not JSON), unanswered.
    pub messages_rejected: u64,
    /// Replies queued.
    pub replies_sent: u64,
    /// Replies dropped: not covered by the peer's bytes or the allowance, and no room to wait.
    pub replies_limited: u64,
    /// Replies that waited for the allowance to refill (then sent or, if counted in
    /// `replies_limited` too, dropped).
    pub replies_deferred: u64,
    /// Reply bytes paid from the allowance (beyond what their addresses sent).
    pub allowance_bytes: u64,
    /// Peers forgotten to make room for new ones.
    pub peers_evicted: u64,
    /// Datagrams dropped because the peer table was full of peers mid-image.
    pub peers_refused: u64,
}

impl SeedStats {
    /// Images given up, all reasons together.
    pub fn broken(&self) -> u64 {
        self.broken_negative_length
            + self.broken_too_large
            + self.broken_interrupted
            + self.broken_overrun
            + self.broken_oversize_chunk
            + self.broken_stalled
            + self.broken_no_room
            + self.broken_not_whole_image
            + self.broken_evicted
    }

    fn count(&mut self, reason: BrokenReason) {
        *match reason {
            BrokenReason::NegativeLength => &mut self.broken_negative_length,
            BrokenReason::TooLarge => &mut self.broken_too_large,
            BrokenReason::Interrupted => &mut self.broken_interrupted,
            BrokenReason::Overrun => &mut self.broken_overrun,
            BrokenReason::OversizeChunk => &mut self.broken_oversize_chunk,
            BrokenReason::Stalled => &mut self.broken_stalled,
            BrokenReason::NoRoom => &mut self.broken_no_room,
            BrokenReason::NotWholeImage => &mut self.broken_not_whole_image,
            BrokenReason::Evicted => &mut self.broken_evicted,
        } += 1;
    }
}

/// An image being collected.
#[derive(Debug)]
struct Partial {
    declared: u64,
    bytes: Vec<u8>,
}

#[derive(Debug)]
struct Peer {
    partial: Option<Partial>,
    last_heard: Timestamp,
    /// Bytes received from the address minus bytes sent to it.
    credit: u64,
    /// The address's reply allowance.
    allowance: Bucket,
    /// Its replies waiting in `deferred`.
    deferred: u32,
}

impl Peer {
    fn new(now: Timestamp, allowance: u32) -> Self {
        Peer {
            partial: None,
            last_heard: now,
            credit: 0,
            allowance: Bucket::full(now, allowance),
            deferred: 0,
        }
    }
}

/// A token bucket of bytes: `rate` per second, at most `rate` held.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
    rate: f64,
}

impl Bucket {
    fn full(now: Timestamp, rate: u32) -> Self {
        Bucket {
            tokens: f64::from(rate),
            at: now,
            rate: f64::from(rate),
        }
    }

    fn refill(&mut self, now: Timestamp) {
        if now > self.at {
            let earned = now.saturating_since(self.at).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + earned).min(self.rate);
            self.at = now;
        }
    }

    /// When the bucket holds `n` tokens (`None`: never, it is too small).
    fn ready_at(&self, n: f64) -> Option<Timestamp> {
        if self.tokens >= n {
            return Some(self.at);
        }
        if n > self.rate {
            return None;
        }
        let wait = (n - self.tokens) / self.rate;
        Some(self.at + Duration::from_micros((wait * 1e6).ceil() as u64))
    }
}

/// One port of the seed format (image or message), serving any number of peers.
#[derive(Debug)]
pub struct SeedReceiver {
    config: SeedConfig,
    peers: HashMap<SocketAddr, Peer>,
    buffered: u64,
    events: VecDeque<SeedEvent>,
    transmits: VecDeque<(SocketAddr, &'static [u8])>,
    /// Replies waiting for the allowance, oldest first.
    deferred: VecDeque<(SocketAddr, &'static [u8])>,
    /// The allowance shared by all addresses.
    allowance: Bucket,
    /// The latest time handed in.
    now: Timestamp,
    /// An image was delivered to this peer while handling its datagram: reply once it is back
    /// in the table.
    image_reply: Option<SocketAddr>,
    stats: SeedStats,
}

impl SeedReceiver {
    /// A receiver with these limits.
    pub fn new(config: SeedConfig) -> Self {
        SeedReceiver {
            peers: HashMap::new(),
            buffered: 0,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            deferred: VecDeque::new(),
            allowance: Bucket::full(Timestamp::ZERO, config.reply_allowance_total),
            now: Timestamp::ZERO,
            image_reply: None,
            stats: SeedStats::default(),
            config,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &SeedStats {
        &self.stats
    }

    /// Bytes held in images being collected.
    pub fn buffered(&self) -> u64 {
        self.buffered
    }

    /// A datagram that arrived on the image port.
    pub fn handle_image(&mut self, peer: SocketAddr, datagram: &[u8], now: Timestamp) {
        if !self.admit(peer, datagram.len(), now) {
            return;
        }
        let mut state = self
            .peers
            .remove(&peer)
            .expect("admitted peers are tracked");
        self.image_datagram(peer, &mut state, datagram);
        self.peers.insert(peer, state);
        if let Some(to) = self.image_reply.take() {
            self.reply(to, IMAGE_REPLY);
        }
    }

    /// A datagram that arrived on the message port: reported as [`SeedEvent::Message`].
    pub fn handle_message(&mut self, peer: SocketAddr, datagram: &[u8], now: Timestamp) {
        if !self.admit(peer, datagram.len(), now) {
            return;
        }
        self.stats.messages += 1;
        self.events.push_back(SeedEvent::Message {
            peer,
            bytes: datagram.to_vec(),
        });
    }

    /// Queues [`MESSAGE_REPLY`] to `peer` (at once, or deferred until the allowance permits:
    /// see the module documentation).
    pub fn acknowledge_message(&mut self, peer: SocketAddr) {
        self.reply(peer, MESSAGE_REPLY);
    }

    /// Counts a message the driver refused; it is not answered.
    pub fn reject_message(&mut self) {
        self.stats.messages_rejected += 1;
    }

    /// Gives up images that have been silent for [`SeedConfig::idle_timeout`], and sends
    /// deferred replies the allowance now permits.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        self.release_deferred();
        let timeout = self.config.idle_timeout;
        let stalled: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.partial.is_some() && now.saturating_since(p.last_heard) >= timeout)
            .map(|(a, _)| *a)
            .collect();
        for addr in stalled {
            let mut state = self.peers.remove(&addr).expect("listed above");
            self.break_image(addr, &mut state, BrokenReason::Stalled);
            self.peers.insert(addr, state);
        }
    }

    /// When [`SeedReceiver::handle_timeout`] next has something to do: an image to give up,
    /// or the oldest deferred reply to send.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let stalled = self
            .peers
            .values()
            .filter(|p| p.partial.is_some())
            .map(|p| p.last_heard + self.config.idle_timeout)
            .min();
        let deferred = self.deferred.front().map(|&(peer, reply)| {
            self.payable_at(peer, reply)
                .unwrap_or(self.now)
                .max(self.now)
        });
        stalled.into_iter().chain(deferred).min()
    }

    /// Replies waiting for the allowance.
    pub fn deferred_replies(&self) -> usize {
        self.deferred.len()
    }

    /// Sends `reply` to `peer` now if its credit pays for it, or if nothing waits ahead of it
    /// and the allowances pay the shortfall; defers it otherwise (room permitting).
    fn reply(&mut self, peer: SocketAddr, reply: &'static [u8]) {
        self.release_deferred();
        let Some(state) = self.peers.get_mut(&peer) else {
            self.stats.replies_limited += 1;
            return;
        };
        // A reply its own bytes pay for costs no allowance and never waits; one that needs
        // the allowance waits behind those already waiting for it.
        let may_try = shortfall(state, reply) == 0 || self.deferred.is_empty();
        if may_try && try_pay(state, &mut self.allowance, reply, self.now, &mut self.stats) {
            self.stats.replies_sent += 1;
            self.transmits.push_back((peer, reply));
            return;
        }
        if state.deferred >= MAX_DEFERRED_PER_PEER || self.deferred.len() >= MAX_DEFERRED {
            self.stats.replies_limited += 1;
            return;
        }
        state.deferred += 1;
        self.stats.replies_deferred += 1;
        self.deferred.push_back((peer, reply));
    }

    /// Sends deferred replies, oldest first, while the allowance pays for them.
    fn release_deferred(&mut self) {
        while let Some(&(peer, reply)) = self.deferred.front() {
            let Some(state) = self.peers.get_mut(&peer) else {
                // The address was forgotten while its reply waited.
                self.deferred.pop_front();
                self.stats.replies_limited += 1;
                continue;
            };
            if !try_pay(state, &mut self.allowance, reply, self.now, &mut self.stats) {
                if self.payable_at(peer, reply).is_none() {
                    // Larger than the buckets: can never be paid.
                    self.deferred.pop_front();
                    self.drop_deferred(peer);
                    continue;
                }
                return;
            }
            self.deferred.pop_front();
            state.deferred = state.deferred.saturating_sub(1);
            self.stats.replies_sent += 1;
            self.transmits.push_back((peer, reply));
        }
    }

    fn drop_deferred(&mut self, peer: SocketAddr) {
        if let Some(state) = self.peers.get_mut(&peer) {
            state.deferred = state.deferred.saturating_sub(1);
        }
        self.stats.replies_limited += 1;
    }

    /// When `reply` to `peer` can be paid (`None`: never).
    fn payable_at(&self, peer: SocketAddr, reply: &[u8]) -> Option<Timestamp> {
        let state = self.peers.get(&peer)?;
        let short = shortfall(state, reply) as f64;
        if short == 0.0 {
            return Some(self.now);
        }
        let own = state.allowance.ready_at(short)?;
        let all = self.allowance.ready_at(short)?;
        Some(own.max(all))
    }

    /// Writes the next reply into `buf` (at least [`MAX_SEED_REPLY_LEN`] bytes) and says where
    /// it goes; `None` when nothing is waiting.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let (destination, reply) = self.transmits.pop_front()?;
        buf[..reply.len()].copy_from_slice(reply);
        Some(Transmit {
            destination,
            len: reply.len(),
        })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SeedEvent> {
        self.events.pop_front()
    }

    /// Counts the datagram and makes sure its peer is tracked; false if there is no room.
    fn admit(&mut self, peer: SocketAddr, len: usize, now: Timestamp) -> bool {
        self.stats.datagrams += 1;
        self.stats.bytes += len as u64;
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.config.max_peers {
            let idle = self
                .peers
                .iter()
                .filter(|(_, p)| p.partial.is_none())
                .min_by_key(|(_, p)| p.last_heard)
                .map(|(a, _)| *a);
            // Then an image that only announced itself, or one that gained nothing for
            // SEED_EVICT_QUIET: the oldest such goes (broken, reported).
            let stale = || {
                self.peers
                    .iter()
                    .filter(|(_, p)| {
                        p.partial.as_ref().is_some_and(|partial| {
                            partial.bytes.is_empty()
                                || now.saturating_since(p.last_heard) >= SEED_EVICT_QUIET
                        })
                    })
                    .min_by_key(|(_, p)| p.last_heard)
                    .map(|(a, _)| *a)
            };
            match idle.or_else(stale) {
                Some(old) => {
                    if let Some(mut state) = self.peers.remove(&old) {
                        self.break_image(old, &mut state, BrokenReason::Evicted);
                    }
                    self.stats.peers_evicted += 1;
                }
                None => {
                    self.stats.peers_refused += 1;
                    return false;
                }
            }
        }
        self.now = self.now.max(now);
        let allowance = self.config.reply_allowance_per_peer;
        let state = self
            .peers
            .entry(peer)
            .or_insert_with(|| Peer::new(now, allowance));
        state.last_heard = now;
        state.credit = state.credit.saturating_add(len as u64);
        // Bytes from a peer whose reply waits may now cover it.
        if !self.deferred.is_empty() {
            self.release_deferred();
        }
        true
    }

    fn image_datagram(&mut self, peer: SocketAddr, state: &mut Peer, d: &[u8]) {
        let Some(partial) = &state.partial else {
            return self.idle_datagram(peer, state, d);
        };
        let missing = partial.declared - partial.bytes.len() as u64;
        let last_chunk = missing == HEADER_LEN as u64
            && (!partial.bytes.starts_with(&[0xFF, 0xD8]) || d.ends_with(&[0xFF, 0xD9]));
        if d.len() == HEADER_LEN && !last_chunk {
            self.break_image(peer, state, BrokenReason::Interrupted);
            return self.idle_datagram(peer, state, d);
        }
        if d.len() > CHUNK_LEN {
            if is_whole_image(d) {
                self.break_image(peer, state, BrokenReason::Interrupted);
                return self.idle_datagram(peer, state, d);
            }
            return self.break_image(peer, state, BrokenReason::OversizeChunk);
        }
        if d.len() as u64 > missing {
            return self.break_image(peer, state, BrokenReason::Overrun);
        }
        if self.buffered + d.len() as u64 > self.config.max_buffered {
            return self.break_image(peer, state, BrokenReason::NoRoom);
        }
        let partial = state.partial.as_mut().expect("checked above");
        if is_jpeg_end(&partial.bytes) && !d.is_empty() {
            return self.break_image(peer, state, BrokenReason::NotWholeImage);
        }
        grow_for(&mut partial.bytes, d.len(), partial.declared);
        partial.bytes.extend_from_slice(d);
        self.buffered += d.len() as u64;
        if partial.bytes.len() as u64 == partial.declared {
            if !is_whole_image(&partial.bytes) {
                return self.break_image(peer, state, BrokenReason::NotWholeImage);
            }
            let done = state.partial.take().expect("checked above");
            self.buffered -= done.declared;
            self.deliver(peer, done.bytes, false);
        }
    }

    fn idle_datagram(&mut self, peer: SocketAddr, state: &mut Peer, d: &[u8]) {
        if d.len() == HEADER_LEN {
            let declared = i64::from_le_bytes(d.try_into().expect("8 bytes"));
            let reason = if declared < 0 {
                BrokenReason::NegativeLength
            } else if declared as u64 > self.config.max_image_len {
                BrokenReason::TooLarge
            } else if declared == 0 {
                return self.deliver(peer, Vec::new(), false);
            } else {
                state.partial = Some(Partial {
                    declared: declared as u64,
                    bytes: Vec::new(),
                });
                return;
            };
            self.stats.count(reason);
            self.events.push_back(SeedEvent::Broken {
                peer,
                reason,
                received: 0,
                declared: Some(declared),
            });
        } else if is_whole_image(d) && d.len() as u64 <= self.config.max_image_len {
            self.stats.images_single_datagram += 1;
            self.deliver(peer, d.to_vec(), true);
        } else {
            self.stats.stray_datagrams += 1;
        }
    }

    fn break_image(&mut self, peer: SocketAddr, state: &mut Peer, reason: BrokenReason) {
        let Some(partial) = state.partial.take() else {
            return;
        };
        let received = partial.bytes.len() as u64;
        self.buffered -= received;
        self.stats.count(reason);
        self.events.push_back(SeedEvent::Broken {
            peer,
            reason,
            received,
            declared: Some(partial.declared as i64),
        });
    }

    fn deliver(&mut self, peer: SocketAddr, bytes: Vec<u8>, single: bool) {
        self.stats.images += 1;
        self.events.push_back(SeedEvent::Image {
            peer,
            bytes,
            single_datagram: single,
        });
        // The peer is out of the table while its datagram is handled: the reply is queued once
        // it is back (see `handle_image`).
        self.image_reply = Some(peer);
    }
}

/// Bytes of `reply` that `state`'s credit does not cover.
fn shortfall(state: &Peer, reply: &[u8]) -> u64 {
    (reply.len() as u64).saturating_sub(state.credit)
}

/// Pays for `reply` from the peer's credit, then its shortfall from both allowances; false
/// (and nothing spent) if either allowance lacks it.
fn try_pay(
    state: &mut Peer,
    total: &mut Bucket,
    reply: &[u8],
    now: Timestamp,
    stats: &mut SeedStats,
) -> bool {
    let short = shortfall(state, reply);
    if short > 0 {
        state.allowance.refill(now);
        total.refill(now);
        let need = short as f64;
        // A hair of tolerance, so the moment `Bucket::ready_at` names does pay.
        if state.allowance.tokens + 1e-9 < need || total.tokens + 1e-9 < need {
            return false;
        }
        state.allowance.tokens = (state.allowance.tokens - need).max(0.0);
        total.tokens = (total.tokens - need).max(0.0);
        stats.allowance_bytes += short;
    }
    state.credit -= reply.len() as u64 - short;
    true
}

/// Whether `bytes` is a JPEG that has reached its EOI marker.
fn is_jpeg_end(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes.starts_with(&[0xFF, 0xD8]) && bytes.ends_with(&[0xFF, 0xD9])
}

/// Makes room for `more` bytes in `buf`, doubling but never past `declared`, so a header's
/// claim is never allocated before the bytes arrive.
fn grow_for(buf: &mut Vec<u8>, more: usize, declared: u64) {
    let need = buf.len() + more;
    if need <= buf.capacity() {
        return;
    }
    let target = (buf.capacity() * 2)
        .max(need)
        .max(64 << 10)
        .min(declared as usize);
    buf.reserve_exact(target - buf.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next reply, copied out of the lent buffer.
    fn next(rx: &mut SeedReceiver) -> Option<(SocketAddr, Vec<u8>)> {
        let mut buf = [0; MAX_SEED_REPLY_LEN];
        let t = rx.poll_transmit(&mut buf)?;
        Some((t.destination, t.bytes(&buf).to_vec()))
    }

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A JPEG-like image: SOI, bytes without 0xFF, EOI.
    fn image(len: usize, seed: u8) -> Vec<u8> {
        let mut v: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(seed) % 0xFF)
            .collect();
        v[..2].copy_from_slice(&[0xFF, 0xD8]);
        v[len - 2..].copy_from_slice(&[0xFF, 0xD9]);
        v
    }

    fn send(rx: &mut SeedReceiver, from: SocketAddr, img: &[u8], skip: Option<usize>) {
        rx.handle_image(from, &header(img.len()), Timestamp::ZERO);
        for (i, c) in chunks(img).enumerate() {
            if Some(i) != skip {
                rx.handle_image(from, c, Timestamp::ZERO);
            }
        }
    }

    fn events(rx: &mut SeedReceiver) -> Vec<SeedEvent> {
        std::iter::from_fn(|| rx.poll_event()).collect()
    }

    #[test]
    fn header_is_python_struct_pack_l() {
        // struct.pack('l', 80053) on 64-bit Linux
        assert_eq!(header(80053), [0xB5, 0x38, 0x01, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn chunked_images_arrive_whole_and_are_answered() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        let a = image(80_053, 3);
        let b = image(1024 * 3, 5);
        send(&mut rx, peer(1), &a, None);
        send(&mut rx, peer(1), &b, None);
        let ev = events(&mut rx);
        assert_eq!(ev.len(), 2);
        assert!(matches!(&ev[0], SeedEvent::Image { bytes, .. } if *bytes == a));
        assert!(matches!(&ev[1], SeedEvent::Image { bytes, .. } if *bytes == b));
        assert_eq!(next(&mut rx), Some((peer(1), IMAGE_REPLY.to_vec())));
        assert_eq!(next(&mut rx), Some((peer(1), IMAGE_REPLY.to_vec())));
        assert_eq!(rx.buffered(), 0);
    }

    #[test]
    fn whole_image_in_one_datagram() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        let a = image(30_000, 7);
        rx.handle_image(peer(1), &a, Timestamp::ZERO);
        assert_eq!(
            events(&mut rx),
            vec![SeedEvent::Image {
                peer: peer(1),
                bytes: a,
                single_datagram: true
            }]
        );
        assert_eq!(rx.stats().images_single_datagram, 1);
    }

    #[test]
    fn a_lost_chunk_breaks_one_image_and_the_next_arrives() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        let a = image(10_000, 3);
        let b = image(5_000, 9);
        send(&mut rx, peer(1), &a, Some(4));
        send(&mut rx, peer(1), &b, None);
        let ev = events(&mut rx);
        assert!(matches!(
            ev[0],
            SeedEvent::Broken {
                reason: BrokenReason::Interrupted,
                received: 8976,
                ..
            }
        ));
        assert!(matches!(&ev[1], SeedEvent::Image { bytes, .. } if *bytes == b));
        assert_eq!(rx.stats().broken(), 1);
        assert_eq!(rx.buffered(), 0);
    }

    #[test]
    fn last_chunk_of_eight_bytes_is_not_mistaken_for_a_header() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        let a = image(1024 + 8, 3);
        send(&mut rx, peer(1), &a, None);
        assert!(matches!(&events(&mut rx)[..], [SeedEvent::Image { bytes, .. }] if *bytes == a));
    }

    #[test]
    fn a_lost_last_chunk_of_eight_bytes_does_not_swallow_the_next_header() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        let a = image(1024 + 8, 3);
        let b = image(3000, 5);
        send(&mut rx, peer(1), &a, Some(1));
        send(&mut rx, peer(1), &b, None);
        let ev = events(&mut rx);
        assert!(matches!(
            ev[0],
            SeedEvent::Broken {
                reason: BrokenReason::Interrupted,
                ..
            }
        ));
        assert!(matches!(&ev[1], SeedEvent::Image { bytes, .. } if *bytes == b));
    }

    #[test]
    fn bogus_lengths_allocate_nothing() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        rx.handle_image(peer(1), &(-5i64).to_le_bytes(), Timestamp::ZERO);
        rx.handle_image(peer(1), &i64::MAX.to_le_bytes(), Timestamp::ZERO);
        rx.handle_image(peer(1), &[1; 1024], Timestamp::ZERO);
        let s = rx.stats();
        assert_eq!(
            (
                s.broken_negative_length,
                s.broken_too_large,
                s.stray_datagrams
            ),
            (1, 1, 1)
        );
        assert_eq!(rx.buffered(), 0);
        assert!(next(&mut rx).is_none());
    }

    #[test]
    fn a_large_declared_length_is_not_allocated_up_front() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        rx.handle_image(peer(1), &header(60 << 20), Timestamp::ZERO);
        rx.handle_image(peer(1), &[0; 1024], Timestamp::ZERO);
        let cap = rx.peers[&peer(1)]
            .partial
            .as_ref()
            .unwrap()
            .bytes
            .capacity();
        assert!(cap <= 64 << 10, "reserved {cap} bytes for 1 KiB received");
    }

    #[test]
    fn extra_bytes_break_the_image_and_the_receiver_resynchronises() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        rx.handle_image(peer(1), &header(1500), Timestamp::ZERO);
        rx.handle_image(peer(1), &[0; 1024], Timestamp::ZERO);
        rx.handle_image(peer(1), &[0; 1000], Timestamp::ZERO);
        let b = image(2000, 3);
        send(&mut rx, peer(1), &b, None);
        let ev = events(&mut rx);
        assert!(matches!(
            ev[0],
            SeedEvent::Broken {
                reason: BrokenReason::Overrun,
                ..
            }
        ));
        assert!(matches!(&ev[1], SeedEvent::Image { bytes, .. } if *bytes == b));
    }

    #[test]
    fn a_jpeg_that_ends_without_eoi_is_not_delivered() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        let a = image(3072, 3);
        // The last chunk lost, chunk 1 duplicated: the declared length is reached, but not
        // at the EOI marker. (A middle chunk lost and another duplicated would end at the
        // EOI and go undetected: the format has no checksum.)
        rx.handle_image(peer(1), &header(a.len()), Timestamp::ZERO);
        for c in [&a[..1024], &a[1024..2048], &a[1024..2048]] {
            rx.handle_image(peer(1), c, Timestamp::ZERO);
        }
        assert_eq!(rx.stats().broken_not_whole_image, 1);
        assert!(events(&mut rx)
            .iter()
            .all(|e| !matches!(e, SeedEvent::Image { .. })));
    }

    #[test]
    fn silence_breaks_a_partial_image() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        rx.handle_image(peer(1), &header(5000), Timestamp::ZERO);
        rx.handle_image(peer(1), &[0; 1024], Timestamp::ZERO);
        let due = rx.poll_timeout().unwrap();
        assert_eq!(due, Timestamp::ZERO + Duration::from_secs(2));
        rx.handle_timeout(due);
        assert_eq!(rx.stats().broken_stalled, 1);
        assert_eq!(rx.buffered(), 0);
        assert!(rx.poll_timeout().is_none());
    }

    #[test]
    fn total_buffering_is_capped() {
        let mut rx = SeedReceiver::new(SeedConfig {
            max_buffered: 3000,
            ..SeedConfig::default()
        });
        for p in 1..=3 {
            rx.handle_image(peer(p), &header(10_000), Timestamp::ZERO);
            rx.handle_image(peer(p), &[0; 1024], Timestamp::ZERO);
        }
        assert_eq!(rx.stats().broken_no_room, 1);
        assert!(rx.buffered() <= 3000);
    }

    /// Issue 11: 256 addresses each announcing an image (an 8-byte header, nothing after) held
    /// every place until they stalled, and re-announcing kept them: a real sender was refused.
    #[test]
    fn announced_images_do_not_lock_out_a_real_sender() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        let mut now = Timestamp::ZERO;
        let image = {
            let mut j = vec![0xFF, 0xD8];
            j.extend(std::iter::repeat_n(7u8, 3000));
            j.extend([0xFF, 0xD9]);
            j
        };
        for round in 0..3 {
            for p in 10..10 + 256u16 {
                rx.handle_image(peer(p), &header(1 << 20), now);
            }
            // The real sender, in the middle of the announcing.
            rx.handle_image(peer(1), &header(image.len()), now);
            for c in chunks(&image) {
                rx.handle_image(peer(1), c, now);
            }
            now = now + Duration::from_millis(500);
            rx.handle_timeout(now);
            let got = std::iter::from_fn(|| rx.poll_event())
                .filter(|e| matches!(e, SeedEvent::Image { peer: p, .. } if *p == peer(1)))
                .count();
            assert_eq!(got, 1, "round {round}: the real sender was locked out");
        }
        assert_eq!(rx.stats().peers_refused, 0);
        assert!(rx.stats().broken_evicted > 0);
    }

    #[test]
    fn peers_are_bounded() {
        let mut rx = SeedReceiver::new(SeedConfig {
            max_peers: 2,
            ..SeedConfig::default()
        });
        // Two images under way (a chunk each): a third sender is refused while they progress.
        for p in 1..=2 {
            rx.handle_image(peer(p), &header(5000), Timestamp::ZERO);
            rx.handle_image(peer(p), &[0; 1024], Timestamp::ZERO);
        }
        rx.handle_image(peer(3), &header(5000), Timestamp::ZERO);
        assert_eq!(rx.stats().peers_refused, 1);
        rx.handle_timeout(Timestamp::from_millis(3000));
        rx.handle_image(peer(3), &header(5000), Timestamp::from_millis(3000));
        assert_eq!(rx.stats().peers_evicted, 1);
        assert!(rx.peers.len() <= 2);
    }

    #[test]
    fn short_datagrams_from_a_new_address_are_answered() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        // `[1]`: 3 bytes in, the 11-byte reply is paid 3 from its bytes, 8 from the allowance.
        rx.handle_message(peer(2), b"[1]", Timestamp::ZERO);
        rx.acknowledge_message(peer(2));
        assert_eq!(next(&mut rx), Some((peer(2), MESSAGE_REPLY.to_vec())));
        // An empty image: 8 bytes in, 14 out.
        rx.handle_image(peer(1), &header(0), Timestamp::ZERO);
        assert_eq!(next(&mut rx), Some((peer(1), IMAGE_REPLY.to_vec())));
        assert_eq!(rx.stats().allowance_bytes, 8 + 6);
        // A message longer than the reply is paid by its own bytes: no allowance spent.
        rx.handle_message(peer(3), b"[1,2,3,4,5]", Timestamp::ZERO);
        rx.acknowledge_message(peer(3));
        assert_eq!(next(&mut rx), Some((peer(3), MESSAGE_REPLY.to_vec())));
        assert_eq!(rx.stats().allowance_bytes, 14);
        assert_eq!(
            (rx.stats().replies_sent, rx.stats().replies_limited),
            (3, 0)
        );
    }

    /// Replies sent so far, in bytes.
    fn drain(rx: &mut SeedReceiver) -> u64 {
        std::iter::from_fn(|| next(rx))
            .map(|(_, r)| r.len() as u64)
            .sum()
    }

    #[test]
    fn a_stop_and_wait_client_of_tiny_messages_is_always_answered() {
        // The original client sends, then blocks until the reply: 2,000 `1`s in a row (1 byte
        // each, 10 short) outrun its 512-byte allowance after about 50, then wait for it.
        let mut rx = SeedReceiver::new(SeedConfig::default());
        let mut now = Timestamp::ZERO;
        for i in 0..2000 {
            rx.handle_message(peer(9), b"1", now);
            rx.acknowledge_message(peer(9));
            let mut got = next(&mut rx);
            while got.is_none() {
                let t = rx.poll_timeout().expect("a deferred reply has a time");
                assert!(t > now, "message {i}: no progress at {now:?}");
                now = t;
                rx.handle_timeout(now);
                got = next(&mut rx);
            }
            assert_eq!(got, Some((peer(9), MESSAGE_REPLY.to_vec())), "message {i}");
        }
        let s = rx.stats();
        assert_eq!((s.replies_sent, s.replies_limited), (2000, 0));
        assert!(s.replies_deferred > 1900, "{}", s.replies_deferred);
        // It ran at the allowance: 10 bytes per reply at 512 bytes/s, after the first 512.
        let secs = now.as_micros() as f64 / 1e6;
        let expected = (2000.0 * 10.0 - 512.0) / 512.0;
        assert!(
            (secs - expected).abs() < 0.5,
            "{secs} s, expected {expected}"
        );
    }

    #[test]
    fn a_burst_from_one_address_waits_within_bounds() {
        let mut rx = SeedReceiver::new(SeedConfig::default());
        for _ in 0..100 {
            rx.handle_message(peer(4), b"[1]", Timestamp::ZERO);
            rx.acknowledge_message(peer(4));
        }
        // 512 / 8 = 64 at once on the allowance, then later messages' own bytes pay for a
        // few more; 4 wait, the rest are dropped.
        let first = drain(&mut rx);
        assert!(first >= 64 * 11, "{first}");
        assert!(first <= 300 + 512, "{first}");
        assert_eq!(rx.deferred_replies(), 4);
        let s = rx.stats().clone();
        assert_eq!(s.replies_sent + s.replies_limited + 4, 100);
        rx.handle_timeout(Timestamp::from_millis(1000));
        assert_eq!(drain(&mut rx), 4 * 11);
        assert_eq!(rx.deferred_replies(), 0);
        assert_eq!(rx.poll_timeout(), None);
    }

    #[test]
    fn a_spoofed_flood_gets_back_at_most_the_documented_bound() {
        // 50,000 "addresses" (the table holds 256: the rest evict each other) sending one-byte
        // messages, or empty-image headers, 5 a millisecond for 10 s of injected time:
        // every reply needs the allowance, which is far too small for them all.
        let config = SeedConfig::default();
        for image_port in [false, true] {
            let mut rx = SeedReceiver::new(config.clone());
            let (mut received, mut replied) = (0u64, 0u64);
            for step in 0..10_000u64 {
                let now = Timestamp::from_millis(step);
                for k in 0..5u64 {
                    let n = step * 5 + k;
                    let from = SocketAddr::from((
                        [10, (n >> 16) as u8 % 4, (n >> 8) as u8, n as u8],
                        1000 + (n % 5) as u16,
                    ));
                    if image_port {
                        rx.handle_image(from, &header(0), now);
                        received += 8;
                    } else {
                        rx.handle_message(from, b"1", now);
                        rx.acknowledge_message(from);
                        received += 1;
                    }
                }
                rx.handle_timeout(now);
                while rx.poll_event().is_some() {}
                replied += drain(&mut rx);
                let elapsed = now.saturating_since(Timestamp::ZERO);
                assert!(
                    replied <= config.reply_bound(received, elapsed),
                    "at {elapsed:?}: {replied} bytes out for {received} in"
                );
            }
            // Bytes beyond what their senders sent: the shared 8 KiB/s (and its first 8 KiB),
            // used up by the flood, and not more.
            let s = rx.stats();
            let beyond = s.allowance_bytes as f64;
            assert!(beyond <= 8192.0 * 11.0, "{beyond}");
            assert!(beyond >= 8192.0 * 9.0, "{beyond}");
            // Per second: what came in, plus at most 8 KiB (and the first second's burst).
            let (in_rate, out_rate) = (received as f64 / 10.0, replied as f64 / 10.0);
            assert!(
                out_rate <= in_rate + 8192.0 * 1.1,
                "{out_rate} B/s out, {in_rate} in"
            );
            assert!(s.replies_limited > 10_000);
            assert!(rx.deferred_replies() <= MAX_DEFERRED);
        }
    }
}
