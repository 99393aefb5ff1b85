//! Sealing what a keyed socket sends and opening what it receives (docs/PROTOCOL.md §7, §8.3):
//! HELLO and CHALLENGE under each endpoint's salt key; everything else under the session keys
//! the first exchange derives from the receiver's token. Nothing else is accepted, so nothing
//! recorded before an exchange authenticates after it.

use pixgram_core::seal::{
    OpenError, OpenStats, Opener, Psk, Sealer, SEALED_HEADER_LEN, SEAL_OVERHEAD,
};
use pixgram_core::session_seal::{
    session_salt, Direction, SessionOpener, SessionSealer, SessionTable,
};
use pixgram_core::wire::{self, Datagram, DatagramType, Token};
use pixgram_core::SessionId;

use crate::error::DriverError;
use crate::security::fresh_salt;

/// The type byte of an inner datagram.
fn inner_type(inner: &[u8]) -> Option<u8> {
    inner.get(3).copied()
}

/// A sender's envelope: HELLOs under its salt key; once a HELLO carries a token, everything
/// else under that token's session keys.
#[derive(Debug)]
pub struct SenderEnvelope {
    psk: Psk,
    salt: [u8; 16],
    sealer: Sealer,
    opener: Opener,
    session: Option<(Token, SessionSealer, SessionOpener)>,
    refused: OpenStats,
    buf: Vec<u8>,
}

impl SenderEnvelope {
    /// An envelope for `psk` with a fresh random salt.
    pub fn new(psk: &Psk) -> Result<Self, DriverError> {
        let salt = fresh_salt()?;
        Ok(SenderEnvelope {
            psk: psk.clone(),
            salt,
            sealer: Sealer::new(psk, salt),
            opener: Opener::new(psk),
            session: None,
            refused: OpenStats::default(),
            buf: vec![0; 65_536 + SEAL_OVERHEAD],
        })
    }

    /// `inner`, sealed; `None` for a datagram that would need session keys before the first
    /// exchange gave any (the core sends none).
    pub fn seal(&mut self, inner: &[u8]) -> Option<&[u8]> {
        let mut buf = std::mem::take(&mut self.buf);
        let n = self.seal_into(inner, &mut buf);
        self.buf = buf;
        Some(&self.buf[..n?])
    }

    /// Like [`SenderEnvelope::seal`], into `out` (at least `inner.len() + SEAL_OVERHEAD`
    /// bytes); the sealed length.
    pub fn seal_into(&mut self, inner: &[u8], out: &mut [u8]) -> Option<usize> {
        out[SEALED_HEADER_LEN..SEALED_HEADER_LEN + inner.len()].copy_from_slice(inner);
        self.seal_in_place(out, inner.len())
    }

    /// Seals the `inner_len`-byte datagram the core wrote at `buf[SEALED_HEADER_LEN..]` where
    /// it lies (`buf`, e.g. a slot of a send batch, holds `inner_len + SEAL_OVERHEAD` bytes):
    /// the sealed length, or `None` as for [`SenderEnvelope::seal`].
    pub fn seal_in_place(&mut self, buf: &mut [u8], inner_len: usize) -> Option<usize> {
        let inner = &buf[SEALED_HEADER_LEN..SEALED_HEADER_LEN + inner_len];
        if inner_type(inner) == Some(DatagramType::Hello as u8) {
            if let Ok(Datagram::Hello(h)) = wire::parse(inner) {
                if let Some(token) = h.token {
                    if self.session.as_ref().is_none_or(|(t, ..)| *t != token) {
                        // A new token: the session keys from now on are this token's.
                        self.session = Some((
                            token,
                            SessionSealer::new(&self.psk, self.salt, &token, Direction::ToReceiver),
                            SessionOpener::new(&self.psk, self.salt, &token, Direction::ToSender),
                        ));
                    }
                }
            }
            return Some(self.sealer.seal_in_place(buf, inner_len));
        }
        let (_, sealer, _) = self.session.as_mut()?;
        Some(sealer.seal_in_place(buf, inner_len))
    }

    /// The inner datagram, or `None` if `datagram` does not authenticate or is not allowed
    /// under its key (counted, and dropped unanswered).
    pub fn open<'a>(&mut self, datagram: &'a mut [u8]) -> Option<&'a [u8]> {
        if session_salt(datagram).is_none() {
            let inner = self.opener.open(datagram).ok()?;
            if inner_type(inner) != Some(DatagramType::Challenge as u8) {
                self.refused.count(OpenError::NotSessionSealed);
                return None;
            }
            return Some(inner);
        }
        let opened = match self.session.as_mut() {
            Some((_, _, opener)) if session_salt(datagram) == Some(self.salt) => {
                opener.open(datagram)
            }
            _ => Err(OpenError::NoSessionKey),
        };
        match opened {
            Ok(r) => {
                self.refused.opened += 1;
                Some(&datagram[r])
            }
            Err(e) => {
                self.refused.count(e);
                None
            }
        }
    }

    /// What was opened and refused.
    pub fn stats(&self) -> OpenStats {
        merged(self.opener.stats(), &self.refused)
    }
}

