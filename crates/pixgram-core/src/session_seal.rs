//! Session keys (docs/PROTOCOL.md §8.3): after the first exchange every datagram but HELLO and
//! CHALLENGE is sealed under keys derived from the pre-shared key, the sender's salt and the
//! token the receiver issued, one key per direction. The token is new for every exchange and
//! bound to the receiver's own secret, so nothing recorded before an exchange authenticates
//! after it: not at a receiver that restarted, not at another receiver with the same key.
//!
//! ```text
//! 0      2   3   4                       20                  28              len-16    len
//! | "PG" | 2 | 17 | sender's salt (16)   | packet number u64 | ciphertext ... | tag (16) |
//! ```
//!
//! The key of packet number `pn` is generation `pn >> 23`: a new key every
//! [`crate::seal::REKEY_AFTER`] packets (AES-GCM's limit per key, RFC 9001 §6.6),
//! derived by both ends from the same secret, with no exchange.

use std::collections::HashMap;
use std::ops::Range;

use aws_lc_rs::aead::{Aad, LessSafeKey, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf;

use crate::ids::SessionId;
use crate::seal::{
    nonce, seal_in_place, OpenError, Psk, ReplayWindow, REKEY_AFTER, SEALED_HEADER_LEN, TAG_LEN,
};
use crate::wire::{self, Token};

/// Datagram type of a datagram sealed under a session key.
pub const SESSION_SEALED_TYPE: u8 = 17;
/// Sessions whose keys a receiver holds at once (least recently used go first). Keys are
/// installed only for a HELLO that authenticated under the pre-shared key and carried a valid
/// token, so only holders of the key can fill this.
pub const MAX_SESSIONS: usize = 1024;
const INFO: &[u8] = b"pixgram v2 session key";

/// Which way a key seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sender to receiver (DATA, CLOSE, PING).
    ToReceiver = 0,
    /// Receiver to sender (ACK, NACK, PONG).
    ToSender = 1,
}

/// The keys of one direction of one session, one generation at a time.
struct DirectionKeys {
    prk: hkdf::Prk,
    direction: Direction,
    generation: u64,
    key: LessSafeKey,
}

fn expand(prk: &hkdf::Prk, direction: Direction, generation: u64) -> LessSafeKey {
    let dir = [direction as u8];
    let generation = generation.to_be_bytes();
    let info = [INFO, &dir, &generation];
    let okm = prk
        .expand(&info, &AES_256_GCM)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    LessSafeKey::new(UnboundKey::from(okm))
}

impl DirectionKeys {
    fn new(psk: &Psk, salt: &[u8; 16], token: &Token, direction: Direction) -> Self {
        let mut ikm_salt = [0u8; 16 + wire::TOKEN_LEN];
        ikm_salt[..16].copy_from_slice(salt);
        ikm_salt[16..].copy_from_slice(token);
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &ikm_salt).extract(psk.bytes());
        let key = expand(&prk, direction, 0);
        DirectionKeys {
            prk,
            direction,
            generation: 0,
            key,
        }
    }

    /// Runs `f` with the key of packet number `pn`'s generation (moving to a newer one as it
    /// comes; an older one is derived for the occasion).
    fn with_key<T>(&mut self, pn: u64, f: impl FnOnce(&LessSafeKey) -> T) -> T {
        let generation = pn / REKEY_AFTER;
        if generation > self.generation {
            self.key = expand(&self.prk, self.direction, generation);
            self.generation = generation;
        }
        if generation == self.generation {
            f(&self.key)
        } else {
            f(&expand(&self.prk, self.direction, generation))
        }
    }
}

/// Seals one direction of a session.
pub struct SessionSealer {
    salt: [u8; 16],
    keys: DirectionKeys,
    next: u64,
}

impl std::fmt::Debug for SessionSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSealer")
            .field("next", &self.next)
            .finish()
    }
}

impl SessionSealer {
    /// The sealer of `direction` for the session of the sender whose salt is `salt`,
    /// validated with `token`.
    pub fn new(psk: &Psk, salt: [u8; 16], token: &Token, direction: Direction) -> Self {
        SessionSealer {
            keys: DirectionKeys::new(psk, &salt, token, direction),
            salt,
            next: 0,
        }
    }

    /// Seals `inner` into `out` (at least `inner.len()` + 44 bytes); returns the length.
    pub fn seal(&mut self, inner: &[u8], out: &mut [u8]) -> usize {
        out[SEALED_HEADER_LEN..SEALED_HEADER_LEN + inner.len()].copy_from_slice(inner);
        self.seal_in_place(out, inner.len())
    }

