//! JetStream acknowledgements awaited off the receive loop: a frame is published at once and
//! its acknowledgement future handed to a task, so that the next frame need not wait a round
//! trip to the server. At most [`AckQueue::limit`] frames wait for theirs (a semaphore: the
//! limit and the counter); each outcome, [`Published::Stored`] or [`Published::Failed`] (an
//! error or no acknowledgement in time), is kept under the frame's ticket until
//! [`AckQueue::take`], in the order the acknowledgements came.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use std::future::Future;

use tokio::runtime::Runtime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Published;

/// One frame's outcome: (ticket, what JetStream made of it, its payload's length).
pub(crate) type AckOutcome = (u64, Published, usize);

/// What a caller runs when an outcome is ready (wakes its receive loop).
pub type OnAck = Box<dyn Fn() + Send + Sync>;

/// Frames awaiting their JetStream acknowledgement: see the module's documentation.
pub(crate) struct AckQueue {
    room: Arc<Semaphore>,
    limit: usize,
    done: Arc<Mutex<Vec<AckOutcome>>>,
    on_ack: Arc<OnceLock<OnAck>>,
    next_ticket: u64,
}

impl AckQueue {
    /// At most `limit` (at least 1) frames awaiting their acknowledgement.
    pub(crate) fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        AckQueue {
            room: Arc::new(Semaphore::new(limit)),
            limit,
            done: Arc::new(Mutex::new(Vec::new())),
            on_ack: Arc::new(OnceLock::new()),
            next_ticket: 0,
        }
    }

    /// Frames published whose outcome is not ready yet.
    pub(crate) fn awaiting(&self) -> usize {
        self.limit - self.room.available_permits()
    }

    /// Runs `f` whenever an outcome becomes ready (set once; later calls are ignored).
    pub(crate) fn on_ack(&self, f: OnAck) {
        let _ = self.on_ack.set(f);
    }

    /// Room for one more frame, waiting at most `wait`; `None` if none came in time.
    pub(crate) fn room(&self, runtime: &Runtime, wait: Duration) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = self.room.clone().try_acquire_owned() {
            return Some(p);
        }
        // The timer is made inside the runtime (it needs its time driver).
        let room = self.room.clone();
        runtime
            .block_on(async move { tokio::time::timeout(wait, room.acquire_owned()).await })
            .ok()?
            .ok()
    }

    /// Awaits `ack` (the stream's sequence number, or why not; at most `timeout`) on
    /// `runtime`, holding `room` until its outcome is kept; the frame's ticket.
    pub(crate) fn track(
        &mut self,
        runtime: &Runtime,
        ack: impl Future<Output = Result<u64, String>> + Send + 'static,
        timeout: Duration,
        len: usize,
        room: OwnedSemaphorePermit,
    ) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let (done, on_ack) = (self.done.clone(), self.on_ack.clone());
        runtime.spawn(async move {
            let outcome = match tokio::time::timeout(timeout, ack).await {
                Ok(Ok(sequence)) => Published::Stored(sequence),
                Ok(Err(e)) => Published::Failed(e),
                Err(_) => Published::Failed(format!(
                    "no JetStream acknowledgement within {} ms",
                    timeout.as_millis()
                )),
            };
            lock(&done).push((ticket, outcome, len));
            // Given back after the outcome is kept: `settle` never returns with one missing.
            drop(room);
            if let Some(f) = on_ack.get() {
                f();
            }
        });
        ticket
    }

    /// Moves every outcome ready so far into `out`.
    pub(crate) fn take(&self, out: &mut Vec<AckOutcome>) {
        out.append(&mut lock(&self.done));
    }

    /// Waits (at most `timeout`) until every frame's outcome is ready; whether they all are.
    pub(crate) fn settle(&self, runtime: &Runtime, timeout: Duration) -> bool {
        let all = u32::try_from(self.limit).unwrap_or(u32::MAX);
        let room = self.room.clone();
        runtime
            .block_on(
                async move { tokio::time::timeout(timeout, room.acquire_many_owned(all)).await },
            )
            .is_ok_and(|r| r.is_ok())
    }
}

