//! The sender's side of the first exchange (docs/PROTOCOL.md §8): HELLO until a CHALLENGE
//! brings a token, then a HELLO with the token right before the DATA; the same again whenever
//! a CHALLENGE comes (the receiver restarted, or the sender's address changed).

use std::time::Duration;

use crate::time::Timestamp;
use crate::wire::{Token, MIN_HELLO_LEN};

/// Wait before repeating an unanswered HELLO, for the first [`STEADY_RETRIES`] of them (on a
/// lossy path, a HELLO or its CHALLENGE is often lost, and a live stream cannot wait long:
/// at 100 ms, 5% loss each way cost one session in ten its first three frames); then doubled
/// after each, up to [`MAX_RETRY`] (nobody is there). A repeat sent before the answer to the
/// first could arrive (a path longer than this) costs a 48-byte CHALLENGE, and no RTT sample:
/// each HELLO's length names it ([`HELLO_LEN_STEP`]).
pub const FIRST_RETRY: Duration = Duration::from_millis(25);
/// See [`FIRST_RETRY`]: 40 HELLOs, one second.
pub const STEADY_RETRIES: u32 = 40;
/// Each HELLO without a token is this much longer than the one before, for the first
/// [`NAMED_HELLOS`] of them: a CHALLENGE carries the length of what it answers, so the
/// sender knows which HELLO it answers and takes an unambiguous RTT sample (Karn's rule
/// would otherwise discard every sample once a HELLO was repeated).
pub const HELLO_LEN_STEP: usize = 4;
/// See [`HELLO_LEN_STEP`]: HELLOs of 64 to 316 bytes, then 320.
pub const NAMED_HELLOS: usize = 64;
/// The longest wait between HELLOs.
pub const MAX_RETRY: Duration = Duration::from_secs(1);
/// HELLOs with a token go at most this often (a CHALLENGE flood cannot make the sender
/// answer each one).
pub const MIN_TOKEN_INTERVAL: Duration = Duration::from_millis(10);
/// Until the receiver answers anything about a frame, the HELLO with a token is repeated this
/// often, at most [`TOKEN_REPEATS`] times per token: one lost HELLO would otherwise cost the
/// DATA of a whole round trip (a receiver drops DATA of sessions it has not validated).
pub const TOKEN_REPEAT: Duration = Duration::from_millis(2);
/// See [`TOKEN_REPEAT`].
pub const TOKEN_REPEATS: u32 = 4;

/// Where the sender stands in the first exchange.
#[derive(Debug, Default)]
pub(crate) struct Greeting {
    token: Option<Token>,
    /// A HELLO with the token waits to go.
    answer_queued: bool,
    /// The receiver answered about a frame since the token came: it holds the session.
    confirmed: bool,
    /// HELLOs sent with the current token.
    repeats: u32,
    /// When the first HELLO went: the receiver has not answered since.
    started: Option<Timestamp>,
    /// When the last HELLO went and how long until the next (without a token).
    last_hello: Option<Timestamp>,
    backoff: Duration,
    /// HELLOs without a token sent since the greeting started.
    tries: u32,
    /// When each of the first [`NAMED_HELLOS`] of them went (at most that many).
    sent_at: Vec<Timestamp>,
}

impl Greeting {
    /// Whether DATA may go: the sender holds a token.
    pub(crate) fn validated(&self) -> bool {
        self.token.is_some()
    }

    /// The token held, if any.
    pub(crate) fn token(&self) -> Option<Token> {
        self.token
    }

    /// The HELLO to send now, if one is due: `Some(token)` with the token the sender holds,
    /// `Some(None)` without one.
    pub(crate) fn due(&self, now: Timestamp) -> Option<Option<Token>> {
        let due = match (self.token, self.last_hello) {
            (None, None) => true,
            (Some(_), None) => self.answer_queued,
            (_, Some(_)) => self.next_at().is_some_and(|t| now >= t),
        };
        due.then_some(self.token)
    }

    /// When a HELLO is due next, if one is waiting.
    pub(crate) fn next_at(&self) -> Option<Timestamp> {
        let last = self.last_hello?;
        match self.token {
            None => Some(last + self.backoff),
            Some(_) if self.answer_queued => Some(last + MIN_TOKEN_INTERVAL),
            Some(_) if !self.confirmed && self.repeats < TOKEN_REPEATS => Some(last + TOKEN_REPEAT),
            Some(_) => None,
        }
    }

    /// The receiver answered about a frame (ACK or NACK): it holds the session, no more
    /// repeats are needed.
    pub(crate) fn on_answer(&mut self) {
        self.confirmed = true;
    }

    /// The length of the HELLO to send next: [`MIN_HELLO_LEN`] with a token, and without one
    /// a length that names it (see [`HELLO_LEN_STEP`]).
    pub(crate) fn hello_len(&self) -> usize {
        if self.token.is_some() {
            return MIN_HELLO_LEN;
        }
        MIN_HELLO_LEN + HELLO_LEN_STEP * self.sent_at.len()
    }

    /// A HELLO went at `now`.
    pub(crate) fn on_sent(&mut self, now: Timestamp) {
        self.started.get_or_insert(now);
        self.last_hello = Some(now);
        if self.token.is_some() {
            self.answer_queued = false;
            self.repeats += 1;
        } else {
            if self.sent_at.len() < NAMED_HELLOS {
                self.sent_at.push(now);
            }
            self.tries += 1;
            self.backoff = if self.tries < STEADY_RETRIES {
                FIRST_RETRY
            } else {
                (self.backoff * 2).min(MAX_RETRY)
            };
        }
    }

