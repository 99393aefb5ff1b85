//! The one receive loop: wait for the next event of a receiver (pixgram's own, or the original
//! scripts' format), hand it to a [`Handler`], until told to stop, a deadline, or the handler
//! is done; a periodic tick in between for progress. `pixgram recv`, `recv --compat seed` and
//! `pixgram demo` all run it; what they do with each event (usually: give frames to
//! [`crate::sink::Sinks`]) is their handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pixgram_core::ReceiverEvent;

use crate::compat::seed::{SeedServer, SeedServerEvent};
use crate::error::DriverError;
use crate::receiver::UdpReceiver;

/// Something events come from.
pub trait EventSource {
    /// What it yields.
    type Event;
    /// The next event, waiting at most until `until`; `None` if nothing came.
    fn next_event(&mut self, until: Instant) -> Result<Option<Self::Event>, DriverError>;
}

impl EventSource for UdpReceiver {
    type Event = ReceiverEvent;
    fn next_event(&mut self, until: Instant) -> Result<Option<ReceiverEvent>, DriverError> {
        UdpReceiver::next_event(self, Some(until))
    }
}

impl EventSource for SeedServer {
    type Event = SeedServerEvent;
    fn next_event(&mut self, until: Instant) -> Result<Option<SeedServerEvent>, DriverError> {
        Ok(SeedServer::next_event(self, until))
    }
}

/// An event source with a [`UdpReceiver`] underneath: a plain receiver, a
/// [`crate::hub::Hub`], a [`crate::hub::Subscriber`]. Handlers confirm frames and read
/// counters through it.
pub trait ReceiverDriver: EventSource<Event = ReceiverEvent> {
    /// The receiver.
    fn udp(&self) -> &UdpReceiver;
    /// The receiver, to confirm frames with.
    fn udp_mut(&mut self) -> &mut UdpReceiver;
    /// What a hub told this subscriber since the last call (only a
    /// [`crate::hub::Subscriber`] has anything to say).
    fn poll_notice(&mut self) -> Option<crate::hub::SubscriberNotice> {
        None
    }
}

impl ReceiverDriver for UdpReceiver {
    fn udp(&self) -> &UdpReceiver {
        self
    }
    fn udp_mut(&mut self) -> &mut UdpReceiver {
        self
    }
}

impl ReceiverDriver for crate::hub::Hub {
    fn udp(&self) -> &UdpReceiver {
        self.receiver()
    }
    fn udp_mut(&mut self) -> &mut UdpReceiver {
        self.receiver_mut()
    }
}

impl ReceiverDriver for crate::hub::Subscriber {
    fn udp(&self) -> &UdpReceiver {
        self.receiver()
    }
    fn udp_mut(&mut self) -> &mut UdpReceiver {
        self.receiver_mut()
    }
    fn poll_notice(&mut self) -> Option<crate::hub::SubscriberNotice> {
        crate::hub::Subscriber::poll_notice(self)
    }
}

/// What a receive loop does with what comes.
pub trait Handler<S: EventSource> {
    /// What ends the loop early.
    type Error: From<DriverError>;
    /// Takes one event (`source`, to confirm a frame or read its counters).
    fn event(&mut self, source: &mut S, event: S::Event) -> Result<(), Self::Error>;
    /// Called at every turn of the loop, after the event if one came: takes what work done
    /// off the loop has reported (files a saver pool made durable, to confirm them). A
    /// [`crate::receiver::ReceiverWaker`] ends the source's wait so this runs promptly.
    fn collect(&mut self, _source: &mut S) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Whether it wants nothing more.
    fn done(&self) -> bool {
        false
    }
    /// Called every [`Until::tick`] (progress lines).
    fn tick(&mut self, _source: &mut S) {}
}

/// When a receive loop ends, besides its handler being done.
#[derive(Debug, Clone)]
pub struct Until {
    /// Set by a signal handler (Ctrl-C).
    pub stop: Option<Arc<AtomicBool>>,
    /// A time.
    pub deadline: Option<Instant>,
    /// How often the stop flag and the deadline are checked at least.
    pub poll: Duration,
    /// How often the handler's tick runs; `None`: never.
    pub tick: Option<Duration>,
}

impl Default for Until {
    fn default() -> Self {
        Until {
            stop: None,
            deadline: None,
            poll: Duration::from_millis(200),
            tick: None,
        }
    }
}

impl Until {
    fn over(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Runs `handler` on `source`'s events until `until` or the handler says it is done.
pub fn receive<S: EventSource, H: Handler<S>>(
    source: &mut S,
    until: &Until,
    handler: &mut H,
) -> Result<(), H::Error> {
    let mut last_tick = Instant::now();
    while !until.over() && !handler.done() {
        let wake = Instant::now() + until.poll;
        let wake = until.deadline.map_or(wake, |d| d.min(wake));
        if let Some(event) = source.next_event(wake)? {
            handler.event(source, event)?;
        }
        handler.collect(source)?;
        if until.tick.is_some_and(|t| last_tick.elapsed() > t) {
            handler.tick(source);
            last_tick = Instant::now();
        }
    }
    Ok(())
}
