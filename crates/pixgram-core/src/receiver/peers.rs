//! The peer table: who is admitted, what each may hold, who is evicted or forgotten.

use super::*;

#[derive(Debug)]
pub(super) struct Peer {
    pub(super) streams: BTreeMap<StreamId, StreamReceiver>,
    pub(super) footprint: u64,
    pub(super) last_seen: Timestamp,
    /// Bytes received from this peer minus bytes queued to it: replies may not exceed it.
    pub(super) reply_credit: u64,
    /// Datagrams this peer may still send (see `max_peer_datagrams_per_sec`).
    pub(super) budget: Option<Pacer>,
}

/// What is kept of a session that went idle or closed.
#[derive(Debug)]
pub(super) struct Remembered {
    pub(super) at: Timestamp,
    /// Closed by the sender: its late datagrams are dropped rather than resuming it.
    pub(super) closed: bool,
    pub(super) streams: BTreeMap<StreamId, StreamReceiver>,
}

impl Receiver {
    /// Finds, resumes, moves or creates the session `session` for `from`, an address that
    /// has just been validated; `false` when it is refused (a closed session, or no room).
    pub(super) fn admit_session(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        session: SessionId,
    ) -> bool {
        let key = (session, from);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.last_seen = now;
            return true;
        }
        if let Some(old) = self.locate(session, from) {
            if self
                .peers
                .get(&old)
                .is_some_and(|p| now.saturating_since(p.last_seen) < MIGRATION_QUIET)
            {
                self.stats.moves_refused += 1;
                return false;
            }
            // The same session at a new address that has shown it receives (NAT rebinding,
            // another network), its old address quiet: keep its state, answer at the new
            // address, and let that address earn its own reply credit.
            if let Some(mut peer) = self.peers.remove(&old) {
                peer.last_seen = now;
                peer.reply_credit = 0;
                let moved = peer.footprint;
                let left = self.addr_footprint.get(&old.1).copied().unwrap_or(0) - moved;
                self.charge_addr(old.1, left);
                let here = self.addr_footprint.get(&from).copied().unwrap_or(0);
                self.charge_addr(from, here + moved);
                self.peers.insert(key, peer);
                self.stats.sessions_moved += 1;
                return true;
            }
        }
        let retention = self.config.remember_sessions_for;
        let remembered = self
            .remembered
            .get(&session)
            .filter(|r| now.saturating_since(r.at) < retention);
        if remembered.is_some_and(|r| r.closed) {
            // A late datagram of a session that is over must not start it again (a frame it
            // completes would be delivered twice).
            self.stats.stale_chunks += 1;
            return false;
        }
        if self.peers.len() >= self.config.max_peers && !self.evict_quietest(now) {
            self.stats.over_peers += 1;
            return false;
        }
        let streams = match self.remembered.remove(&session) {
            Some(r) if now.saturating_since(r.at) < retention => {
                self.stats.sessions_resumed += 1;
                r.streams
            }
            _ => BTreeMap::new(),
        };
        self.peers.insert(
            key,
            Peer {
                streams,
                footprint: 0,
                last_seen: now,
                reply_credit: 0,
                budget: self.config.max_peer_datagrams_per_sec.map(|rate| {
                    let rate = f64::from(rate);
                    Pacer::new(rate, (rate / 10.0).max(1024.0))
                }),
            },
        );
        self.stats.sessions_started += 1;
        self.events.push_back(ReceiverEvent::SessionStarted {
            peer: from,
            session,
        });
        true
    }

    /// Bytes an address that buffers `at_addr` may still take: its own budget and what is
    /// left of the total; and once three quarters of the total are in use, no more than an
    /// equal share of the total among the addresses buffering (so a newcomer always finds
    /// room: the others cannot grow past their shares).
    pub(super) fn room_for(&self, at_addr: u64) -> u64 {
        let total = self.config.max_total_bytes;
        let mut room = (self.config.max_peer_bytes.saturating_sub(at_addr))
            .min(total.saturating_sub(self.footprint));
        if self.footprint >= total / 4 * 3 {
            let active = self.addr_footprint.len() as u64 + u64::from(at_addr == 0);
            let share = total / active.max(1);
            room = room.min(share.saturating_sub(at_addr));
        }
        room
    }

    /// Records that `addr` now buffers `bytes` (forgetting addresses that buffer nothing).
    pub(super) fn charge_addr(&mut self, addr: SocketAddr, bytes: u64) {
        if bytes == 0 {
            self.addr_footprint.remove(&addr);
        } else {
            self.addr_footprint.insert(addr, bytes);
        }
    }

    /// Makes room for a new sender by ending the session silent the longest, if it has been
    /// silent for at least [`EVICT_QUIET`]: an active session is never evicted, and an evicted
    /// one is remembered like an idle one, so it resumes if it comes back.
    pub(super) fn evict_quietest(&mut self, now: Timestamp) -> bool {
        let quietest = self
            .peers
            .iter()
            .min_by_key(|(_, p)| p.last_seen)
            .filter(|(_, p)| now.saturating_since(p.last_seen) >= EVICT_QUIET)
            .map(|(k, _)| *k);
        let Some(key) = quietest else {
            return false;
        };
        self.end_session(key, SessionEnd::Evicted, now);
        self.stats.sessions_evicted += 1;
        true
    }

    /// Where `session` is served now: at `addr`, or at the one address it moved to.
    pub(super) fn locate(&self, session: SessionId, addr: SocketAddr) -> Option<PeerKey> {
        if self.peers.contains_key(&(session, addr)) {
            return Some((session, addr));
        }
        let lowest = SocketAddr::from(([0, 0, 0, 0], 0));
        self.peers
            .range((session, lowest)..)
            .take_while(|((s, _), _)| *s == session)
            .map(|(k, _)| *k)
            .next()
    }

    /// Ends a session: frames in flight are reported lost, and its streams' verdicts are
    /// remembered (compacted) for `remember_sessions_for`, the oldest memory going first.
    pub(super) fn end_session(&mut self, key: PeerKey, reason: SessionEnd, now: Timestamp) {
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        let (session, addr) = key;
        self.footprint -= peer.footprint;
        let at_addr = self.addr_footprint.get(&addr).copied().unwrap_or(0);
        self.charge_addr(addr, at_addr - peer.footprint);
        let mut out = std::mem::take(&mut self.scratch);
        for (id, stream) in peer.streams.iter_mut() {
            stream.abandon(&mut out);
            stream.compact_for_idle();
            self.emit(addr, session, *id, &mut out);
        }
        self.scratch = out;
        self.stats.sessions_ended += 1;
        self.events.push_back(ReceiverEvent::SessionEnded {
            peer: addr,
            session,
            reason,
        });
        if self.config.max_remembered_sessions == 0 {
            return;
        }
        while self.remembered.len() >= self.config.max_remembered_sessions {
            let oldest = self
                .remembered
                .iter()
                .min_by_key(|(_, r)| r.at)
                .map(|(&s, _)| s);
            match oldest {
                Some(s) => self.remembered.remove(&s),
                None => break,
            };
        }
        self.remembered.insert(
            session,
            Remembered {
                at: now,
                closed: reason == SessionEnd::Closed,
                streams: peer.streams,
            },
        );
    }
}