/// A receiver's envelope: CHALLENGEs under its salt key; HELLOs opened under the senders' salt
/// keys, and a HELLO whose token the receiver takes installs that session's keys; everything
/// else only under session keys.
#[derive(Debug)]
pub struct ReceiverEnvelope {
    sealer: Sealer,
    opener: Opener,
    sessions: SessionTable,
    refused: OpenStats,
    buf: Vec<u8>,
}

impl ReceiverEnvelope {
    /// An envelope for `psk` with a fresh random salt.
    pub fn new(psk: &Psk) -> Result<Self, DriverError> {
        Ok(ReceiverEnvelope {
            sealer: Sealer::new(psk, fresh_salt()?),
            opener: Opener::new(psk),
            sessions: SessionTable::new(psk),
            refused: OpenStats::default(),
            buf: vec![0; 65_536 + SEAL_OVERHEAD],
        })
    }

    /// The inner datagram, or `None` (counted, dropped unanswered). `valid_token` says
    /// whether the core takes a HELLO's token (then the session's keys are installed).
    pub fn open<'a>(
        &mut self,
        datagram: &'a mut [u8],
        valid_token: impl FnOnce(SessionId, &Token) -> bool,
    ) -> Option<&'a [u8]> {
        if session_salt(datagram).is_some() {
            return match self.sessions.open(datagram) {
                Ok(r) => {
                    self.refused.opened += 1;
                    Some(&datagram[r])
                }
                Err(e) => {
                    self.refused.count(e);
                    None
                }
            };
        }
        let salt: Option<[u8; 16]> = datagram.get(4..20).and_then(|s| s.try_into().ok());
        let inner = self.opener.open(datagram).ok()?;
        let Ok(Datagram::Hello(h)) = wire::parse(inner) else {
            self.refused.count(OpenError::NotSessionSealed);
            return None;
        };
        if let (Some(token), Some(salt)) = (h.token, salt) {
            if valid_token(h.session, &token) {
                self.sessions.install(salt, h.session, &token);
            }
        }
        Some(inner)
    }

    /// `inner`, a reply, sealed: a CHALLENGE under this receiver's salt key, anything else
    /// under its session's key (`None` if the receiver holds none for it).
    pub fn seal(&mut self, inner: &[u8]) -> Option<&[u8]> {
        if inner_type(inner) == Some(DatagramType::Challenge as u8) {
            let n = self.sealer.seal(inner, &mut self.buf);
            return Some(&self.buf[..n]);
        }
        let session = SessionId(u32::from_be_bytes(inner.get(4..8)?.try_into().ok()?));
        let n = self.sessions.seal(session, inner, &mut self.buf)?;
        Some(&self.buf[..n])
    }

    /// What was opened and refused.
    pub fn stats(&self) -> OpenStats {
        merged(self.opener.stats(), &self.refused)
    }
}

