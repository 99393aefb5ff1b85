//! One frame in flight and one stream's state, as the sender keeps them.

use super::*;

#[derive(Debug)]
pub(super) struct OutFrame {
    pub(super) flags: DataFlags,
    pub(super) layout: ChunkLayout,
    /// The datagram size the frame was cut for.
    pub(super) cut_for: usize,
    pub(super) meta_prefix: [u8; 4],
    pub(super) metadata: Bytes,
    pub(super) payload: Bytes,
    pub(super) next_chunk: u32,
    pub(super) parity_count: u8,
    /// Parity chunk `j` at `j * layout.parity_len()`.
    pub(super) parity: Vec<u8>,
    /// Live frames: when the frame stops being worth sending.
    pub(super) deadline: Option<Timestamp>,
    pub(super) deadline_ms: u16,
    pub(super) submitted: Timestamp,
    /// When the last chunk went out for the first time.
    pub(super) last_sent: Option<Timestamp>,
    /// Chunks to send again, in order; `queued` has a bit per chunk in this queue.
    pub(super) resend: VecDeque<u32>,
    pub(super) queued: Vec<u64>,
    /// When each chunk was last sent again (allocated at the first NACK): a NACK that crossed
    /// the retransmission on the wire must not trigger another.
    pub(super) resent_at: Vec<Option<Timestamp>>,
    /// When each data chunk was last sent, for the RTT samples progress reports give.
    pub(super) sent_at: Vec<Timestamp>,
    /// Whether any chunk was sent twice.
    pub(super) retransmitted: bool,
    /// When any data chunk of the frame was last sent: the receiver acknowledges as soon as
    /// the last missing chunk arrives, so the ACK's arrival minus this is a round-trip sample
    /// even for frames with retransmissions (where Karn's rule would leave none: at 5% loss,
    /// every 200 KB frame has one). Parity chunks do not count: they follow the data, which
    /// usually completes the frame before they arrive (measured from them, a 40 ms path gave
    /// samples of 0.2-2.5 ms). A frame rebuilt from parity gives a longer sample, never a
    /// shorter one.
    pub(super) last_tx: Timestamp,
    /// Whether that last send was a timeout probe. An ACK may answer the original instead of
    /// the probe (the verdict was only late), so such a sample could be far too short: Karn's
    /// rule, applied to probes only. NACK-driven resends answer a NACK and are not ambiguous.
    pub(super) last_tx_probe: bool,
    /// Chunks the receiver last said it holds (NACKs), for the delivery rate.
    pub(super) reported: u32,
    /// Live frames: chunks its progress reports showed lost so far (sent before one that
    /// arrived, and missing).
    pub(super) lost_seen: u32,
    /// Chunks sent and not yet reported delivered or lost: this frame's part of the bytes in
    /// flight the congestion window bounds.
    pub(super) outstanding: u32,
    /// Reliable frames: when to probe if no verdict has come.
    pub(super) rto_at: Option<Timestamp>,
    pub(super) backoffs: u32,
    /// Reliable frames: since when the receiver has refused the frame for lack of room, with
    /// no NACK (room) in between.
    pub(super) rejected_since: Option<Timestamp>,
}

impl OutFrame {
    pub(super) fn reliable(&self) -> bool {
        self.flags.contains(DataFlags::RELIABLE)
    }

    /// Data and parity chunks.
    pub(super) fn total_chunks(&self) -> u32 {
        self.layout.count() + u32::from(self.parity_count)
    }

    /// Bytes one chunk of this frame takes on the wire, on average (headers included): what
    /// its chunks count for in flight and delivered (a small message's datagram is not a full
    /// one).
    pub(super) fn chunk_bytes(&self) -> u64 {
        let count = u64::from(self.layout.count().max(1));
        (self.layout.len() + count * DATA_OVERHEAD as u64).div_ceil(count)
    }

    /// Bytes of this frame's chunks in flight.
    pub(super) fn outstanding_bytes(&self) -> u64 {
        u64::from(self.outstanding) * self.chunk_bytes()
    }

    /// Whether every chunk has been sent at least once and nothing waits to be sent again.
    pub(super) fn is_drained(&self) -> bool {
        self.next_chunk == self.total_chunks() && self.resend.is_empty()
    }

    /// Queues data chunk `i` to be sent again unless it is queued already, was never sent, or
    /// was sent again less than `holdoff` before `now`.
    pub(super) fn queue_resend(&mut self, i: u32, now: Timestamp, holdoff: Duration) -> bool {
        if i >= self.next_chunk || i >= self.layout.count() {
            return false;
        }
        if self.queued.is_empty() {
            let count = self.layout.count() as usize;
            self.queued = vec![0; count.div_ceil(64)];
            self.resent_at = vec![None; count];
        }
        if self.resent_at[i as usize].is_some_and(|t| now.saturating_since(t) < holdoff) {
            return false;
        }
        let (w, b) = ((i / 64) as usize, i % 64);
        if self.queued[w] & (1 << b) != 0 {
            return false;
        }
        self.queued[w] |= 1 << b;
        self.resend.push_back(i);
        true
    }

    /// Cuts the frame for datagrams of `max_chunk` payload bytes if none of its chunks has
    /// been sent yet and it has no parity (path MTU discovery raised the size after the frame
    /// was queued).
    pub(super) fn fit(&mut self, max_chunk: usize) {
        if self.next_chunk > 0 || self.parity_count > 0 {
            return;
        }
        let Some(layout) = ChunkLayout::for_frame(self.layout.len(), max_chunk) else {
            return;
        };
        self.cut_for = max_chunk + DATA_OVERHEAD;
        if layout != self.layout {
            self.layout = layout;
            if !self.sent_at.is_empty() {
                self.sent_at = vec![Timestamp::ZERO; layout.count() as usize];
            }
        }
    }

    pub(super) fn pop_resend(&mut self) -> Option<u32> {
        let i = self.resend.pop_front()?;
        self.queued[(i / 64) as usize] &= !(1 << (i % 64));
        Some(i)
    }

    /// Copies body bytes `range` (prefix, metadata and payload seen as one) into `dst`.
    pub(super) fn copy_body(&self, range: std::ops::Range<usize>, dst: &mut [u8]) {
        let prefix: &[u8] = if self.flags.contains(DataFlags::METADATA) {
            &self.meta_prefix
        } else {
            &[]
        };
        let mut at = 0; // position of the current part in body coordinates
        let mut written = 0;
        for part in [prefix, &self.metadata[..], &self.payload[..]] {
            let (start, end) = (range.start.max(at), range.end.min(at + part.len()));
            if start < end {
                dst[written..written + end - start].copy_from_slice(&part[start - at..end - at]);
                written += end - start;
            }
            at += part.len();
        }
    }
}

#[derive(Debug)]
pub(super) struct StreamTx {
    pub(super) ordered: bool,
    pub(super) reliable: bool,
    pub(super) live: bool,
    pub(super) next_id: FrameId,
    pub(super) in_flight: usize,
}
