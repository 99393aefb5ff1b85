//! `pixgram impair` over real sockets: drives the sans-IO [`Relay`] of `pixgram-netem` (whose
//! configuration and counters are re-exported here) with one listening socket,
//! one upstream socket per client, a receiving thread per socket and the caller's thread as the
//! scheduler that sends each datagram when the delay line says it is due. Flows the relay
//! ends (idle for 30 s, or replaced when 64 are open) have their socket closed and their
//! thread stopped, so the relay runs for any number of clients over time.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pixgram_netem::relay::{FlowId, Relay};
pub use pixgram_netem::relay::{RelayConfig, RelayStats, Route};
pub use pixgram_netem::{BurstLoss, ImpairConfig, ImpairStats};

use crate::clock::Clock;
use crate::error::DriverError;
use crate::socket;

/// The longest datagram the relay reads, holds and sends (each buffer is this long).
const MAX_DATAGRAM: usize = 65_536;

/// How often receiving threads look at the stop flag.
const TICK: Duration = Duration::from_millis(50);
/// Socket buffers of the relay's sockets.
const BUFFER: usize = 4 << 20;

/// What the relay's threads share.
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    stop: AtomicBool,
    clock: Clock,
}

impl Shared {
    /// The relay's time: netem counts a [`Duration`] since the driver's epoch.
    fn now(&self) -> Duration {
        Duration::from_micros(self.clock.now().as_micros())
    }
}

struct State {
    relay: Relay,
    /// Per open flow.
    upstreams: HashMap<FlowId, Upstream>,
    send_errors: u64,
}

/// An open flow's socket towards the destination.
struct Upstream {
    /// `None` if the socket could not be opened (every send to it fails).
    socket: Option<Arc<UdpSocket>>,
    /// Set when the flow ends: its reading thread stops and the socket closes.
    closed: Arc<AtomicBool>,
}

impl State {
    /// Closes the sockets of flows the relay has ended.
    fn close_ended(&mut self) {
        while let Some(flow) = self.relay.poll_closed() {
            if let Some(up) = self.upstreams.remove(&flow) {
                up.closed.store(true, Ordering::Relaxed);
            }
        }
    }

    fn stats(&self) -> UdpRelayStats {
        let relay = self.relay.stats();
        UdpRelayStats {
            clients: usize::try_from(relay.flows_opened).unwrap_or(usize::MAX),
            open_flows: self.upstreams.len(),
            relay,
            send_errors: self.send_errors,
        }
    }
}