fn merged(salt_keys: &OpenStats, sessions: &OpenStats) -> OpenStats {
    OpenStats {
        opened: salt_keys.opened + sessions.opened,
        not_sealed: salt_keys.not_sealed + sessions.not_sealed,
        bad_tag: salt_keys.bad_tag + sessions.bad_tag,
        replayed: salt_keys.replayed + sessions.replayed,
        salts_evicted: salt_keys.salts_evicted,
        no_session_key: sessions.no_session_key,
        not_session_sealed: sessions.not_session_sealed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pixgram_core::wire::{Ack, AckStatus, Challenge, DataHeader, Hello};
    use pixgram_core::{ChunkIndex, FrameId, StreamId};

    fn hello(token: Option<Token>) -> Vec<u8> {
        Hello::new(SessionId(5), token).to_vec()
    }

    /// The whole first exchange and a frame, keyed: every datagram opens at the other end
    /// under the key the rules say, and nothing opens under another key.
    #[test]
    fn a_sender_and_a_receiver_with_the_same_key_talk_through_the_first_exchange() {
        let psk = Psk::from_bytes([3; 32]);
        let mut tx = SenderEnvelope::new(&psk).unwrap();
        let mut rx = ReceiverEnvelope::new(&psk).unwrap();
        assert!(tx.seal(b"PG\x03\x01 data before any exchange").is_none());
        let mut d = tx.seal(&hello(None)).unwrap().to_vec();
        assert_eq!(rx.open(&mut d, |_, _| true), Some(&hello(None)[..]));
        let mut buf = [0u8; 64];
        let c = Challenge {
            session: SessionId(5),
            answered_len: 64,
            token: [8; 32],
        };
        let n = wire::emit_challenge(&mut buf, &c);
        let mut d = rx.seal(&buf[..n]).unwrap().to_vec();
        assert_eq!(tx.open(&mut d), Some(&buf[..n]));
        let mut d = tx.seal(&hello(Some([8; 32]))).unwrap().to_vec();
        assert!(rx
            .open(&mut d, |s, t| s == SessionId(5) && *t == [8; 32])
            .is_some());
        let h = DataHeader {
            session: SessionId(5),
            stream: StreamId::FRAMES,
            flags: wire::DataFlags::default(),
            frame: FrameId(0),
            index: ChunkIndex(0),
            count: 1,
            frame_len: 2,
            parity: 0,
            deadline_ms: 0,
            floor: FrameId(0),
        };
        let mut data = vec![0u8; 64];
        let n = wire::emit_data(&mut data, &h, b"hi");
        data.truncate(n);
        let mut d = tx.seal(&data).unwrap().to_vec();
        assert_eq!(d[3], pixgram_core::session_seal::SESSION_SEALED_TYPE);
        let recorded = d.clone();
        assert_eq!(rx.open(&mut d, |_, _| false), Some(&data[..]));
        let ack = Ack {
            session: SessionId(5),
            stream: StreamId::FRAMES,
            frame: FrameId(0),
            status: AckStatus::Complete,
            chunks_received: 1,
            ack_delay_us: 0,
            loss: 0,
            burst: 0,
        };
        let mut a = [0u8; wire::ACK_LEN];
        let n = wire::emit_ack(&mut a, &ack);
        let mut d = rx.seal(&a[..n]).unwrap().to_vec();
        assert_eq!(tx.open(&mut d), Some(&a[..n]));
        // Another receiver with the same key: the recorded DATA does not open.
        let mut other = ReceiverEnvelope::new(&psk).unwrap();
        assert_eq!(other.open(&mut recorded.clone(), |_, _| true), None);
        assert_eq!(other.stats().no_session_key, 1);
        // Another key: nothing opens.
        let mut stranger = ReceiverEnvelope::new(&Psk::from_bytes([4; 32])).unwrap();
        let mut d = tx.seal(&hello(None)).unwrap().to_vec();
        assert_eq!(stranger.open(&mut d, |_, _| true), None);
        assert_eq!(stranger.stats().bad_tag, 1);
    }

    /// Issue 11: after 256 other keyed sessions the receiver used to have forgotten a
    /// session's salt and took its recording again. Session keys and their replay windows
    /// outlive that (1,024 sessions), and a replayed HELLO with the same token keeps them.
    #[test]
    fn a_recording_is_refused_after_256_other_sessions() {
        let psk = Psk::from_bytes([9; 32]);
        let mut rx = ReceiverEnvelope::new(&psk).unwrap();
        let session = |tx: &mut SenderEnvelope, rx: &mut ReceiverEnvelope, token: Token| {
            let mut hello_d = tx.seal(&hello(Some(token))).unwrap().to_vec();
            let recorded_hello = hello_d.clone();
            assert!(rx.open(&mut hello_d, |_, t| *t == token).is_some());
            let mut d = tx.seal(b"PG\x03\x01 some DATA").unwrap().to_vec();
            let recorded = d.clone();
            assert!(rx.open(&mut d, |_, _| false).is_some());
            (recorded_hello, recorded)
        };
        let mut first = SenderEnvelope::new(&psk).unwrap();
        let (hello_a, data_a) = session(&mut first, &mut rx, [1; 32]);
        for i in 0..300u32 {
            let mut other = SenderEnvelope::new(&psk).unwrap();
            let mut token = [0u8; 32];
            token[..4].copy_from_slice(&i.to_be_bytes());
            token[4] = 7;
            session(&mut other, &mut rx, token);
        }
        assert!(
            rx.stats().salts_evicted > 0,
            "the salt of the first session was forgotten"
        );
        // The recorded HELLO opens again (its salt was forgotten) but installs nothing new;
        // the recorded DATA is a replay.
        let _ = rx.open(&mut hello_a.clone(), |_, _| true);
        assert_eq!(rx.open(&mut data_a.clone(), |_, _| true), None);
        assert_eq!(rx.stats().replayed, 1);
    }
}