fn lock(done: &Mutex<Vec<AckOutcome>>) -> std::sync::MutexGuard<'_, Vec<AckOutcome>> {
    // Every change is one push or one append: a panic elsewhere leaves it whole.
    done.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for AckQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckQueue")
            .field("limit", &self.limit)
            .field("awaiting", &self.awaiting())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::oneshot;

    fn runtime() -> Runtime {
        super::super::runtime().unwrap()
    }

    /// A frame whose acknowledgement the test gives (`Ok(seq)`, `Err`) or withholds.
    fn publish(
        q: &mut AckQueue,
        rt: &Runtime,
        timeout: Duration,
    ) -> (u64, oneshot::Sender<Result<u64, String>>) {
        let (tx, rx) = oneshot::channel();
        let room = q.room(rt, Duration::ZERO).expect("room");
        let ack = async move { rx.await.unwrap_or_else(|_| Err("dropped".into())) };
        (q.track(rt, ack, timeout, 100, room), tx)
    }

    fn wait_for(q: &AckQueue, n: usize, out: &mut Vec<AckOutcome>) {
        // Bounded: the tasks run on the queue's runtime thread.
        for _ in 0..1_000 {
            q.take(out);
            if out.len() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("{} of {n} outcomes", out.len());
    }

    #[test]
    fn outcomes_come_under_their_tickets_in_the_order_the_acknowledgements_do() {
        let rt = runtime();
        let mut q = AckQueue::new(8);
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        q.on_ack(Box::new(move || {
            w.fetch_add(1, Ordering::Relaxed);
        }));
        let long = Duration::from_secs(60);
        let (a, ta) = publish(&mut q, &rt, long);
        let (b, tb) = publish(&mut q, &rt, long);
        let (c, tc) = publish(&mut q, &rt, long);
        assert_eq!(q.awaiting(), 3);
        tc.send(Ok(30)).unwrap();
        let mut out = Vec::new();
        wait_for(&q, 1, &mut out);
        tb.send(Err("stream full".into())).unwrap();
        wait_for(&q, 2, &mut out);
        ta.send(Ok(10)).unwrap();
        wait_for(&q, 3, &mut out);
        assert_eq!(
            out,
            vec![
                (c, Published::Stored(30), 100),
                (b, Published::Failed("stream full".into()), 100),
                (a, Published::Stored(10), 100),
            ]
        );
        assert!(q.settle(&rt, Duration::from_secs(5)));
        assert_eq!(q.awaiting(), 0);
        assert_eq!(woken.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn no_room_past_the_limit_until_an_outcome_is_kept() {
        let rt = runtime();
        let mut q = AckQueue::new(2);
        let long = Duration::from_secs(60);
        let (_, t0) = publish(&mut q, &rt, long);
        let (_, _t1) = publish(&mut q, &rt, long);
        assert_eq!(q.awaiting(), 2);
        assert!(q.room(&rt, Duration::from_millis(5)).is_none(), "full");
        assert!(
            !q.settle(&rt, Duration::from_millis(5)),
            "two still awaited"
        );
        t0.send(Ok(1)).unwrap();
        let room = q.room(&rt, Duration::from_secs(5));
        assert!(room.is_some(), "the first outcome gave its room back");
        let mut out = Vec::new();
        q.take(&mut out);
        assert_eq!(out.len(), 1, "kept before its room was given back");
    }

    #[test]
    fn an_acknowledgement_overdue_fails_its_frame() {
        let rt = runtime();
        let mut q = AckQueue::new(4);
        let (t, _never) = publish(&mut q, &rt, Duration::from_millis(20));
        let mut out = Vec::new();
        wait_for(&q, 1, &mut out);
        assert_eq!(out[0].0, t);
        assert!(
            matches!(&out[0].1, Published::Failed(why) if why.contains("within 20 ms")),
            "{out:?}"
        );
        assert!(q.settle(&rt, Duration::from_secs(5)));
    }
}
