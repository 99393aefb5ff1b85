//! `pixgram impair`: an impairing UDP relay, for trying pixgram (or anything over UDP) on a bad
//! network without root or netem.

use std::time::Duration;

use anyhow::{bail, Context};
use pixgram::relay::{BurstLoss, ImpairConfig, ImpairStats, RelayConfig, UdpRelay, UdpRelayStats};

use crate::cli::{resolve, ImpairArgs};
use crate::recv::stop_flag;

pub fn run(args: ImpairArgs) -> anyhow::Result<()> {
    let listen = resolve("--listen", &args.listen)?;
    let to = resolve("--to", &args.to)?;
    let forward = impairment(&args)?;
    let back = if args.forward_only {
        ImpairConfig::default()
    } else {
        forward.clone()
    };
    let description = describe(&forward);
    let relay = UdpRelay::bind(
        listen,
        to,
        RelayConfig {
            forward,
            back,
            seed: args.seed,
            ..RelayConfig::default()
        },
    )?;
    eprintln!(
        "pixgram: listening on {}, forwarding to {to}; {} {description}; seed {}; Ctrl-C to stop",
        relay.local_addr()?,
        if args.forward_only {
            "towards it only:"
        } else {
            "each way:"
        },
        args.seed
    );
    let stop = stop_flag()?;
    let deadline = crate::recv::deadline_after(args.duration);
    let verbose = args.verbose;
    let stats = relay.run(&stop, deadline, |s| {
        if verbose {
            eprintln!("{}", counters(s));
        }
    });
    eprintln!("{}", counters(&stats));
    Ok(())
}

/// The impairment the flags describe, each checked.
fn impairment(args: &ImpairArgs) -> anyhow::Result<ImpairConfig> {
    let share = |name: &str, v: f64| -> anyhow::Result<f64> {
        if !(0.0..=100.0).contains(&v) {
            bail!("--{name} is a percentage from 0 to 100, not {v}");
        }
        Ok(v / 100.0)
    };
    let ms = |name: &str, v: f64| -> anyhow::Result<Duration> {
        if !(0.0..=60_000.0).contains(&v) {
            bail!("--{name} is in milliseconds, from 0 to 60000, not {v}");
        }
        Ok(Duration::from_secs_f64(v / 1e3))
    };
    let burst = match &args.burst {
        None => None,
        Some(text) => {
            let parts: Vec<f64> = text
                .split(',')
                .map(|p| p.trim().trim_end_matches('%').parse::<f64>())
                .collect::<Result<_, _>>()
                .with_context(|| {
                    format!("--burst takes ENTER,LEAVE,LOSS percentages, not `{text}`")
                })?;
            let [enter, leave, loss] = parts[..] else {
                bail!("--burst takes three percentages, ENTER,LEAVE,LOSS, not `{text}`");
            };
            if leave <= 0.0 {
                bail!("--burst: the chance to leave a bad spell must be above 0");
            }
            Some(BurstLoss {
                enter: share("burst", enter)?,
                leave: share("burst", leave)?,
                loss_in_bad: share("burst", loss)?,
            })
        }
    };
    let rate = match args.rate {
        None => None,
        // At least 0.001 Mbit/s (125 bytes/s): a smaller rate rounds to 0 bytes/s, which the
        // model would take as no limit at all.
        Some(mbit) if (0.001..=100_000.0).contains(&mbit) => Some((mbit * 1e6 / 8.0) as u64),
        Some(mbit) => bail!("--rate is in Mbit/s, from 0.001 to 100000, not {mbit}"),
    };
    Ok(ImpairConfig {
        loss: share("loss", args.loss)?,
        burst,
        delay: ms("delay", args.delay)?,
        jitter: ms("jitter", args.jitter)?,
        reorder: share("reorder", args.reorder)?,
        reorder_delay: ms("reorder-delay", args.reorder_delay)?,
        duplicate: share("duplicate", args.duplicate)?,
        corrupt: share("corrupt", args.corrupt)?,
        truncate: share("truncate", args.truncate)?,
        rate,
        queue_bytes: args.queue,
        bucket_bytes: 0,
        mtu: None,
    })
}

/// "loss 10%, delay 20 ms + 0-5 ms jitter, ..." (only what is switched on).
fn describe(c: &ImpairConfig) -> String {
    let pct = |v: f64| format!("{}%", (v * 1e4).round() / 1e2);
    let ms = |d: Duration| format!("{} ms", (d.as_secs_f64() * 1e4).round() / 10.0);
    let mut parts = Vec::new();
    if c.loss > 0.0 {
        parts.push(format!("loss {}", pct(c.loss)));
    }
    if let Some(b) = c.burst {
        parts.push(format!(
            "loss bursts (enter {}, leave {}, loss {} in a burst)",
            pct(b.enter),
            pct(b.leave),
            pct(b.loss_in_bad)
        ));
    }
    if !c.delay.is_zero() || !c.jitter.is_zero() {
        parts.push(format!("delay {} + 0-{} jitter", ms(c.delay), ms(c.jitter)));
    }
    if c.reorder > 0.0 {
        parts.push(format!(
            "reorder {} by {}",
            pct(c.reorder),
            ms(c.reorder_delay)
        ));
    }
    for (name, v) in [
        ("duplicate", c.duplicate),
        ("corrupt", c.corrupt),
        ("truncate", c.truncate),
    ] {
        if v > 0.0 {
            parts.push(format!("{name} {}", pct(v)));
        }
    }
    if let Some(r) = c.rate {
        parts.push(format!(
            "rate {} Mbit/s with a {} KiB queue",
            r as f64 * 8.0 / 1e6,
            c.queue_bytes / 1024
        ));
    }
    if parts.is_empty() {
        "no impairment".into()
    } else {
        parts.join(", ")
    }
}

fn counters(s: &UdpRelayStats) -> String {
    let way = |name: &str, d: &ImpairStats| {
        format!(
            "{name}: {} offered, {} delivered, dropped {} random + {} in bursts + {} by the \
             queue, {} duplicated, {} reordered, {} corrupted, {} truncated",
            d.offered,
            d.delivered,
            d.dropped_random,
            d.dropped_burst,
            d.dropped_queue,
            d.duplicated,
            d.reordered,
            d.corrupted,
            d.truncated
        )
    };
    format!(
        "impair: {}; {}; {} clients ({} open; {} forgotten after 30 s idle, {} replaced when \
         full, {} refused), {} datagrams dropped for memory, {} for ended flows, {} send errors",
        way("forward", &s.relay.forward),
        way("back", &s.relay.back),
        s.clients,
        s.open_flows,
        s.relay.flows_expired,
        s.relay.flows_evicted,
        s.relay.clients_refused,
        s.relay.dropped_held,
        s.relay.dropped_closed,
        s.send_errors
    )
}