    /// Seals the `inner_len`-byte inner datagram already written at `buf[SEALED_HEADER_LEN..]` where it
    /// lies (no copy); `buf` must hold `inner_len` + 44 bytes. Returns the sealed length.
    pub fn seal_in_place(&mut self, buf: &mut [u8], inner_len: usize) -> usize {
        let packet = self.next;
        self.next += 1;
        let (keys, salt) = (&mut self.keys, &self.salt);
        seal_in_place(
            buf,
            inner_len,
            SESSION_SEALED_TYPE,
            salt,
            packet,
            |head, body| {
                keys.with_key(packet, |key| {
                    key.seal_in_place_separate_tag(nonce(packet), Aad::from(head), body)
                })
            },
        )
    }
}

/// Opens one direction of a session, with its replay window.
pub struct SessionOpener {
    keys: DirectionKeys,
    window: Option<ReplayWindow>,
}

impl std::fmt::Debug for SessionOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionOpener(..)")
    }
}

/// The salt a session-sealed datagram names, if `d` is one.
pub fn session_salt(d: &[u8]) -> Option<[u8; 16]> {
    if d.len() < SEALED_HEADER_LEN + TAG_LEN
        || d[0..2] != wire::MAGIC
        || d[2] != wire::VERSION
        || d[3] != SESSION_SEALED_TYPE
    {
        return None;
    }
    d[4..20].try_into().ok()
}

impl SessionOpener {
    /// The opener of `direction` for the session of the sender whose salt is `salt`,
    /// validated with `token`.
    pub fn new(psk: &Psk, salt: [u8; 16], token: &Token, direction: Direction) -> Self {
        SessionOpener {
            keys: DirectionKeys::new(psk, &salt, token, direction),
            window: None,
        }
    }

    /// Checks and decrypts the session-sealed datagram `d` in place; returns where the inner
    /// datagram is.
    pub fn open(&mut self, d: &mut [u8]) -> Result<Range<usize>, OpenError> {
        if session_salt(d).is_none() {
            return Err(OpenError::NotSealed);
        }
        let packet = u64::from_be_bytes(d[20..28].try_into().expect("8 bytes"));
        if self.window.as_ref().is_some_and(|w| !w.fresh(packet)) {
            return Err(OpenError::Replayed);
        }
        let (head, body) = d.split_at_mut(SEALED_HEADER_LEN);
        let inner_len = body.len() - TAG_LEN;
        self.keys
            .with_key(packet, |key| {
                key.open_in_place(nonce(packet), Aad::from(&head[..]), body)
                    .map(|_| ())
            })
            .map_err(|_| OpenError::BadTag)?;
        match &mut self.window {
            Some(w) => w.mark(packet),
            None => self.window = Some(ReplayWindow::new(packet)),
        }
        Ok(SEALED_HEADER_LEN..SEALED_HEADER_LEN + inner_len)
    }
}

struct Entry {
    token: Token,
    opener: SessionOpener,
    sealer: SessionSealer,
    last_used: u64,
}

/// A receiver's session keys: installed when a HELLO with a valid token arrives, found by the
/// sender's salt for what arrives and by session id for what is sent.
pub struct SessionTable {
    psk: Psk,
    entries: HashMap<[u8; 16], Entry>,
    by_session: HashMap<SessionId, [u8; 16]>,
    clock: u64,
}

impl std::fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTable")
            .field("sessions", &self.entries.len())
            .finish()
    }
}

impl SessionTable {
    /// An empty table for `psk`.
    pub fn new(psk: &Psk) -> Self {
        SessionTable {
            psk: psk.clone(),
            entries: HashMap::new(),
            by_session: HashMap::new(),
            clock: 0,
        }
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Installs the keys of `session`, whose sender seals with `salt`, validated with `token`.
    /// The same (salt, token) again keeps its keys and replay window (a replayed HELLO opens
    /// nothing new); a new token replaces them (the sender moved, or was validated again).
    pub fn install(&mut self, salt: [u8; 16], session: SessionId, token: &Token) {
        self.clock += 1;
        self.by_session.insert(session, salt);
        if let Some(e) = self.entries.get_mut(&salt) {
            e.last_used = self.clock;
            if e.token == *token {
                return;
            }
        }
        if !self.entries.contains_key(&salt) && self.entries.len() >= MAX_SESSIONS {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(s, _)| *s)
            {
                self.entries.remove(&oldest);
                self.by_session.retain(|_, s| *s != oldest);
            }
        }
        let entry = Entry {
            token: *token,
            opener: SessionOpener::new(&self.psk, salt, token, Direction::ToReceiver),
            sealer: SessionSealer::new(&self.psk, salt, token, Direction::ToSender),
            last_used: self.clock,
        };
        self.entries.insert(salt, entry);
    }

