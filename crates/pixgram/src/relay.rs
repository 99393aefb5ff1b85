//! `pixgram impair` over real sockets: drives the sans-IO [`Relay`] with one listening socket,
//! one upstream socket per client, a receiving thread per socket and the caller's thread as the
//! scheduler that sends each datagram when the delay line says it is due.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pixgram_core::relay::{FlowId, Relay, RelayConfig, RelayStats, Route};

use crate::clock::Clock;
use crate::error::DriverError;
use crate::socket;

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

struct State {
    relay: Relay,
    /// Per flow; `None` if its socket could not be opened (every send to it fails).
    upstreams: Vec<Option<Arc<UdpSocket>>>,
    send_errors: u64,
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
    /// Clients seen.
    pub clients: usize,
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
                    upstreams: Vec::new(),
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
        let s = lock(&self.shared.state);
        UdpRelayStats {
            relay: s.relay.stats(),
            send_errors: s.send_errors,
            clients: s.upstreams.len(),
        }
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
        let mut state = lock(&self.shared.state);
        loop {
            let now = self.shared.clock.now();
            while let Some((route, bytes)) = state.relay.poll_transmit(now) {
                let sent = match route {
                    Route::Upstream(FlowId(i)) => match state.upstreams.get(i) {
                        Some(Some(up)) => up.send(&bytes),
                        _ => Err(ErrorKind::NotConnected.into()),
                    },
                    Route::Client(addr) => self.listen.send_to(&bytes, addr),
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
                let stats = UdpRelayStats {
                    relay: state.relay.stats(),
                    send_errors: state.send_errors,
                    clients: state.upstreams.len(),
                };
                drop(state);
                every_second(&stats);
                state = lock(&self.shared.state);
                continue;
            }
            let mut wait = TICK;
            if let Some(due) = state.relay.poll_timeout() {
                wait = wait.min(due.saturating_since(now));
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        UdpRelayStats {
            relay: state.relay.stats(),
            send_errors: state.send_errors,
            clients: state.upstreams.len(),
        }
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
                let mut buf = vec![0u8; 65_536];
                while !shared.stop.load(Ordering::Relaxed) {
                    let Ok((n, client)) = listen.recv_from(&mut buf) else {
                        continue; // a timeout (to look at the stop flag), or an ICMP error
                    };
                    let mut state = lock(&shared.state);
                    let now = shared.clock.now();
                    if let Some(flow) = state.relay.from_client(now, client, &buf[..n]) {
                        // Flows are numbered in order, so the socket's index is the flow's.
                        let up = open_upstream(to).ok();
                        if let Some(up) = &up {
                            if let Ok(h) = spawn_upstream(shared.clone(), up.clone(), flow) {
                                lock(&threads).push(h);
                            }
                        }
                        state.upstreams.push(up);
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
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("pixgram-relay-flow-{}", flow.0))
        .spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !shared.stop.load(Ordering::Relaxed) {
                let n = match socket.recv(&mut buf) {
                    Ok(n) => n,
                    // Timeouts, and ICMP errors for earlier sends (destination not there yet).
                    Err(_) => continue,
                };
                let mut state = lock(&shared.state);
                let now = shared.clock.now();
                state.relay.from_upstream(now, flow, &buf[..n]);
                drop(state);
                shared.wake.notify_one();
            }
        })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
