//! Address validation on the receiver's side of the first exchange (docs/PROTOCOL.md §8): a
//! stateless token bound to the sender's address, session and the time it was issued, and the
//! budget that limits how many CHALLENGEs go out.
//!
//! A receiver keeps no state for an address until it has sent back a token the receiver
//! issued to that very address: a flood from spoofed or unanswering addresses costs the
//! receiver one HMAC and at most one CHALLENGE (no larger than the datagram that asked) each.

use std::net::SocketAddr;
use std::time::Duration;

use aws_lc_rs::hmac;

use crate::ids::SessionId;
use crate::pacing::Pacer;
use crate::time::Timestamp;
use crate::wire::{Token, TOKEN_LEN};

/// How long a token is accepted after it was issued.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// CHALLENGEs a receiver sends per second at most in answer to HELLOs, all addresses
/// together (a tenth of a second's worth at once).
pub const CHALLENGES_PER_SEC: f64 = 10_000.0;
/// CHALLENGEs per second in answer to DATA from addresses not validated (a receiver that
/// restarted, a sender whose address changed). A budget of its own: a flood of DATA cannot
/// spend the budget HELLOs are answered from.
pub const DATA_CHALLENGES_PER_SEC: f64 = 2_000.0;

/// Issues and checks tokens with a secret of the receiver's own (the driver supplies random
/// bytes; a restarted receiver has a new secret, so no token it issued before is valid).
pub struct AddressValidator {
    key: hmac::Key,
}

impl std::fmt::Debug for AddressValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddressValidator(..)")
    }
}

impl AddressValidator {
    /// A validator keyed with `secret`.
    pub fn new(secret: [u8; 32]) -> Self {
        AddressValidator {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        }
    }

    fn mac(&self, issued: u32, addr: SocketAddr, session: SessionId) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        match addr {
            SocketAddr::V4(a) => {
                ctx.update(&[4]);
                ctx.update(&a.ip().octets());
            }
            SocketAddr::V6(a) => {
                ctx.update(&[6]);
                ctx.update(&a.ip().octets());
            }
        }
        ctx.update(&addr.port().to_be_bytes());
        ctx.update(&session.0.to_be_bytes());
        ctx.update(&issued.to_be_bytes());
        ctx.sign()
    }

    /// A token for `session` at `addr`, issued `now`.
    pub fn issue(&self, now: Timestamp, addr: SocketAddr, session: SessionId) -> Token {
        let issued = seconds(now);
        let mut token = [0u8; TOKEN_LEN];
        token[..4].copy_from_slice(&issued.to_be_bytes());
        token[4..].copy_from_slice(&self.mac(issued, addr, session).as_ref()[..TOKEN_LEN - 4]);
        token
    }

    /// Whether `token` was issued by this validator for `session` at `addr` less than
    /// [`TOKEN_LIFETIME`] ago.
    pub fn check(
        &self,
        now: Timestamp,
        addr: SocketAddr,
        session: SessionId,
        token: &Token,
    ) -> bool {
        let issued = u32::from_be_bytes([token[0], token[1], token[2], token[3]]);
        let age = u64::from(seconds(now)).checked_sub(u64::from(issued));
        if age.is_none_or(|a| a >= TOKEN_LIFETIME.as_secs()) {
            return false;
        }
        let tag = self.mac(issued, addr, session);
        // Constant time: how many bytes matched must not show in how long the check took.
        let diff = tag.as_ref()[..TOKEN_LEN - 4]
            .iter()
            .zip(&token[4..])
            .fold(0u8, |d, (a, b)| d | (a ^ b));
        diff == 0
    }
}

fn seconds(now: Timestamp) -> u32 {
    u32::try_from(now.as_micros() / 1_000_000).unwrap_or(u32::MAX)
}

/// A token bucket for CHALLENGEs: `rate` a second, a tenth of a second's worth at once.
#[derive(Debug)]
pub struct ChallengeBudget(Pacer);

impl ChallengeBudget {
    /// A budget of `rate` CHALLENGEs a second.
    pub fn new(rate: f64) -> Self {
        ChallengeBudget(Pacer::new(rate, rate / 10.0))
    }

    /// Takes one CHALLENGE from the budget; `false` when it is spent.
    pub fn take(&mut self, now: Timestamp) -> bool {
        self.0.try_take(now, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_token_is_valid_only_for_its_address_session_secret_and_lifetime() {
        let v = AddressValidator::new([1; 32]);
        let t0 = Timestamp::from_millis(5_000);
        let token = v.issue(t0, addr(1), SessionId(7));
        assert!(v.check(t0, addr(1), SessionId(7), &token));
        assert!(v.check(t0 + Duration::from_secs(59), addr(1), SessionId(7), &token));
        assert!(!v.check(t0 + Duration::from_secs(61), addr(1), SessionId(7), &token));
        assert!(!v.check(t0, addr(2), SessionId(7), &token), "another port");
        assert!(
            !v.check(t0, addr(1), SessionId(8), &token),
            "another session"
        );
        let restarted = AddressValidator::new([2; 32]);
        assert!(!restarted.check(t0, addr(1), SessionId(7), &token));
        let mut forged = token;
        forged[31] ^= 1;
        assert!(!v.check(t0, addr(1), SessionId(7), &forged));
        // A token from the future (its time edited) does not verify either.
        let mut later = token;
        later[3] = later[3].wrapping_add(1);
        assert!(!v.check(t0, addr(1), SessionId(7), &later));
    }

    #[test]
    fn the_challenge_budget_refills_at_its_rate() {
        let mut b = ChallengeBudget::new(CHALLENGES_PER_SEC);
        let now = Timestamp::from_millis(1);
        let sent = (0..5_000).filter(|_| b.take(now)).count();
        assert_eq!(sent, 1_000);
        let later = now + Duration::from_millis(10);
        assert_eq!((0..5_000).filter(|_| b.take(later)).count(), 100);
    }
}