/// A running impairment relay. Dropping it stops its threads.
pub struct UdpRelay {
    shared: Arc<Shared>,
    listen: Arc<UdpSocket>,
    to: SocketAddr,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// Counters of the relay and of its sockets.
#[derive(Debug, Clone, Default)]
pub struct UdpRelayStats {
    /// What the impairment model did, each way.
    pub relay: RelayStats,
    /// Datagrams the kernel refused to send (the destination gone, a full buffer).
    pub send_errors: u64,
    /// Clients seen (flows opened).
    pub clients: usize,
    /// Flows open now.
    pub open_flows: usize,
}

impl UdpRelay {
    /// Listens on `listen` and forwards to `to` through `config`'s impairments.
    pub fn bind(
        listen: SocketAddr,
        to: SocketAddr,
        config: RelayConfig,
    ) -> Result<Self, DriverError> {
        let (socket, _) = socket::bind(listen, BUFFER, BUFFER)?;
        socket.set_read_timeout(Some(TICK))?;
        let relay = UdpRelay {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    relay: Relay::new(config),
                    upstreams: HashMap::new(),
                    send_errors: 0,
                }),
                wake: Condvar::new(),
                stop: AtomicBool::new(false),
                clock: Clock::new(),
            }),
            listen: Arc::new(socket),
            to,
            threads: Arc::new(Mutex::new(Vec::new())),
        };
        relay.spawn_listener()?;
        Ok(relay)
    }

    /// The address clients send to.
    pub fn local_addr(&self) -> Result<SocketAddr, DriverError> {
        Ok(self.listen.local_addr()?)
    }

    /// Counters so far.
    pub fn stats(&self) -> UdpRelayStats {
        lock(&self.shared.state).stats()
    }

    /// Sends datagrams as they fall due until `stop` is set or `deadline` passes, calling
    /// `every_second` once a second.
    pub fn run(
        &self,
        stop: &AtomicBool,
        deadline: Option<Instant>,
        mut every_second: impl FnMut(&UdpRelayStats),
    ) -> UdpRelayStats {
        let mut next_report = Instant::now() + Duration::from_secs(1);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut state = lock(&self.shared.state);
        loop {
            let now = self.shared.now();
            while let Some(t) = state.relay.poll_transmit(now, &mut buf) {
                let bytes = t.bytes(&buf);
                let sent = match t.destination {
                    Route::Upstream(flow) => match state.upstreams.get(&flow) {
                        Some(Upstream {
                            socket: Some(up), ..
                        }) => up.send(bytes),
                        _ => Err(ErrorKind::NotConnected.into()),
                    },
                    Route::Client(addr) => self.listen.send_to(bytes, addr),
                };
                if sent.is_err() {
                    state.send_errors += 1;
                }
            }
            let wall = Instant::now();
            if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| wall >= d) {
                break;
            }
            if wall >= next_report {
                next_report += Duration::from_secs(1);
                state.relay.handle_timeout(now);
                state.close_ended();
                lock(&self.threads).retain(|h| !h.is_finished());
                let stats = state.stats();
                drop(state);
                every_second(&stats);
                state = lock(&self.shared.state);
                continue;
            }
            let mut wait = TICK;
            if let Some(due) = state.relay.poll_timeout() {
                wait = wait.min(due.saturating_sub(now));
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        state.stats()
    }

    /// The thread reading the listening socket; it opens a flow's upstream socket (and its
    /// reading thread) when a new client appears.
    fn spawn_listener(&self) -> Result<(), DriverError> {
        let shared = self.shared.clone();
        let listen = self.listen.clone();
        let threads = self.threads.clone();
        let to = self.to;
        let handle = std::thread::Builder::new()
            .name("pixgram-relay-listen".into())
            .spawn(move || {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                while !shared.stop.load(Ordering::Relaxed) {
                    let Ok((n, client)) = listen.recv_from(&mut buf) else {
                        continue; // a timeout (to look at the stop flag), or an ICMP error
                    };
                    let mut state = lock(&shared.state);
                    let now = shared.now();
                    if let Some(flow) = state.relay.from_client(now, client, &buf[..n]) {
                        // A new client may have taken an old flow's place: close that first.
                        state.close_ended();
                        let socket = open_upstream(to).ok();
                        let closed = Arc::new(AtomicBool::new(false));
                        if let Some(up) = &socket {
                            let (sh, up, cl) = (shared.clone(), up.clone(), closed.clone());
                            if let Ok(h) = spawn_upstream(sh, up, flow, cl) {
                                lock(&threads).push(h);
                            }
                        }
                        state.upstreams.insert(flow, Upstream { socket, closed });
                    }
                    drop(state);
                    shared.wake.notify_one();
                }
            })?;
        lock(&self.threads).push(handle);
        Ok(())
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let handles: Vec<_> = lock(&self.threads).drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
    }
}

fn open_upstream(to: SocketAddr) -> Result<Arc<UdpSocket>, DriverError> {
    let (s, _) = socket::bind(socket::any_local_for(to), BUFFER, BUFFER)?;
    s.connect(to)?;
    s.set_read_timeout(Some(TICK))?;
    Ok(Arc::new(s))
}

fn spawn_upstream(
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    flow: FlowId,
    closed: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("pixgram-relay-flow-{}", flow.0))
        .spawn(move || {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            while !shared.stop.load(Ordering::Relaxed) && !closed.load(Ordering::Relaxed) {
                let n = match socket.recv(&mut buf) {
                    Ok(n) => n,
                    // Timeouts, and ICMP errors for earlier sends (destination not there yet).
                    Err(_) => continue,
                };
                let mut state = lock(&shared.state);
                let now = shared.now();
                state.relay.from_upstream(now, flow, &buf[..n]);
                drop(state);
                shared.wake.notify_one();
            }
        })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
