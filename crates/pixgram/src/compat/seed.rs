//! The original Python scripts' format ("seed") over UDP: [`SeedServer`] serves their clients,
//! [`SeedClient`] drives their servers. The rules (framing, resynchronisation, limits, replies)
//! live in [`pixgram_core::compat_seed`]; this module only moves datagrams and time.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pixgram_core::compat_seed::{self, SeedEvent, SeedReceiver, IMAGE_REPLY, MESSAGE_REPLY};
pub use pixgram_core::compat_seed::{BrokenReason, SeedConfig, SeedStats};

use crate::clock::Clock;
use crate::error::DriverError;
use crate::socket::{self, BufferGrant};

/// How often the port threads look at the stop flag and the idle timeout.
const TICK: Duration = Duration::from_millis(50);
/// Events waiting for the application; past this the port threads wait (and the kernel's
/// socket buffer absorbs, then drops, what comes meanwhile).
const EVENT_QUEUE: usize = 64;

/// What a [`SeedServer`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SeedServerEvent {
    /// A whole image on the image port.
    Image {
        /// Who sent it.
        peer: SocketAddr,
        /// Its bytes.
        bytes: Vec<u8>,
        /// True if it came in one datagram.
        single_datagram: bool,
    },
    /// An image given up (counted; the sender got no reply for it).
    Broken {
        /// Who sent it.
        peer: SocketAddr,
        /// Why.
        reason: BrokenReason,
        /// Bytes received of it.
        received: u64,
        /// The length its header declared.
        declared: Option<i64>,
    },
    /// A JSON message on the message port (answered).
    Message {
        /// Who sent it.
        peer: SocketAddr,
        /// The document.
        json: serde_json::Value,
    },
    /// A datagram on the message port that is not JSON (not answered).
    BadMessage {
        /// Who sent it.
        peer: SocketAddr,
        /// What is wrong with it.
        error: String,
    },
}

/// Which port a thread serves.
#[derive(Debug, Clone, Copy)]
enum Port {
    Images,
    Messages,
}

/// A server for the original scripts' clients: an image port and an optional message port,
/// each served by its own thread.
pub struct SeedServer {
    events: Receiver<SeedServerEvent>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    image_stats: Arc<Mutex<SeedStats>>,
    message_stats: Arc<Mutex<SeedStats>>,
    image_addr: SocketAddr,
    message_addr: Option<SocketAddr>,
    grant: BufferGrant,
}

impl SeedServer {
    /// Binds the image port `images` and, if given, the message port `messages`.
    pub fn bind(
        images: SocketAddr,
        messages: Option<SocketAddr>,
        config: SeedConfig,
        recv_buffer: usize,
    ) -> Result<Self, DriverError> {
        let (image_socket, grant) = socket::bind(images, recv_buffer, 1 << 16)?;
        let message_socket = match messages {
            Some(addr) => Some(socket::bind(addr, 1 << 20, 1 << 16)?.0),
            None => None,
        };
        let (tx, events) = mpsc::sync_channel(EVENT_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let image_stats = Arc::new(Mutex::new(SeedStats::default()));
        let message_stats = Arc::new(Mutex::new(SeedStats::default()));
        let image_addr = image_socket.local_addr()?;
        let message_addr = match &message_socket {
            Some(s) => Some(s.local_addr()?),
            None => None,
        };
        let mut threads = vec![spawn_port(
            Port::Images,
            image_socket,
            config.clone(),
            tx.clone(),
            stop.clone(),
            image_stats.clone(),
        )?];
        if let Some(s) = message_socket {
            threads.push(spawn_port(
                Port::Messages,
                s,
                config,
                tx,
                stop.clone(),
                message_stats.clone(),
            )?);
        }
        Ok(SeedServer {
            events,
            stop,
            threads,
            image_stats,
            message_stats,
            image_addr,
            message_addr,
            grant,
        })
    }

    /// Where the image port listens.
    pub fn image_addr(&self) -> SocketAddr {
        self.image_addr
    }

    /// Where the message port listens, if there is one.
    pub fn message_addr(&self) -> Option<SocketAddr> {
        self.message_addr
    }

    /// The image port's receive buffer, as granted by the kernel.
    pub fn buffer_grant(&self) -> BufferGrant {
        self.grant
    }

    /// The next event, waiting until `deadline` at most.
    pub fn next_event(&self, deadline: Instant) -> Option<SeedServerEvent> {
        let wait = deadline.saturating_duration_since(Instant::now());
        self.events.recv_timeout(wait).ok()
    }

    /// Counters of the image port and of the message port.
    pub fn stats(&self) -> (SeedStats, SeedStats) {
        let get = |s: &Mutex<SeedStats>| s.lock().map(|g| g.clone()).unwrap_or_default();
        (get(&self.image_stats), get(&self.message_stats))
    }
}

impl Drop for SeedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblock port threads waiting for room in the event queue.
        while self.events.try_recv().is_ok() {}
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn spawn_port(
    port: Port,
    socket: UdpSocket,
    config: SeedConfig,
    events: SyncSender<SeedServerEvent>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<SeedStats>>,
) -> Result<JoinHandle<()>, DriverError> {
    socket.set_read_timeout(Some(TICK))?;
    let name = format!("pixgram-seed-{port:?}").to_lowercase();
    let handle = std::thread::Builder::new()
        .name(name)
        .spawn(move || serve_port(port, &socket, config, &events, &stop, &stats))?;
    Ok(handle)
}

/// Sends every reply the core has released. A lost reply is like one lost on the way: the
/// original client waits and gives up on its own.
fn send_replies(rx: &mut SeedReceiver, socket: &UdpSocket) {
    let mut buf = [0u8; compat_seed::MAX_SEED_REPLY_LEN];
    while let Some(t) = rx.poll_transmit(&mut buf) {
        let _ = socket.send_to(t.bytes(&buf), t.destination);
    }
}

/// One port's loop: datagrams into the core, replies out, events to the application.
fn serve_port(
    port: Port,
    socket: &UdpSocket,
    config: SeedConfig,
    events: &SyncSender<SeedServerEvent>,
    stop: &AtomicBool,
    stats: &Mutex<SeedStats>,
) {
    let clock = Clock::new();
    let mut rx = SeedReceiver::new(config);
    let mut buf = vec![0u8; 65_536];
    let mut timeout = TICK;
    while !stop.load(Ordering::Relaxed) {
        // Wake for the core's next deadline (a deferred reply, a stalled image), TICK at most.
        let want = rx
            .poll_timeout()
            .map_or(TICK, |t| t.saturating_since(clock.now()))
            .clamp(Duration::from_millis(1), TICK);
        if want != timeout && socket.set_read_timeout(Some(want)).is_ok() {
            timeout = want;
        }
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => match port {
                Port::Images => rx.handle_image(peer, &buf[..n], clock.now()),
                Port::Messages => rx.handle_message(peer, &buf[..n], clock.now()),
            },
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // ICMP errors from earlier replies and the like: nothing to do with this datagram.
            Err(_) => {}
        }
        let now = clock.now();
        if rx.poll_timeout().is_some_and(|t| t <= now) {
            rx.handle_timeout(now);
        }
        // Deferred replies released by the timeout or by this datagram.
        send_replies(&mut rx, socket);
        while let Some(event) = rx.poll_event() {
            let out = match event {
                SeedEvent::Image {
                    peer,
                    bytes,
                    single_datagram,
                } => SeedServerEvent::Image {
                    peer,
                    bytes,
                    single_datagram,
                },
                SeedEvent::Broken {
                    peer,
                    reason,
                    received,
                    declared,
                } => SeedServerEvent::Broken {
                    peer,
                    reason,
                    received,
                    declared,
                },
                SeedEvent::Message { peer, bytes } => {
                    match serde_json::from_slice::<serde_json::Value>(&bytes) {
                        Ok(json) => {
                            rx.acknowledge_message(peer);
                            SeedServerEvent::Message { peer, json }
                        }
                        Err(e) => {
                            rx.reject_message();
                            SeedServerEvent::BadMessage {
                                peer,
                                error: e.to_string(),
                            }
                        }
                    }
                }
            };
            send_replies(&mut rx, socket);
            if events.send(out).is_err() {
                return; // the server was dropped
            }
        }
        if let Ok(mut s) = stats.lock() {
            s.clone_from(rx.stats());
        }
    }
}

