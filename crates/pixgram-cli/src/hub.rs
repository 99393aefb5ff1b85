//! `pixgram hub` (receive like recv, serve every frame to subscribers) and `pixgram recv
//! --from HUB` (subscribe). The library's hub and subscriber do the work; this reads flags
//! and prints.

use std::time::Duration;

use anyhow::bail;
use pixgram::hub::backlog::BacklogLimits;
use pixgram::hub::{
    valid_filter, Hub, HubOptions, Mode, Subscriber, SubscriberFigures, MAX_FILTERS,
};

use crate::cli::{resolve, HubArgs, RecvArgs};
use crate::flags;
use crate::recv::{announce, bind, prepare, receiver_config, serve};

pub fn run(args: HubArgs) -> anyhow::Result<()> {
    let recv = &args.recv;
    if recv.from.is_some() {
        bail!("--from subscribes a receiver to a hub; a hub receives on --listen");
    }
    if recv.compat.is_some() || recv.rtp.rtp {
        bail!("a hub speaks pixgram's own protocol: --compat and --rtp belong to recv");
    }
    if !(args.keepalive_timeout > 0.0 && args.keepalive_timeout <= 3600.0) {
        bail!("--keepalive-timeout must be between 0 and 3600 seconds");
    }
    let events = prepare(recv)?;
    let key = flags::key(recv.key_file.as_deref())?;
    let rx = bind(recv, key.as_ref())?;
    let mut hub = Hub::new(
        rx,
        HubOptions {
            max_subscribers: args.max_subscribers.max(1),
            backlog: BacklogLimits {
                items: args.max_backlog_frames.max(1),
                bytes: args.max_backlog_bytes,
            },
            keepalive_timeout: Duration::from_secs_f64(args.keepalive_timeout),
            key: key.clone(),
        },
    )?;
    announce(recv, hub.receiver(), key.is_some(), "hub listening on")?;
    eprintln!(
        "pixgram: subscribers: pixgram recv --from {} [--latest] [--stream KEY]",
        hub.local_addr()?
    );
    serve(recv, &mut hub, events)?;
    hub.shutdown();
    let s = hub.subscription_stats();
    let h = hub.stats();
    eprintln!(
        "hub: {} frames and messages received, {} copies queued for subscribers, {} not \
         forwarded (over {} streams); subscriptions: {} started, {} ended by UNSUBSCRIBE, {} \
         expired (no KEEPALIVE), {} replaced, {} dropped (their sender found them gone), {} \
         refused (full: --max-subscribers); {} tokens sent, {} withheld over budget, {} \
         invalid or expired; {} malformed and {} unexpected subscription datagrams, {} dropped \
         (too many at once)",
        h.received,
        h.queued,
        h.over_origins,
        pixgram::hub::MAX_ORIGINS,
        s.subscribed,
        s.unsubscribed,
        s.expired,
        s.replaced,
        s.dropped,
        s.over_limit,
        s.tokens_sent,
        s.tokens_limited,
        s.tokens_invalid,
        s.malformed,
        s.unexpected,
        h.control_dropped,
    );
    for f in hub.subscribers() {
        eprintln!("{}", subscriber_line(&f));
    }
    Ok(())
}

fn subscriber_line(f: &SubscriberFigures) -> String {
    let l = &f.link;
    format!(
        "subscriber {} ({}): {} sent, {} acknowledged, {} lost; {} skipped in {} resyncs \
         (fell behind), {} replaced by a newer frame, {} messages dropped; {} datagrams, {:.1} \
         MB; pacing {:.0} Mbit/s, smoothed RTT {:.2} ms at the end{}",
        f.addr,
        match f.mode {
            Mode::Reliable => "every frame",
            Mode::Latest => "latest frame",
        },
        l.sent,
        l.acked,
        l.lost,
        l.backlog.skipped,
        l.backlog.resyncs,
        l.backlog.replaced,
        l.backlog.messages_dropped,
        l.datagrams,
        l.bytes as f64 / 1e6,
        l.pacing_bps as f64 / 1e6,
        l.srtt_us as f64 / 1e3,
        match f.ended {
            Some(r) => format!("; ended: {r:?}"),
            None => String::new(),
        }
    )
}

/// `recv --from HUB`: subscribe, then receive into the sinks asked for like recv does.
pub fn subscribe(args: RecvArgs) -> anyhow::Result<()> {
    let from = args.from.as_deref().unwrap_or_default();
    let hub = resolve("--from", from)?;
    if args.streams.len() > MAX_FILTERS {
        bail!("--stream: at most {MAX_FILTERS} of them");
    }
    if let Some(bad) = args.streams.iter().find(|s| !valid_filter(s)) {
        bail!("--stream `{bad}` must be 1 to 100 bytes");
    }
    let events = prepare(&args)?;
    let key = flags::key(args.key_file.as_deref())?;
    let local = if args.listen.is_empty() {
        if hub.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse()?
    } else {
        resolve("--listen", &args.listen)?
    };
    let config = pixgram::ReceiverConfig {
        // Every stream of every publisher arrives on the hub's one session.
        max_streams_per_peer: args.max_streams_per_peer.max(1_024),
        ..receiver_config(&args)
    };
    let mut builder = Subscriber::builder(hub)
        .mode(if args.latest {
            Mode::Latest
        } else {
            Mode::Reliable
        })
        .config(config)
        .recv_buffer(args.recv_buffer);
    for s in &args.streams {
        builder = builder.stream(s.clone());
    }
    if let Some(k) = key.clone() {
        builder = builder.key(k);
    }
    let mut sub = builder.bind(local)?;
    announce(
        &args,
        sub.receiver(),
        key.is_some(),
        "subscribing to the hub at",
    )?;
    serve(&args, &mut sub, events)?;
    let skipped = sub.client_stats().skipped;
    eprintln!(
        "hub: {} frames skipped for this subscriber by the hub (it fell behind)",
        skipped
    );
    if sub.is_refused() {
        bail!("the hub at {hub} is full (its --max-subscribers)");
    }
    if !sub.is_subscribed() && sub.client_stats().from_hub == 0 {
        bail!("the hub at {hub} never answered (is `pixgram hub` running there?)");
    }
    Ok(())
}