    /// Since when the sender has been waiting for a first CHALLENGE, if it is.
    pub(crate) fn waiting_since(&self) -> Option<Timestamp> {
        if self.token.is_some() {
            return None;
        }
        self.started
    }

    /// The round trip a first CHALLENGE measures, arriving at `now` for a datagram of
    /// `answered_len` bytes: from the HELLO of that length, if one length named it.
    pub(crate) fn rtt_sample(&self, now: Timestamp, answered_len: usize) -> Option<Duration> {
        if self.token.is_some() {
            return None;
        }
        let step = answered_len.checked_sub(MIN_HELLO_LEN)?;
        if step % HELLO_LEN_STEP != 0 {
            return None;
        }
        // Every HELLO after the named ones is one length longer than the last named one,
        // and has no entry.
        let sent = self.sent_at.get(step / HELLO_LEN_STEP)?;
        Some(now.saturating_since(*sent))
    }

    /// A CHALLENGE brought `token`: answer it with a HELLO carrying it.
    pub(crate) fn on_challenge(&mut self, token: Token) {
        if self.token.is_none() {
            // The first answer: the tokened HELLO may go at once.
            self.last_hello = None;
        }
        if self.token != Some(token) {
            self.repeats = 0;
        }
        self.token = Some(token);
        self.answer_queued = true;
        self.confirmed = false;
    }

    /// The receiver went away for good (the application gave up): start over if it is used
    /// again.
    pub(crate) fn reset(&mut self) {
        *self = Greeting::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellos_back_off_then_the_token_goes_once_per_challenge() {
        let mut g = Greeting::default();
        let t = Timestamp::from_millis(0);
        assert_eq!(g.due(t), Some(None));
        g.on_sent(t);
        assert_eq!(g.due(t + (FIRST_RETRY - Duration::from_millis(1))), None);
        assert_eq!(g.due(t + FIRST_RETRY), Some(None));
        g.on_sent(t + FIRST_RETRY);
        assert_eq!(g.next_at(), Some(t + FIRST_RETRY * 2));
        let mut at = t + FIRST_RETRY;
        for _ in 2..STEADY_RETRIES {
            at = g.next_at().unwrap();
            g.on_sent(at);
        }
        // After a second of no answer, the waits double.
        assert_eq!(g.next_at(), Some(at + FIRST_RETRY * 2));
        assert_eq!(g.waiting_since(), Some(t));
        g.on_challenge([7; 32]);
        assert!(g.validated());
        assert_eq!(g.waiting_since(), None);
        let now = at + Duration::from_millis(50);
        assert_eq!(g.due(now), Some(Some([7; 32])));
        g.on_sent(now);
        // Repeated until the receiver answers about a frame, at most TOKEN_REPEATS times.
        let mut at = now;
        for _ in 1..TOKEN_REPEATS {
            assert_eq!(g.due(at + Duration::from_millis(1)), None);
            at = at + TOKEN_REPEAT;
            assert_eq!(g.due(at), Some(Some([7; 32])));
            g.on_sent(at);
        }
        assert_eq!(g.due(now + Duration::from_secs(5)), None, "repeated enough");
        g.on_answer();
        // A flood of CHALLENGEs gets one HELLO per MIN_TOKEN_INTERVAL.
        g.on_challenge([8; 32]);
        g.on_challenge([9; 32]);
        assert_eq!(g.due(at + Duration::from_millis(5)), None);
        assert_eq!(g.due(at + MIN_TOKEN_INTERVAL), Some(Some([9; 32])));
    }

    #[test]
    fn a_challenge_names_the_hello_it_answers() {
        let mut g = Greeting::default();
        let t = Timestamp::from_millis(0);
        let mut lens = Vec::new();
        for i in 0..3 {
            lens.push(g.hello_len());
            g.on_sent(t + FIRST_RETRY * i);
        }
        assert_eq!(lens, [64, 68, 72]);
        // The answer to the first HELLO arrives after the third went: the first's round trip.
        let ms = Duration::from_millis;
        let now = t + FIRST_RETRY * 2 + ms(5);
        assert_eq!(g.rtt_sample(now, 64), Some(FIRST_RETRY * 2 + ms(5)));
        assert_eq!(g.rtt_sample(now, 72), Some(ms(5)));
        // Lengths no HELLO had.
        for len in [0, 48, 66, 76, 1_472] {
            assert_eq!(g.rtt_sample(now, len), None, "{len}");
        }
        // Past the named HELLOs, one length shared by the rest: no sample from it.
        for i in 3..NAMED_HELLOS as u32 + 5 {
            g.on_sent(t + FIRST_RETRY * i);
        }
        let shared = MIN_HELLO_LEN + HELLO_LEN_STEP * NAMED_HELLOS;
        assert_eq!(g.hello_len(), shared);
        assert_eq!(g.rtt_sample(now, shared), None);
        assert!(g.rtt_sample(now, shared - HELLO_LEN_STEP).is_some());
        // With a token, HELLOs are the shortest and CHALLENGEs measure nothing.
        g.on_challenge([1; 32]);
        assert_eq!(g.hello_len(), MIN_HELLO_LEN);
        assert_eq!(g.rtt_sample(now, 64), None);
    }
}
