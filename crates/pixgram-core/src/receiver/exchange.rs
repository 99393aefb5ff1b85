//! The first exchange at the receiver (docs/PROTOCOL.md §8): HELLOs and their tokens, the
//! CHALLENGEs it sends within its budget, and DATA held a moment for an address not yet
//! validated.

use super::*;

impl Receiver {
    /// Whether `token` is one this receiver issued to `session` at `from` and still takes
    /// (for a driver that derives session keys from the token of a HELLO, §8.3).
    pub fn check_token(
        &self,
        now: Timestamp,
        from: SocketAddr,
        session: SessionId,
        token: &wire::Token,
    ) -> bool {
        self.validator.check(now, from, session, token)
    }

    /// A HELLO: with a valid token for this address, the session starts (or resumes, or moves
    /// here); otherwise it is answered with a token. A probe is answered in any case: the
    /// CHALLENGE carrying its length confirms the path carries datagrams that large.
    pub(super) fn on_hello(&mut self, now: Timestamp, from: SocketAddr, h: &Hello) {
        self.stats.hellos += 1;
        let valid = h
            .token
            .is_some_and(|t| self.validator.check(now, from, h.session, &t));
        if h.token.is_some() && !valid {
            self.stats.tokens_invalid += 1;
        }
        if valid && self.admit_session(now, from, h.session) {
            self.use_early(now, (h.session, from));
        }
        if !valid || h.probe {
            self.challenge(now, from, h.session, h.len, true);
        }
    }

    /// Holds DATA that arrived before its session's HELLO, pushing out what is too old or
    /// does not fit.
    pub(super) fn hold_early(&mut self, now: Timestamp, key: PeerKey, datagram: &[u8]) {
        if datagram.len() > EARLY_DATA_BYTES / 4 {
            return;
        }
        while self.early_bytes + datagram.len() > EARLY_DATA_BYTES
            || self
                .early
                .front()
                .is_some_and(|(at, ..)| now.saturating_since(*at) >= EARLY_DATA_HOLD)
        {
            let Some((_, _, d)) = self.early.pop_front() else {
                break;
            };
            self.early_bytes -= d.len();
        }
        self.early_bytes += datagram.len();
        self.early.push_back((now, key, datagram.to_vec()));
    }

    /// Hands the DATA held for `key`, just validated, to its session.
    pub(super) fn use_early(&mut self, now: Timestamp, key: PeerKey) {
        if !self.early.iter().any(|(_, k, _)| *k == key) {
            return;
        }
        let (mine, rest): (VecDeque<_>, VecDeque<_>) =
            self.early.drain(..).partition(|(_, k, _)| *k == key);
        self.early = rest;
        for (at, _, d) in mine {
            self.early_bytes -= d.len();
            if now.saturating_since(at) >= EARLY_DATA_HOLD {
                continue;
            }
            if let Ok(Datagram::Data(h, payload)) = wire::parse(&d) {
                self.stats.early_data_used += 1;
                self.on_data(now, key.1, &h, payload);
            }
        }
    }

    /// Queues a CHALLENGE for `session` at `from`, answering a datagram (a HELLO if `hello`)
    /// of `len` bytes: only one at least as long (no amplification), and within the budget.
    pub(super) fn challenge(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        session: SessionId,
        len: usize,
        hello: bool,
    ) {
        if len < CHALLENGE_LEN {
            return;
        }
        let budget = if hello {
            &mut self.challenges
        } else {
            &mut self.data_challenges
        };
        if self.replies.len() >= self.config.max_queued_acks || !budget.take(now) {
            self.stats.challenges_limited += 1;
            return;
        }
        let token = self.validator.issue(now, from, session);
        let challenge = Challenge {
            session,
            answered_len: u32::try_from(len).unwrap_or(u32::MAX),
            token,
        };
        self.replies.push_back((from, Reply::Challenge(challenge)));
    }
}