/// A client for the original scripts' servers: stop-and-wait, one image (or message) at a time.
pub struct SeedClient {
    socket: UdpSocket,
    /// Bytes per second to pace chunks at; `None` sends them back to back.
    rate: Option<f64>,
}

impl SeedClient {
    /// A client sending to `to`, pacing its chunks at `rate` bytes per second if given.
    pub fn connect(to: SocketAddr, rate: Option<f64>) -> Result<Self, DriverError> {
        let (socket, _) = socket::bind(socket::any_local_for(to), 1 << 16, 4 << 20)?;
        socket.connect(to)?;
        Ok(SeedClient { socket, rate })
    }

    /// Sends `image` as a header and 1024-byte chunks, then waits up to `timeout` for
    /// `get message!!!`. Returns the round-trip time, or `None` if no reply came.
    pub fn send_image(
        &mut self,
        image: &[u8],
        timeout: Duration,
    ) -> Result<Option<Duration>, DriverError> {
        self.discard_stale_replies()?;
        let start = Instant::now();
        self.send(&compat_seed::header(image.len()))?;
        let mut sent = compat_seed::HEADER_LEN;
        for chunk in compat_seed::chunks(image) {
            if let Some(rate) = self.rate {
                let due = start + Duration::from_secs_f64(sent as f64 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            self.send(chunk)?;
            sent += chunk.len();
        }
        self.await_reply(IMAGE_REPLY, start, timeout)
    }

    /// Sends one JSON document in one datagram and waits up to `timeout` for `get the msg`.
    pub fn send_message(
        &mut self,
        json: &[u8],
        timeout: Duration,
    ) -> Result<Option<Duration>, DriverError> {
        self.discard_stale_replies()?;
        let start = Instant::now();
        self.send(json)?;
        self.await_reply(MESSAGE_REPLY, start, timeout)
    }

    fn send(&self, datagram: &[u8]) -> Result<(), DriverError> {
        self.socket.send(datagram)?;
        Ok(())
    }

    /// Waits for `expected` from the server; anything else is ignored.
    fn await_reply(
        &self,
        expected: &[u8],
        start: Instant,
        timeout: Duration,
    ) -> Result<Option<Duration>, DriverError> {
        let deadline = start + timeout;
        let mut buf = [0u8; 64];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.socket.set_read_timeout(Some(left))?;
            match self.socket.recv(&mut buf) {
                Ok(n) if &buf[..n] == expected => return Ok(Some(start.elapsed())),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Drops replies that came after their wait ended, so they are not taken for the next one.
    fn discard_stale_replies(&self) -> Result<(), DriverError> {
        self.socket.set_nonblocking(true)?;
        let mut buf = [0u8; 64];
        while self.socket.recv(&mut buf).is_ok() {}
        self.socket.set_nonblocking(false)?;
        Ok(())
    }
}