    /// Opens a session-sealed datagram from a sender; [`OpenError::NotSealed`] if no session
    /// with its salt is held.
    pub fn open(&mut self, d: &mut [u8]) -> Result<Range<usize>, OpenError> {
        let salt = session_salt(d).ok_or(OpenError::NotSealed)?;
        self.clock += 1;
        let clock = self.clock;
        let e = self.entries.get_mut(&salt).ok_or(OpenError::NoSessionKey)?;
        let range = e.opener.open(d)?;
        e.last_used = clock;
        Ok(range)
    }

    /// Seals `inner`, a reply to `session`, into `out`; `None` if no keys for it are held.
    pub fn seal(&mut self, session: SessionId, inner: &[u8], out: &mut [u8]) -> Option<usize> {
        let salt = self.by_session.get(&session)?;
        let e = self.entries.get_mut(salt)?;
        Some(e.sealer.seal(inner, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn psk() -> Psk {
        Psk::from_bytes([4; 32])
    }

    #[test]
    fn both_ends_derive_the_same_keys_and_a_new_token_opens_nothing_old() {
        let (salt, token) = ([1; 16], [2; 32]);
        let mut table = SessionTable::new(&psk());
        table.install(salt, SessionId(9), &token);
        let mut sealer = SessionSealer::new(&psk(), salt, &token, Direction::ToReceiver);
        let mut opener = SessionOpener::new(&psk(), salt, &token, Direction::ToSender);
        let mut out = [0u8; 128];
        let n = sealer.seal(b"PG data", &mut out);
        let recorded = out[..n].to_vec();
        let r = table.open(&mut out[..n]).unwrap();
        assert_eq!(&out[r], b"PG data");
        assert_eq!(
            table.open(&mut recorded.clone()),
            Err(OpenError::Replayed),
            "replayed in the session"
        );
        let n = table.seal(SessionId(9), b"PG ack", &mut out).unwrap();
        let r = opener.open(&mut out[..n]).unwrap();
        assert_eq!(&out[r], b"PG ack");
        // The same salt validated with another token (a restarted receiver's): the recording
        // does not authenticate.
        let mut restarted = SessionTable::new(&psk());
        restarted.install(salt, SessionId(9), &[3; 32]);
        assert_eq!(
            restarted.open(&mut recorded.clone()),
            Err(OpenError::BadTag)
        );
        // No session with that salt at all.
        assert_eq!(
            SessionTable::new(&psk()).open(&mut recorded.clone()),
            Err(OpenError::NoSessionKey)
        );
        // A replayed HELLO (same salt, same token) keeps the replay window.
        table.install(salt, SessionId(9), &token);
        assert_eq!(table.open(&mut recorded.clone()), Err(OpenError::Replayed));
    }

    #[test]
    fn keys_change_every_generation_and_both_ends_follow() {
        let (salt, token) = ([5; 16], [6; 32]);
        let mut sealer = SessionSealer::new(&psk(), salt, &token, Direction::ToReceiver);
        let mut table = SessionTable::new(&psk());
        table.install(salt, SessionId(1), &token);
        let mut out = [0u8; 128];
        sealer.next = REKEY_AFTER - 1;
        let n = sealer.seal(b"PG last of 0", &mut out);
        let old = out[..n].to_vec();
        let n = sealer.seal(b"PG first of 1", &mut out);
        assert!(table.open(&mut out[..n]).is_ok());
        // A late packet of the previous generation still opens (its key is derived again).
        assert!(table.open(&mut old.clone()).is_ok());
        // A packet number edited in transit does not open.
        let mut forged = old.clone();
        forged[20..28].copy_from_slice(&(REKEY_AFTER + 1).to_be_bytes());
        assert_eq!(table.open(&mut forged), Err(OpenError::BadTag));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut table = SessionTable::new(&psk());
        for i in 0..MAX_SESSIONS as u32 + 5 {
            let mut salt = [0u8; 16];
            salt[..4].copy_from_slice(&i.to_be_bytes());
            table.install(salt, SessionId(i), &[1; 32]);
        }
        assert_eq!(table.len(), MAX_SESSIONS);
    }
}
