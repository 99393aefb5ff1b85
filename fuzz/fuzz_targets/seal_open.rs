//! Opening arbitrary bytes as sealed datagrams: never panics, never accepts anything (a
//! forgery would need the key), and a genuine datagram with any byte changed is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixgram_core::seal::{Opener, Psk, Sealer, SEAL_OVERHEAD};

fuzz_target!(|data: &[u8]| {
    let psk = Psk::from_bytes([7; 32]);
    let mut opener = Opener::new(&psk);
    let mut forged = data.to_vec();
    assert!(opener.open(&mut forged).is_err(), "accepted a forgery");
    if data.len() > 2 && data.len() < 4096 {
        let mut sealer = Sealer::new(&psk, [data[0]; 16]);
        let mut out = vec![0u8; data.len() + SEAL_OVERHEAD];
        let n = sealer.seal(&data[2..], &mut out);
        let at = usize::from(data[1]) % n;
        let mut tampered = out[..n].to_vec();
        tampered[at] ^= 0x01;
        assert!(
            opener.open(&mut tampered).is_err(),
            "accepted a changed byte"
        );
        assert_eq!(opener.open(&mut out[..n]).unwrap(), &data[2..]);
    }
});
