//! The first exchange for tests that craft datagrams by hand: validate an address at a
//! receiver the way a sender does (HELLO, CHALLENGE, HELLO with the token), or pump a real
//! sender's datagrams into a receiver with the CHALLENGEs handed straight back.
#![allow(dead_code)]

use std::net::SocketAddr;

use pixgram_core::handshake::AddressValidator;
use pixgram_core::wire::{self, Datagram};
use pixgram_core::Transmit;
use pixgram_core::{Receiver, Sender, SessionId, Timestamp};

/// A HELLO of `session`, with `token` if given.
pub fn hello(session: SessionId, token: Option<wire::Token>) -> Vec<u8> {
    wire::Hello::new(session, token).to_vec()
}

/// Validates `from` for `session` at `rx` as an address that received its CHALLENGE would:
/// a HELLO with the token `rx` issues (computed with `rx`'s secret, so no reply waiting at `rx`
/// is disturbed).
pub fn validate(rx: &mut Receiver, now: Timestamp, from: SocketAddr, session: SessionId) {
    let validator = AddressValidator::new(rx.config().address_secret.0);
    let token = validator.issue(now, from, session);
    rx.handle(now, from, &hello(session, Some(token)));
}

/// Hands every datagram `tx` has ready to `rx` (from `from`), CHALLENGEs straight back to
/// `tx`, until `tx` has nothing more; returns `rx`'s other replies.
pub fn pump(tx: &mut Sender, rx: &mut Receiver, now: Timestamp, from: SocketAddr) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 65_536];
    let mut replies = Vec::new();
    for _ in 0..16 {
        while let Some(t) = tx.poll_transmit(now, &mut buf) {
            rx.handle(now, from, &buf[..t.len]);
        }
        let mut challenged = false;
        while let Some(Transmit {
            destination: _,
            len: n,
        }) = rx.poll_transmit(&mut buf)
        {
            if matches!(wire::parse(&buf[..n]), Ok(Datagram::Challenge(_))) {
                tx.handle(now, &buf[..n]);
                challenged = true;
            } else {
                replies.push(buf[..n].to_vec());
            }
        }
        if !challenged {
            break;
        }
    }
    replies
}

/// Hands `tx` a CHALLENGE as its receiver would send one (a sender does not check tokens: it
/// sends them back), so DATA may go; the HELLOs it then sends are for the caller to skip.
pub fn challenge(tx: &mut Sender) {
    let c = wire::Challenge {
        session: tx.session(),
        answered_len: wire::MIN_HELLO_LEN as u32,
        token: [0x5A; wire::TOKEN_LEN],
    };
    let mut buf = [0u8; wire::CHALLENGE_LEN];
    let n = wire::emit_challenge(&mut buf, &c);
    tx.handle(Timestamp::ZERO, &buf[..n]);
}

/// Whether `datagram` is a HELLO.
pub fn is_hello(datagram: &[u8]) -> bool {
    matches!(wire::parse(datagram), Ok(Datagram::Hello(_)))
}
