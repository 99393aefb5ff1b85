//! The receiver state machine fed an arbitrary sequence of datagrams from a few addresses,
//! with arbitrary time steps: never panics, never buffers past its budget, never sends an
//! address more bytes than it received from it. A record may first pass the first exchange
//! for the session its datagram names (a HELLO with a valid token, as a sender that received
//! the CHALLENGE sends), so arbitrary DATA reaches reassembly as well as the handshake.
#![no_main]

use std::collections::HashMap;
use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use pixgram_core::handshake::AddressValidator;
use pixgram_core::wire;
use pixgram_core::Transmit;
use pixgram_core::{Receiver, ReceiverConfig, SessionId, Timestamp, MAX_REPLY_LEN};

fuzz_target!(|data: &[u8]| {
    let config = ReceiverConfig {
        max_total_bytes: 1 << 20,
        max_peer_bytes: 512 << 10,
        max_frame_len: 256 << 10,
        ..ReceiverConfig::default()
    };
    let cap = config.max_total_bytes;
    let validator = AddressValidator::new(config.address_secret.0);
    let mut rx = Receiver::new(config);
    let mut now = Timestamp::ZERO;
    let (mut sent, mut got): (HashMap<SocketAddr, u64>, HashMap<SocketAddr, u64>) =
        Default::default();
    let mut reply = [0u8; MAX_REPLY_LEN];
    // Records: [peer, time step (ms), length hi, length lo, bytes...].
    let mut rest = data;
    while rest.len() >= 4 {
        let from = SocketAddr::from(([127, 0, 0, 1], 1000 + u16::from(rest[0] % 4)));
        // Bit 7 of the first byte: validate the datagram's session first.
        let rest_flag = rest[0] & 0x80 != 0;
        now = now + std::time::Duration::from_millis(u64::from(rest[1]));
        let len = (usize::from(rest[2]) << 8 | usize::from(rest[3])).min(rest.len() - 4);
        let datagram = &rest[4..4 + len];
        rest = &rest[4 + len..];
        if rest_flag && datagram.len() >= 8 {
            let session = SessionId(u32::from_be_bytes(datagram[4..8].try_into().unwrap()));
            let hello = wire::Hello::new(session, Some(validator.issue(now, from, session)));
            let hello = hello.to_vec();
            *got.entry(from).or_default() += hello.len() as u64;
            rx.handle(now, from, &hello);
        }
        *got.entry(from).or_default() += datagram.len() as u64;
        rx.handle(now, from, datagram);
        rx.handle_timeout(now);
        while let Some(Transmit {
            destination: to,
            len: n,
        }) = rx.poll_transmit(&mut reply)
        {
            *sent.entry(to).or_default() += n as u64;
        }
        while rx.poll_event().is_some() {}
        assert!(rx.buffered_bytes() <= cap);
        for (to, n) in &sent {
            assert!(*n <= got.get(to).copied().unwrap_or(0), "amplification");
        }
    }
});
