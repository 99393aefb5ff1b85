//! What the NATS sink and source share: the errors, the subjects (the KEY of a sender's
//! stream, checks), the header's size as the server counts it, and the client with its
//! one-thread runtime.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use pixgram_core::StreamId;
use tokio::runtime::Runtime;

/// The header that carries a frame's metadata as JSON.
pub const META_HEADER: &str = "Pixgram-Meta";

/// The subject prefix when none is given.
pub const DEFAULT_PREFIX: &str = "pixgram";

/// What can go wrong talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// No connection to the server.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server asked for.
        url: String,
        /// What the client said.
        reason: String,
    },
    /// The tokio runtime the client runs on could not start.
    #[error("cannot start the NATS client's runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// A subject prefix or subject NATS would not accept.
    #[error("`{0}` is not a valid NATS subject (no spaces; `*` and `>` only as whole tokens)")]
    Subject(String),
    /// The JetStream stream or consumer could not be created or found.
    #[error("JetStream {what}: {reason}")]
    JetStream {
        /// Which step.
        what: String,
        /// What the server said.
        reason: String,
    },
    /// A subscription or fetch failed.
    #[error("NATS subscription to {subject}: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// What the client said.
        reason: String,
    },
}

/// The KEY of a sender's stream in subjects: `SENDER.STREAM`, two tokens, the sender its
/// address with every character other than a letter or digit made `-` (`127.0.0.1:40000`
/// becomes `127-0-0-1-40000`, `[::1]:40000` becomes `---1--40000`) and the stream its
/// number, so `pixgram.frames.*.0` is stream 0 of every sender.
pub fn nats_key(peer: SocketAddr, stream: StreamId) -> String {
    let sender: String = peer
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{sender}.{}", stream.0)
}

/// Checks a subject (`wildcards`: a subscription's, where `*` and `>` may be whole tokens).
pub fn check_subject(subject: &str, wildcards: bool) -> Result<(), NatsError> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let last = tokens.len() - 1;
    let ok = tokens.iter().enumerate().all(|(i, t)| {
        !t.is_empty()
            && !t.chars().any(|c| c.is_whitespace() || c.is_control())
            && match *t {
                "*" => wildcards,
                ">" => wildcards && i == last,
                t => !t.contains(['*', '>']),
            }
    });
    if ok {
        Ok(())
    } else {
        Err(NatsError::Subject(subject.to_string()))
    }
}

/// The bytes headers take on the wire (`NATS/1.0\r\n`, `Name: value\r\n` each, `\r\n`), as
/// the server counts them against `max_payload`.
pub(crate) fn headers_wire_len(headers: &HeaderMap) -> usize {
    let mut len = "NATS/1.0\r\n".len() + 2;
    for (name, values) in headers.iter() {
        for v in values {
            len += AsRef::<str>::as_ref(name).len() + 2 + v.as_str().len() + 2;
        }
    }
    len
}

/// The runtime the client runs on: one worker thread, so the receive loop keeps its core.
pub(crate) fn runtime() -> Result<Runtime, NatsError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("pixgram-nats")
        .enable_all()
        .build()?)
}

/// A client of `url`: no retries on the first connection (a wrong address fails now, in
/// one line), reconnecting afterwards. `client_capacity`: commands queued ahead of the socket
/// at most; `subscription_capacity`: messages a subscription holds at most (past it NATS drops
/// them for this client, a slow consumer event, which `slow` counts).
pub(crate) async fn connect_client(
    url: &str,
    timeout: Duration,
    client_capacity: usize,
    subscription_capacity: usize,
    slow: Option<Arc<AtomicU64>>,
) -> Result<async_nats::Client, NatsError> {
    let options = async_nats::ConnectOptions::new()
        .name("pixgram")
        .connection_timeout(timeout)
        .client_capacity(client_capacity)
        .subscription_capacity(subscription_capacity)
        .event_callback(move |event| {
            let slow = slow.clone();
            async move {
                if let (async_nats::Event::SlowConsumer(_), Some(s)) = (event, &slow) {
                    s.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    let connect = options.connect(url);
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(NatsError::Connect {
            url: url.to_string(),
            reason: e.to_string(),
        }),
        Err(_) => Err(NatsError::Connect {
            url: url.to_string(),
            reason: format!("no answer within {} ms", timeout.as_millis()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_two_tokens_naming_sender_and_stream() {
        let v4: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let v6: SocketAddr = "[::1]:40000".parse().unwrap();
        assert_eq!(nats_key(v4, StreamId(3)), "127-0-0-1-40000.3");
        assert_eq!(nats_key(v6, StreamId(0)), "---1--40000.0");
        let subject = format!("pixgram.frames.{}", nats_key(v6, StreamId(0)));
        assert!(check_subject(&subject, false).is_ok());
    }

    #[test]
    fn subjects_are_checked() {
        assert!(check_subject("pixgram", false).is_ok());
        assert!(check_subject("site.a", false).is_ok());
        assert!(check_subject("pixgram.frames.>", true).is_ok());
        assert!(check_subject("pixgram.*.x", true).is_ok());
        for bad in ["", "a..b", "a b", "pixgram.>", "pix*", "a.>.b"] {
            assert!(check_subject(bad, false).is_err(), "{bad:?}");
        }
        assert!(check_subject("a.>.b", true).is_err());
    }

    #[test]
    fn header_length_counts_what_the_server_counts() {
        let mut h = HeaderMap::new();
        h.insert(META_HEADER, "{\"a\":1}");
        // NATS/1.0\r\n + "Pixgram-Meta: {"a":1}\r\n" + \r\n
        assert_eq!(headers_wire_len(&h), 10 + 12 + 2 + 7 + 2 + 2);
    }
}
